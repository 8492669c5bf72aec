"""Response serialisation for HTTP/1.x, shared by every parser.

Frames the body by Content-Length when the app gave one, chunked for HTTP/1.1 otherwise,
and by closing the connection for HTTP/1.0. Header values are checked so an app cannot split
a response with CR/LF.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from .events import Headers
from .policy import field_tokens

#: header pairs as an app hands them over: (name, value) pairs of bytes, as tuples or as
#: lists (an ASGI app may send either; a value may be a bytearray). The checks here answer
#: for them, so a compiled build must not check their types first: hence Any.
AppHeaders = list[Any]

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
# reason-phrase = *( HTAB / SP / VCHAR / obs-text ): anything else could split the response.
_BAD_REASON = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_HOP_BY_HOP = frozenset((b"connection", b"keep-alive", b"transfer-encoding"))
_SPECIAL = _HOP_BY_HOP | {b"content-length"}  # the names plan_response() looks at
# What passed the checks before: the lower-cased form of each valid header name, and the
# values known to be clean. Apps send the same few names and many of the same values on
# every response; looking them up costs a tenth of the regular expressions. Both bounded:
# the name table stops growing, the value set starts over.
_NAMES: dict[bytes, bytes] = {}
_NAMES_SIZE = 1024
_VALUES: set[bytes] = set()
_VALUES_SIZE = 4096


class LocalProtocolError(Exception):
    """The application tried to send something HTTP cannot carry."""


_REASONS = {status.value: status.phrase.encode("ascii") for status in HTTPStatus}


def reason_phrase(status: int) -> bytes:
    """The standard reason phrase for ``status`` (empty when unknown)."""
    return _REASONS.get(status, b"")


def status_has_body(status: int, method: bytes) -> bool:
    """Whether a response with this status to this method carries a body."""
    return not (method == b"HEAD" or status < 200 or status in (204, 304))


def with_content_length(headers: AppHeaders, length: int,
                        name: bytes = b"Content-Length") -> AppHeaders:
    """``headers`` plus a Content-Length of ``length``, unless they carry one already (a
    new list then; ``headers`` is not changed)."""
    for field, _ in headers:
        if field.lower() == b"content-length":
            return headers
    return [*headers, (name, b"%d" % length)]


@dataclass(slots=True)
class BodyFraming:
    """How the response body being sent is delimited."""

    chunked: bool = False
    remaining: int | None = None  # Content-Length bytes still owed, if declared
    send_body: bool = True  # False for HEAD, 1xx, 204, 304


def serialize_head(
    status: int, reason: bytes, headers: AppHeaders, *, http_version: bytes
) -> bytes:
    """Status line and header block; ``headers`` must already be complete and checked."""
    return _status_line(status, reason, http_version) + _fields(headers) + b"\r\n"


def _status_line(status: int, reason: bytes, http_version: bytes) -> bytes:
    if not 100 <= status <= 999:
        raise LocalProtocolError(f"invalid status code {status!r}")
    if reason and _BAD_REASON.search(reason):
        raise LocalProtocolError(f"invalid reason phrase {reason!r}")
    key = (http_version, status, reason)
    line = _STATUS_LINES.get(key)
    if line is None:
        line = b"%s %d %s\r\n" % (http_version, status, reason or reason_phrase(status))
        if len(_STATUS_LINES) < _STATUS_LINES_SIZE:
            _STATUS_LINES[key] = line
    return line


def _fields(headers: AppHeaders) -> bytes:
    return b"".join([name + b": " + value + b"\r\n" for name, value in headers])


#: status lines already formatted, by (version, status, reason); bounded (apps may send any
#: reason phrase)
_STATUS_LINES: dict[tuple[bytes, int, bytes], bytes] = {}
_STATUS_LINES_SIZE = 256


def checked_name(name: Any, value: Any) -> bytes:
    """The lower-cased ``name``, once the header is known not to corrupt the framing.

    LocalProtocolError for a name that is not a token or a value with control bytes
    (response splitting).
    """
    try:
        known = _NAMES[name]
        if value in _VALUES:
            return known
    except (KeyError, TypeError):  # TypeError: not bytes (unhashable), checked below
        pass
    if not _TOKEN.match(name):
        raise LocalProtocolError(f"invalid response header name {name!r}")
    if _BAD_VALUE.search(value):
        raise LocalProtocolError(f"invalid response header value for {name!r}")
    lname: bytes = name.lower()
    if type(name) is bytes and type(value) is bytes:
        if len(_NAMES) < _NAMES_SIZE:
            _NAMES[name] = lname
        if len(_VALUES) >= _VALUES_SIZE:
            _VALUES.clear()
        _VALUES.add(value)
    return lname


def check_headers(headers: AppHeaders) -> None:
    """Refuse header names/values that would corrupt the framing (response splitting)."""
    for name, value in headers:
        checked_name(name, value)


def response_head(
    status: int,
    reason: bytes,
    headers: AppHeaders,
    method: bytes,
    http_version: bytes,
    keep_alive: bool,
    defaults: dict[bytes, tuple[bytes, bytes]] | None = None,
) -> tuple[bytes, BodyFraming, bool]:
    """Check the app's headers, decide framing and the Connection header, and serialise the
    head (status line ``HTTP/1.1``); returns (head, framing, keep_alive).

    ``defaults`` (the server's Date and Server) are added after the app's headers, each
    unless the app sent a field of that name (lower-case names as the keys).

    Apps send the same few heads over and over (a framework builds an equal header list
    for every response), so a head is planned once and kept as the bytes before and after
    the defaults, whose values (the Date) change.
    """
    try:
        key: _HeadKey | None = (status, reason, method == b"HEAD", http_version, keep_alive,
                                tuple(headers))
        known = _HEADS.get(key)  # type: ignore[arg-type]
    except TypeError:  # an unhashable header, not a pair of bytes: the checks will say
        key, known = None, None
    if known is None:
        known = _plan(status, reason, headers, method, http_version, keep_alive)
        if key is not None and len(known[0]) <= _HEAD_MAX:
            if len(_HEADS) >= _HEADS_SIZE:
                _HEADS.clear()
            _HEADS[key] = known
    before, names, after, length, chunked, send_body, keep_alive = known
    framing = BodyFraming(chunked, length, send_body)
    if not defaults:
        return before + after, framing, keep_alive
    return before + _added(defaults, names) + after, framing, keep_alive


def _added(defaults: dict[bytes, tuple[bytes, bytes]], names: frozenset[bytes]) -> bytes:
    """The serialised ``defaults`` the app's header ``names`` leave in. Kept for the latest
    defaults object: a caller that passes the same one for a whole second (the Date's
    lifetime) gets each set of names serialised once."""
    if _ADDED_FOR[0] is not defaults:
        _ADDED.clear()
        _ADDED_FOR[0] = defaults
    added = _ADDED.get(names)
    if added is None:
        added = _fields([pair for lname, pair in defaults.items() if lname not in names])
        if len(_ADDED) < _HEADS_SIZE:
            _ADDED[names] = added
    return added


#: what decides a head, but for the defaults' values: (status, reason, HEAD request?,
#: request version, keep-alive so far, the app's headers)
_HeadKey = tuple[int, bytes, bool, bytes, bool, tuple[tuple[bytes, bytes], ...]]
#: a planned head: the bytes before the defaults, the app's lower-case names, the bytes
#: after them, then Content-Length, chunked, send_body and keep_alive
_Head = tuple[bytes, frozenset[bytes], bytes, int | None, bool, bool, bool]
#: heads already planned (see :func:`response_head`); bounded: starts over when full
_HEADS: dict[_HeadKey, _Head] = {}
#: the defaults :func:`_added` serialised, by the app's names, and the defaults they are for
_ADDED: dict[frozenset[bytes], bytes] = {}
_ADDED_FOR: list[object] = [None]
_HEADS_SIZE = 512
_HEAD_MAX = 2048  # a longer head is not kept (rare; bounded memory)


def _plan(status: int, reason: bytes, headers: AppHeaders, method: bytes,
          http_version: bytes, keep_alive: bool) -> _Head:
    out: AppHeaders = []
    length: int | None = None
    # Every header is checked before any is used (the first bad one is the error raised).
    names = [checked_name(name, value) for name, value in headers]
    for lname, pair in zip(names, headers, strict=True):
        if lname in _SPECIAL:
            value = pair[1]
            if lname != b"content-length":
                if lname == b"connection" and b"close" in field_tokens([value]):
                    keep_alive = False
                continue  # hop-by-hop: the server owns connection management
            if not value.isdigit() or (length is not None and int(value) != length):
                raise LocalProtocolError(f"invalid Content-Length {value!r}")
            if length is not None or status < 200 or status == 204:
                continue  # a duplicate, or a status that MUST NOT carry it (RFC 9110 8.6)
            length = int(value)
        out.append(pair)
    before = _status_line(status, reason, b"HTTP/1.1") + _fields(out)
    send_body = status_has_body(status, method)
    chunked = False
    tail: Headers = []
    if length is not None:
        length = length if send_body else None
    elif status >= 200 and status not in (204, 304):
        if http_version == b"HTTP/1.1":
            # HEAD gets the header too: it describes what a GET would have sent.
            chunked = send_body
            tail.append((b"Transfer-Encoding", b"chunked"))
        elif send_body:
            keep_alive = False  # HTTP/1.0 without a length: the close ends the body
    if http_version == b"HTTP/1.0" and keep_alive:
        tail.append((b"Connection", b"keep-alive"))
    elif not keep_alive:
        tail.append((b"Connection", b"close"))
    return (before, frozenset(names), _fields(tail) + b"\r\n", length, chunked, send_body,
            keep_alive)


def frame_data(framing: BodyFraming, data: bytes) -> bytes:
    """Frame one piece of body according to ``framing`` (may be b"")."""
    if not framing.send_body or not data:
        return b""
    if framing.remaining is not None:
        if len(data) > framing.remaining:
            raise LocalProtocolError("response body longer than its Content-Length")
        framing.remaining -= len(data)
        return data
    if framing.chunked:
        return b"%x\r\n%s\r\n" % (len(data), data)
    return data


def frame_end(framing: BodyFraming, trailers: AppHeaders) -> bytes:
    """The end of the body: the last chunk (with trailers) or nothing."""
    if framing.remaining:
        raise LocalProtocolError("response body shorter than its Content-Length")
    if framing.chunked:
        check_headers(trailers)
        return b"0\r\n" + b"".join(b"%s: %s\r\n" % t for t in trailers) + b"\r\n"
    return b""
