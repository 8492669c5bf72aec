"""The uwsgi protocol (``--protocol uwsgi``): what nginx's ``uwsgi_pass`` speaks, sans-io.

A request is a packet: a 4-byte header (``modifier1``, the size of the variables block as a
16-bit little-endian number, ``modifier2``), then the variables, each a 16-bit little-endian
length and bytes for its name, then the same for its value: the CGI environment the front end
built (``REQUEST_METHOD``, ``REQUEST_URI``, ``HTTP_HOST``...). The request body follows,
``CONTENT_LENGTH`` bytes of it (the front end has already undone any chunked encoding).
Only ``modifier1`` 0, a WSGI request, is served (gunicorn's rule): others get 501.

The response is written as HTTP/1.1, which is what the front end expects back, but never
chunked: the front end reads the body as it comes, so a response without a Content-Length
ends when the connection closes. The rest (the request/response cycle, response writing,
body framing by Content-Length) is :class:`~greenserve.protocol.h1_base.BaseH1Connection`'s.
As in gunicorn, the request line is rebuilt from the variables and ``HTTP_*`` variables
become headers again (``HTTP_X_REAL_IP`` -> ``X-REAL-IP``); the connection is kept alive
unless the client's ``Connection`` header said ``close``.
"""

from __future__ import annotations

from urllib.parse import quote

from .events import Headers, InboundEvent, InformationalResponse
from .h1_base import BaseH1Connection, ParsedHead
from .policy import TOKEN, HeadFields, Rejection, field_tokens

#: a packet's variables at most (gunicorn's bound; a packet is at most 64 KiB anyway)
MAX_VARS = 1000
_HEADER = 4
_SCHEMES = {"on": "https", "1": "https", "true": "https"}
#: how the client's request reached the front end, not this hop: the body comes whole,
#: CONTENT_LENGTH bytes, whatever the client's framing was
_OTHER_HOP = frozenset(("HTTP_TRANSFER_ENCODING",))


def parse_vars(block: bytes) -> dict[str, str] | Rejection:
    """The name/value pairs of a packet's variables block (latin-1, as WSGI has them)."""
    found: dict[str, str] = {}
    pos, end = 0, len(block)
    while pos < end:
        if len(found) >= MAX_VARS:
            return Rejection(400, "too many uwsgi variables")
        pair = []
        for _ in range(2):
            if pos + 2 > end:
                return Rejection(400, "truncated uwsgi variable")
            size = int.from_bytes(block[pos : pos + 2], "little")
            pos += 2
            if pos + size > end:
                return Rejection(400, "truncated uwsgi variable")
            pair.append(block[pos : pos + size].decode("latin-1"))
            pos += size
        found[pair[0]] = pair[1]
    return found


def request_head(variables: dict[str, str]) -> tuple[ParsedHead, HeadFields] | Rejection:
    """The request a packet's variables describe, and its framing (Content-Length only)."""
    method = variables.get("REQUEST_METHOD") or "GET"
    if not TOKEN.fullmatch(method.encode("latin-1")):
        return Rejection(400, "invalid uwsgi REQUEST_METHOD")
    target = variables.get("REQUEST_URI") or ""
    if not target.startswith("/"):  # no raw target: rebuild it from the decoded path
        target = quote(variables.get("PATH_INFO") or "/", safe="/;=,:@!$&'()*+~")
        if variables.get("QUERY_STRING"):
            target += "?" + variables["QUERY_STRING"]
    version = b"HTTP/1.0" if variables.get("SERVER_PROTOCOL") == "HTTP/1.0" else b"HTTP/1.1"
    headers: Headers = []
    for name, value in variables.items():
        if name in _OTHER_HOP:
            continue
        if name.startswith("HTTP_"):
            headers.append((name[5:].replace("_", "-").encode("latin-1"),
                            value.encode("latin-1")))
        elif name in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            headers.append((name.replace("_", "-").encode("latin-1"), value.encode("latin-1")))
    length_text = variables.get("CONTENT_LENGTH") or ""
    if length_text and not (length_text.isascii() and length_text.isdigit()):
        return Rejection(400, "invalid uwsgi CONTENT_LENGTH")
    connection = variables.get("HTTP_CONNECTION", "").encode("latin-1")
    fields = HeadFields(
        chunked=False,
        content_length=int(length_text) if length_text else None,
        connection=field_tokens([connection]) if connection else [],
        expect=[],  # the front end answered any 100-continue itself
        upgrade=None,  # nothing switches protocols over uwsgi
    )
    head = ParsedHead(method.encode("latin-1"), target.encode("latin-1"), version, headers)
    return head, fields


def request_scheme(variables: dict[str, str]) -> str | None:
    """``https`` when the front end says the client used TLS (``HTTPS`` on, or a
    ``wsgi.url_scheme`` variable), else None (the connection's own scheme)."""
    scheme = _SCHEMES.get(variables.get("HTTPS", "").lower())
    return scheme or variables.get("wsgi.url_scheme") or None


class UwsgiConnection(BaseH1Connection):
    """A :class:`~greenserve.protocol.base.ServerConnection` for uwsgi packets."""

    close_delimited = True  # responses are never chunked (see the module's docstring)

    def _next_head(self) -> InboundEvent | None:
        buf = self._buf
        if len(buf) < _HEADER:
            return self._incomplete_head()
        if buf[0] != 0:
            return self._fail(Rejection(501, f"unsupported uwsgi modifier1 {buf[0]}"))
        end = _HEADER + int.from_bytes(buf[1:3], "little")
        if len(buf) < end:
            return self._incomplete_head()
        variables = parse_vars(bytes(buf[_HEADER:end]))
        del buf[:end]
        if isinstance(variables, Rejection):
            return self._fail(variables)
        parsed = request_head(variables)
        if isinstance(parsed, Rejection):
            return self._fail(parsed)
        request = self._accept(*parsed)
        request.scheme = request_scheme(variables)
        return request

    def _parse_head(self, raw: bytes) -> ParsedHead | Rejection:
        return Rejection(400, "not an HTTP request head")  # never called: no HTTP heads here

    def _send_informational(self, event: InformationalResponse) -> bytes:
        return b""  # the front end answers 100-continue itself, and 1xx would confuse it
