"""HTTP/2 request heads and response heads, sans-io: the rules of :mod:`.policy` for HTTP/2.

The ``h2`` package parses frames and HPACK; this module checks what RFC 9113 calls
malformed (upper-case names, connection-specific fields, bad, repeated or missing
pseudo-fields) and greenserve's own rules, the same ones an HTTP/1 head meets (method and
target grammar, the request-line and field limits, one Host, one Content-Type, a valid
Content-Length), and turns the head into the :class:`~.events.Request` every adapter reads.
"""

from __future__ import annotations

import re

from .events import Headers, Request
from .policy import (
    Limits,
    Rejection,
    check_field,
    check_fields,
    check_method,
    check_target,
    effective_method,
)

_PSEUDO = frozenset((b":method", b":scheme", b":authority", b":path"))
_CONNECTION_FIELDS = frozenset(
    (b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"))
_LOWER_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9a-z]+\Z")
_WS = (b" ", b"\t")

#: the version HTTP/2 requests carry: WSGI's SERVER_PROTOCOL is HTTP/2.0 (as gunicorn's),
#: the ASGI scope's http_version "2"
HTTP2_VERSION = b"2.0"

# Response fields HTTP/2 forbids (RFC 9113 8.2.2) or that the server sets itself.
_DROPPED = frozenset(
    (
        b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade",
        b"te", b"trailer",
    )
)


def request_from_headers(
    headers: list[tuple[bytes, bytes]],
    stream_id: int,
    limits: Limits,
    *,
    has_body: bool,
    trust_scheme: bool = False,
) -> Request | Rejection:
    """The :class:`Request` of an HTTP/2 head, or why it is refused.

    ``has_body`` is False when the HEADERS frame ended the stream. A body without a
    Content-Length is marked ``chunked`` (of unknown length), as an HTTP/1 chunked one is.
    ``:scheme`` is believed only from a trusted peer (``trust_scheme``).
    """
    split = _split(headers)
    if isinstance(split, Rejection):
        return split
    pseudo, fields = split
    method = pseudo.get(b":method", b"")
    authority = pseudo.get(b":authority")
    target = authority if method == b"CONNECT" else pseudo.get(b":path")
    rejection = _check_head(method, target, fields, limits)
    if rejection is not None:
        return rejection
    assert target is not None  # _check_head refuses a missing target
    if method != b"CONNECT" and b":scheme" not in pseudo:
        return Rejection(400, "missing :scheme")
    if authority is not None:
        hosts = [value for name, value in fields if name == b"host"]
        if any(host != authority for host in hosts):
            return Rejection(400, "Host differs from :authority")
        fields = [(b"host", authority), *(f for f in fields if f[0] != b"host")]
    head = check_fields(HTTP2_VERSION, fields)
    if isinstance(head, Rejection):
        return head
    scheme = pseudo.get(b":scheme") if trust_scheme else None
    return Request(
        method=effective_method(method, limits),
        target=target,
        http_version=HTTP2_VERSION,
        headers=fields,
        keep_alive=True,
        chunked=has_body and head.content_length is None,
        content_length=head.content_length,
        expect_continue=has_body and b"100-continue" in head.expect,
        stream_id=stream_id,
        scheme=scheme.decode("ascii") if scheme in (b"http", b"https") else None,
    )


def _split(headers: list[tuple[bytes, bytes]]
           ) -> tuple[dict[bytes, bytes], Headers] | Rejection:
    """Pseudo-fields and fields, checked as RFC 9113 8.2-8.3 asks (one pass).

    The h2 package can check these too, in a dozen generator passes over the list; this
    pass does the same work and answers 400 on the stream instead of ending the connection.
    """
    pseudo: dict[bytes, bytes] = {}
    fields: Headers = []
    cookies: list[bytes] = []
    for name, value in headers:
        if name[:1] == b":":
            if fields or cookies:
                return Rejection(400, "pseudo-header after a regular header")
            if name not in _PSEUDO or name in pseudo:
                return Rejection(400, "unknown or repeated pseudo-header")
            pseudo[name] = value
            continue
        if name in _CONNECTION_FIELDS or (name == b"te" and value != b"trailers"):
            return Rejection(400, "connection-specific header in an HTTP/2 request")
        if not _LOWER_TOKEN.match(name):
            return Rejection(400, "invalid header name")
        if value[:1] in _WS or value[-1:] in _WS:
            return Rejection(400, "whitespace around a header value")
        if name == b"cookie":
            cookies.append(value)  # crumbs, joined below (RFC 9113 8.2.3)
            continue
        fields.append((name, value))
    if cookies:
        fields.append((b"cookie", b"; ".join(cookies)))
    return pseudo, fields


def _check_head(method: bytes, target: bytes | None, fields: Headers,
                limits: Limits) -> Rejection | None:
    rejection = check_method(method, limits)
    if rejection is not None:
        return rejection
    if not target:
        return Rejection(400, "missing :path")
    if len(target) > limits.request_line_limit:
        return Rejection(414, "request target too long")
    rejection = check_target(method, target)
    if rejection is not None:
        return rejection
    if len(fields) > limits.fields_limit:
        return Rejection(431, "too many header fields")
    for name, value in fields:
        rejection = check_field(name, value, limits)
        if rejection is not None:
            return rejection
    return None


def response_headers(status: int, headers: Headers, defaults: Headers) -> Headers:
    """The header list of an HTTP/2 response: ``:status``, the app's fields lower-cased
    without the HTTP/1 connection fields, then ``defaults`` (Date, Server) the app did not
    set itself."""
    out: Headers = [(b":status", b"%d" % status)]
    seen: set[bytes] = set()
    for name, value in headers:
        lname = name.lower()
        if lname in _DROPPED:
            continue
        seen.add(lname)
        out.append((lname, value))
    out.extend((name, value) for name, value in defaults if name not in seen)
    return out


def trailer_headers(trailers: Headers) -> Headers:
    """Trailers as HTTP/2 sends them: lower-case names, no connection fields."""
    return [(name.lower(), value) for name, value in trailers
            if name.lower() not in _DROPPED]
