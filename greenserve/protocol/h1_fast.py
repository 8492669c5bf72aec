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

    __slots__ = ("complete", "ended", "headers", "target")

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.target = b""
        self.headers: list[tuple[bytes, bytes]] = []  # a new list: the Request keeps it
        self.complete = False
        self.ended = False

    def on_url(self, url: bytes) -> None:
        self.target += url

    def on_header(self, name: bytes, value: bytes) -> None:
        # llhttp drops the whitespace before a value but keeps what follows it.
        self.headers.append((name, value.rstrip(b" \t")))

    def on_headers_complete(self) -> None:
        self.complete = True

    def on_message_complete(self) -> None:
        self.ended = True


class _Reader:
    """An llhttp parser and the head it collects.

    greenserve never feeds llhttp a body, so a parser is only good for another head when
    the last one ended its message (no body followed: llhttp waits for a new message).
    Such parsers are kept in a small pool shared by the worker's connections (reading a
    head never yields, so no two reads overlap on one parser; a kept parser costs about a
    kilobyte, too much to keep one per idle connection); creating one costs about a third
    of reading a short head. If a kept parser refuses a head, a fresh one decides.
    """

    __slots__ = ("_head", "_parser")

    def __init__(self) -> None:
        self._head = _Head()
        self._parser = httptools.HttpRequestParser(self._head)

    @property
    def reusable(self) -> bool:
        """The last head read ended its message: the parser waits for the next one."""
        return self._head.ended

    def read(self, raw: bytes) -> ParsedHead | Rejection:
        head = self._head
        head.reset()
        parser = self._parser
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


#: parsers that ended their last message, for any connection's next head (list.pop and
#: append are atomic: embedded servers may run workers in several threads)
_KEPT: list[_Reader] = []
_KEPT_MAX = 8


def _keep(reader: _Reader) -> None:
    if reader.reusable and len(_KEPT) < _KEPT_MAX:
        _KEPT.append(reader)


class HttptoolsConnection(BaseH1Connection):
    """A :class:`~greenserve.protocol.base.ServerConnection` over httptools."""

    def _parse_head(self, raw: bytes) -> ParsedHead | Rejection:
        """Read the head with llhttp, fed the head alone."""
        if _KEPT:
            try:
                kept = _KEPT.pop()
            except IndexError:  # another thread took the last one
                pass
            else:
                head = kept.read(raw)
                if not isinstance(head, Rejection):
                    _keep(kept)
                    return head
        reader = _Reader()
        head = reader.read(raw)
        if not isinstance(head, Rejection):
            _keep(reader)
            return head
        # llhttp knows a fixed list of methods (and PRI only as HTTP/2's preface), while
        # any token is a method (RFC 9110 9.1) and the scanner has checked this one with
        # gunicorn's rules. If llhttp objected only to the method, a method it knows
        # makes it read the rest: targets other than origin- and absolute-form are
        # refused for such methods before this point.
        method, _, rest = raw.partition(b" ")
        again = _Reader().read(b"GET " + rest)
        if isinstance(again, Rejection):
            return head
        return again._replace(method=method)
