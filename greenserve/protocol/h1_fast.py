"""HTTP/1.1 server connection whose request heads httptools (llhttp) parses.

Everything but the head parsing is shared with the h11 parser (``h1_base.py``): the
raw-bytes scanner finds the end of the head and checks every byte of it first, the field
rules run on what llhttp reports, and bodies are framed by greenserve itself. llhttp is
lenient where those rules are strict (CL+TE, bare LF, chunk-size lines), so it only ever
sees a head that already passed the scanner, and never a body.

Why this split, measured on a 14-field browser GET (``tools/parser_bench.py``): llhttp
cannot take over the scanner's job (it is lenient exactly there) nor the framing, and once
the head is delimited and checked, reading it with llhttp (about 2.9 µs) costs about what
splitting it in Python does (2.3 µs) and a tenth of what the h11 backstop costs (25 µs).
So llhttp reads the head, and its own grammar comes along as the backstop, for free.
"""

from __future__ import annotations

import httptools

from .h1_base import BaseH1Connection, ParsedHead
from .policy import Rejection

_VERSIONS = {"1.1": b"HTTP/1.1", "1.0": b"HTTP/1.0"}


class _Head:
    """Collects llhttp's callbacks for one head."""

    __slots__ = ("complete", "headers", "target")

    def __init__(self) -> None:
        self.target = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.complete = False

    def on_url(self, url: bytes) -> None:
        self.target += url

    def on_header(self, name: bytes, value: bytes) -> None:
        # llhttp drops the whitespace before a value but keeps what follows it.
        self.headers.append((name, value.rstrip(b" \t")))

    def on_headers_complete(self) -> None:
        self.complete = True


class HttptoolsConnection(BaseH1Connection):
    """A :class:`~greenserve.protocol.base.ServerConnection` over httptools."""

    def _parse_head(self, raw: bytes) -> ParsedHead | Rejection:
        """Read the head with llhttp: one fresh parser per head, fed the head alone."""
        head = _read(raw)
        if isinstance(head, Rejection):
            # llhttp knows a fixed list of methods (and PRI only as HTTP/2's preface), while
            # any token is a method (RFC 9110 9.1) and the scanner has checked this one with
            # gunicorn's rules. If llhttp objected only to the method, a method it knows
            # makes it read the rest: targets other than origin- and absolute-form are
            # refused for such methods before this point.
            method, _, rest = raw.partition(b" ")
            again = _read(b"GET " + rest)
            if isinstance(again, Rejection):
                return head
            head = again._replace(method=method)
        return head


def _read(raw: bytes) -> ParsedHead | Rejection:
    head = _Head()
    parser = httptools.HttpRequestParser(head)
    try:
        parser.feed_data(raw)
    except httptools.HttpParserUpgrade:
        pass  # Upgrade or CONNECT: llhttp stops after the head, which is all it has
    except httptools.HttpParserError as exc:
        return Rejection(400, f"httptools: {exc}")
    version = _VERSIONS.get(parser.get_http_version())
    if not head.complete or version is None:
        return Rejection(400, "httptools: incomplete request head")
    return ParsedHead(raw[: raw.index(b" ")], head.target, version, head.headers)
