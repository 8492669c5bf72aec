"""greenserve's strictness and limit rules, written once for every HTTP/1 parser.

Three layers, all pure:

* :class:`HeadScanner` looks at the raw bytes of a request head *before* any parser sees
  them, one line at a time, as they arrive: line endings, control bytes, obs-fold, the
  request-line/field limits and the request-line grammar. These are the things h11 and
  llhttp are lenient about, and the smuggling vectors live here. Lines are checked in the
  order they were sent and each line's checks run in a fixed order, so the first offending
  line decides the answer however the bytes were split across ``recv`` calls.
* :func:`check_fields` looks at the parsed fields: framing (Content-Length,
  Transfer-Encoding), Host and the other singleton fields.
* :func:`check_trailer_line` applies the field rules, plus the forbidden-name list, to the
  trailer section of a chunked body.

Each rule returns a :class:`Rejection` (status + reason) instead of raising, so the caller
turns it into a ``ProtocolError`` event and the connection answers and closes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, fields

from .events import Headers

# gunicorn's built-in values: limit_request_field_size <= 0 means this default (not
# "unlimited"), and limit_request_fields is capped at MAX_FIELDS.
DEFAULT_FIELD_SIZE = 8190
MAX_FIELDS = 32768
# A request line is never allowed to grow without bound, even with limit_request_line = 0.
MAX_REQUEST_LINE = 65536
_MAX_LEADING_EMPTY = 8
_CRLF = 2


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-request limits and leniency switches, taken from the settings (gunicorn names)."""

    limit_request_line: int = 4094
    limit_request_fields: int = 100
    limit_request_field_size: int = 8190
    permit_obsolete_folding: bool = False
    strip_header_spaces: bool = False
    header_map: str = "drop"
    permit_unconventional_http_method: bool = False
    permit_unconventional_http_version: bool = False
    casefold_http_method: bool = False

    @classmethod
    def from_settings(cls, settings: object) -> Limits:
        """Read every field from ``settings`` (e.g. the worker's ``Config``) by name.

        Settings it lacks keep their defaults, so a field added here is picked up as soon as
        the config declares the gunicorn setting of the same name.
        """
        values = {
            f.name: getattr(settings, f.name) for f in fields(cls) if hasattr(settings, f.name)
        }
        return cls(**values)

    @property
    def request_line_limit(self) -> int:
        """Longest request line (without CRLF); 0 in the setting means unlimited."""
        line = self.limit_request_line
        return line if 0 < line < MAX_REQUEST_LINE else MAX_REQUEST_LINE

    @property
    def field_size_limit(self) -> int:
        """Largest field, counted as gunicorn does: every physical line plus its CRLF."""
        size = self.limit_request_field_size
        return size if size > 0 else DEFAULT_FIELD_SIZE

    @property
    def fields_limit(self) -> int:
        """Most fields in the head and the trailers together (gunicorn 27 counts both)."""
        count = self.limit_request_fields
        return count if 0 < count <= MAX_FIELDS else MAX_FIELDS

    @property
    def plain_head_limit(self) -> int:
        """A whole head this short cannot break a per-line size limit (see ``HeadScanner``)."""
        return min(self.request_line_limit, self.field_size_limit - _CRLF)

    def max_head_size(self) -> int:
        """An upper bound on a head the per-line rules can accept (a safety net only)."""
        empty_lines = _MAX_LEADING_EMPTY * _CRLF
        field_bytes = self.fields_limit * self.field_size_limit
        return empty_lines + self.request_line_limit + _CRLF + field_bytes + _CRLF


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a request is refused, and the status to answer with."""

    status: int
    reason: str


TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
# Field values: visible ASCII, obs-text (0x80-0xFF), SP and HTAB. No other control bytes.
_BAD_VALUE_BYTE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_VERSION = re.compile(rb"HTTP/[0-9]\.[0-9]\Z")
_USUAL_VERSIONS = frozenset((b"HTTP/1.1", b"HTTP/1.0"))
# Request-target: visible ASCII only (RFC 9112 3.2). Raw UTF-8 is refused, as h11 does.
_BAD_TARGET_BYTE = re.compile(rb"[^\x21-\x7e]")
# gunicorn's default method rule on top of the token grammar: 3 to 20 characters, and no
# lower case or '#' (permit_unconventional_http_method lifts it).
_UNCONVENTIONAL_METHOD_BYTE = re.compile(rb"[a-z#]")
_DIGITS = re.compile(rb"[0-9]+\Z")
# RFC 3986 3.2 host: an IP literal in brackets, or a non-empty reg-name (unreserved,
# sub-delims, %HH). Characters outside these ('#', '"', '\\', '<'...) make hosts that URL
# parsers read differently (the host-confusion behind SSRF filters), and llhttp refuses them.
_HOST = (
    rb"(?:\[(?:[0-9A-Fa-f:.]+|v[0-9A-Fa-f]+\.[A-Za-z0-9\-._~!$&'()*+,;=:]+)\]"
    rb"|(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})+)"
)
# absolute-form: [userinfo "@"] host [":" port], up to the path or the query.
_ABSOLUTE_AUTHORITY = re.compile(
    rb"(?:(?:[A-Za-z0-9\-._~!$&'()*+,;=:]|%[0-9A-Fa-f]{2})*@)?"  # userinfo
    + _HOST
    + rb"(?::[0-9]*)?(?=[/?]|\Z)"
)
# authority-form (CONNECT, RFC 9112 3.2.3): host ":" port, nothing else.
_CONNECT_AUTHORITY = re.compile(_HOST + rb":[0-9]+\Z")
# The common head, with nothing to forgive: a request line with a conventional method (see
# check_method), an origin-form target and HTTP/1.0 or 1.1; then ``name:value`` fields
# (token names, allowed value bytes); CRLF line endings only, no folding. Whatever it
# matches, check_request_line and check_field_line accept. Possessive quantifiers: nothing
# here needs backtracking.
_PLAIN_HEAD = re.compile(
    rb"[!$%&'*+\-.^_`|~0-9A-Z]{3,20}+ /[\x21-\x7e]*+ HTTP/1\.[01]\r\n"
    rb"(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]++:[^\x00-\x08\x0a-\x1f\x7f]*+\r\n)*+"
    rb"\r\n"
)
_FOLD = re.compile(rb"[ \t]*\r\n[ \t]+")
_SPACE_BEFORE_COLON = re.compile(rb"(?m)^([!#$%&'*+\-.^_`|~0-9A-Za-z]+)[ \t]+:")
_WS = b" \t"
# RFC 9110 6.5.1: fields that frame or route the message, or manage the connection, must
# not come from trailers. gunicorn refuses them (Content-Length, Transfer-Encoding, Host);
# anyone merging them into the head later could be desynchronised. Other fields
# (Content-Type, Vary...) are legal in trailers and gunicorn passes them on.
_FORBIDDEN_TRAILERS = frozenset(
    (
        b"content-length", b"transfer-encoding", b"host", b"trailer", b"te",
        b"connection", b"keep-alive", b"upgrade",
    )
)


@dataclass(slots=True)
class HeadScanner:
    """Incremental, position-ordered checks on the raw bytes of one request head.

    Call :meth:`scan` with the whole receive buffer each time more bytes arrive. Each line
    is checked once, so slow clients cost linear time. Up to eight empty lines before the
    request line are skipped (RFC 9112 2.2); ``start`` is where the request line begins.
    A short, plain head that is already whole is accepted in one regex pass instead
    (:meth:`_scan_plain`, the common case); anything else goes line by line.
    """

    limits: Limits
    start: int = 0  # offset of the request line in the buffer
    pos: int = 0  # offset of the first line not yet checked
    index: int = 0  # number of that line: 0 is the request line
    fields: int = 0  # field lines seen so far (continuation lines excluded)
    field_size: int = 0  # bytes of the current field, folded lines included
    skipped: int = 0  # empty lines skipped before the request line
    searched: int = 0  # the buffer holds no LF before this offset
    plain_limit: int = -1  # limits.plain_head_limit, computed on first use
    #: the request line has an accepted version other than HTTP/1.0 and 1.1 (see
    #: served_version; normalise_head_bytes rewrites it)
    odd_version: bool = False

    def reset(self) -> None:
        """Start over for the next head (cheaper than a new scanner per request)."""
        self.start = self.pos = self.index = self.fields = 0
        self.field_size = self.skipped = self.searched = 0
        self.odd_version = False

    def scan(self, buf: bytes | bytearray) -> Rejection | int | None:
        """Check the lines not seen yet; the offset just past the head once it is complete."""
        if self.index == 0 and self.searched <= self.pos:
            end = self._scan_plain(buf)
            if end is not None:
                return end
        while True:
            end = buf.find(b"\n", max(self.pos, self.searched))
            if end < 0:
                # Remember how far we looked, so a line arriving byte by byte costs linear
                # time in total, not quadratic.
                self.searched = len(buf)
                return self._check_partial(buf)
            line = bytes(buf[self.pos : end])
            self.pos = end + 1
            crlf = line.endswith(b"\r")
            if crlf:
                line = line[:-1]
            if not line and self.index == 0 and crlf and self.skipped < _MAX_LEADING_EMPTY:
                self.skipped += 1  # an empty line before the request line
                self.start = self.pos
                continue
            if not line and self.index > 0:
                return self.pos if crlf else Rejection(400, "bare LF line ending")
            rejection = self._check_line(line, crlf)
            if rejection is not None:
                return rejection
            self.index += 1

    def _scan_plain(self, buf: bytes | bytearray) -> int | None:
        """The common case in one pass: a whole head, short and plain, is already in ``buf``.

        Accepts only heads the line-by-line rules accept too, and otherwise returns None
        and leaves them to decide: they give every rejection, so its reason and position
        never depend on this shortcut. Tried once per head: after a look at a partial head
        ``searched`` moves past ``pos``, and only the incremental path runs (linear time).
        """
        pos = self.pos
        end = buf.find(b"\r\n\r\n", pos) + 4
        if self.plain_limit < 0:
            self.plain_limit = self.limits.plain_head_limit
        if end < 4 or end - pos > self.plain_limit:
            return None  # incomplete, or long enough for a line to break a size limit
        if _PLAIN_HEAD.fullmatch(buf, pos, end) is None:
            return None
        fields = buf.count(b"\n", pos, end) - 2
        if fields > self.limits.fields_limit:
            return None
        self.pos, self.index, self.fields = end, fields + 1, fields
        return end

    def _check_partial(self, buf: bytes | bytearray) -> Rejection | None:
        """Size rules for the line still arriving (from ``pos``): what it holds counts."""
        length = len(buf) - self.pos
        if length and buf[-1] == 0x0D:
            length -= 1  # may be the start of its CRLF
        if not length:
            return None
        if self.index == 0:
            if length > self.limits.request_line_limit:
                return Rejection(414, "request line too long")
            return None
        if buf[self.pos] in b" \t":
            size = self.field_size + length + _CRLF
        else:
            if self.fields + 1 > self.limits.fields_limit:
                return Rejection(431, "too many header fields")
            size = length + _CRLF
        if size > self.limits.field_size_limit:
            return Rejection(431, "header field too large")
        return None

    def _check_line(self, line: bytes, crlf: bool) -> Rejection | None:
        """The rules for one complete line, in a fixed order: size, ending, content."""
        if self.index == 0:
            if len(line) > self.limits.request_line_limit:
                return Rejection(414, "request line too long")
            rejection = _check_line_ending(line, crlf) or check_request_line(line, self.limits)
            if rejection is None:
                self.odd_version = line[-8:] not in _USUAL_VERSIONS  # the last 8: checked
            return rejection
        folded = line[:1] in (b" ", b"\t")
        if folded:
            self.field_size += len(line) + _CRLF
        else:
            self.fields += 1
            if self.fields > self.limits.fields_limit:
                return Rejection(431, "too many header fields")
            self.field_size = len(line) + _CRLF
        if self.field_size > self.limits.field_size_limit:
            return Rejection(431, "header field too large")
        rejection = _check_line_ending(line, crlf)
        if rejection is not None:
            return rejection
        if folded:
            return self._check_folded(line)
        return check_field_line(line, self.limits)

    def _check_folded(self, line: bytes) -> Rejection | None:
        if self.index == 1:
            # RFC 9112 2.2: whitespace between the start line and the first field.
            return Rejection(400, "whitespace before the first header field")
        if not self.limits.permit_obsolete_folding:
            return Rejection(400, "obsolete line folding in header")
        if _BAD_VALUE_BYTE.search(line):
            return Rejection(400, "control byte in header value")
        return None


def _check_line_ending(line: bytes, crlf: bool) -> Rejection | None:
    if not crlf:
        return Rejection(400, "bare LF line ending")
    if b"\r" in line:
        return Rejection(400, "bare CR in request head")
    return None


def check_request_line(line: bytes, limits: Limits) -> Rejection | None:
    """The request-line grammar: ``method SP request-target SP HTTP-version``."""
    parts = line.split(b" ")
    if len(parts) != 3:
        return Rejection(400, "malformed request line")
    method, target, version = parts
    return (
        check_method(method, limits)
        or _check_version(version, limits)
        or check_target(method, target)
    )


def check_field_line(line: bytes, limits: Limits) -> Rejection | None:
    """One ``name: value`` line (no CRLF); sizes are checked by the caller."""
    name, colon, value = line.partition(b":")
    if not colon:
        return Rejection(400, "header line without a colon")
    if not TOKEN.match(name):
        stripped = name.rstrip(_WS)
        if not (limits.strip_header_spaces and stripped != name and TOKEN.match(stripped)):
            return Rejection(400, "invalid header name")
    if _BAD_VALUE_BYTE.search(value):
        return Rejection(400, "control byte in header value")
    return None


def check_field(name: bytes, value: bytes, limits: Limits) -> Rejection | None:
    """One field already split (HTTP/2): a token name, allowed value bytes, the size limit
    (counted as its HTTP/1 line would be: name, ': ', value, CRLF)."""
    if len(name) + len(value) + 2 + _CRLF > limits.field_size_limit:
        return Rejection(431, "header field too large")
    if not TOKEN.match(name):
        return Rejection(400, "invalid header name")
    if _BAD_VALUE_BYTE.search(value):
        return Rejection(400, "control byte in header value")
    return None


def check_trailer_line(line: bytes, count: int, limits: Limits) -> Rejection | None:
    """One trailer line; ``count`` is how many fields the message has with this one."""
    if count > limits.fields_limit:
        return Rejection(431, "too many header and trailer fields")
    if len(line) + _CRLF > limits.field_size_limit:
        return Rejection(431, "trailer field too large")
    if line[:1] in (b" ", b"\t"):
        return Rejection(400, "obsolete line folding in trailer")
    rejection = check_field_line(line, _STRICT)
    if rejection is not None:
        return rejection
    if line.partition(b":")[0].lower() in _FORBIDDEN_TRAILERS:
        return Rejection(400, "field not allowed in trailers")
    return None


_STRICT = Limits()


def normalise_head_bytes(raw: bytes, limits: Limits) -> bytes:
    """Apply the leniencies the settings allow, so a strict parser accepts the head; an
    unconventional version becomes the one it is served as (:func:`served_version`).

    ``raw`` is a head the scanner accepted, from the request line to the empty line.
    """
    line_end = raw.index(b"\r\n")  # the scanner has checked: CRLF, the version last
    version = raw[line_end - 8 : line_end]
    if version not in _USUAL_VERSIONS:
        raw = raw[: line_end - 8] + served_version(version) + raw[line_end:]
    if limits.permit_obsolete_folding:
        # Each folded piece is trimmed and joined with one SP, as gunicorn does.
        raw = _FOLD.sub(b" ", raw[:-2]) + b"\r\n"
    if limits.strip_header_spaces:
        raw = _SPACE_BEFORE_COLON.sub(rb"\1:", raw)
    return raw


def effective_method(method: bytes, limits: Limits) -> bytes:
    """The method the application sees (casefold_http_method upper-cases it)."""
    return method.upper() if limits.casefold_http_method else method


@dataclass(slots=True)  # not frozen: built for every request (see events.py)
class HeadFields:
    """What the fields of an accepted head say about the body and the connection.

    The body is delimited by exactly one of ``chunked`` and ``content_length``, or neither
    (no body). ``connection`` and ``expect`` are the lower-cased tokens of those fields;
    ``upgrade`` is the first Upgrade field's value.
    """

    chunked: bool
    content_length: int | None
    connection: Sequence[bytes]
    expect: Sequence[bytes]
    upgrade: bytes | None


# The fields check_fields looks at; every other name is skipped after one lower().
_SELECTED = frozenset(
    (
        b"host", b"content-type", b"content-length", b"transfer-encoding", b"connection",
        b"expect", b"upgrade",
    )
)
_NONE: list[bytes] = []


def check_fields(version: bytes, headers: Headers) -> Rejection | HeadFields:
    """Checks on the parsed fields; what they say about framing when they are good.

    One pass over ``headers`` collects the fields the rules need (each name is lower-cased
    once), then the rules read only those.
    """
    selected: dict[bytes, list[bytes]] = {}
    for name, value in headers:
        lname = name.lower()
        if lname in _SELECTED:
            if lname in selected:
                selected[lname].append(value)
            else:
                selected[lname] = [value]
    if len(selected) == 1 and len(selected.get(b"host", _NONE)) == 1:
        return _ONLY_HOST  # most requests: one Host, no body, no connection options
    rejection = _check_singletons(version, selected)
    if rejection is not None:
        return rejection
    framing = _framing(version, selected)
    if isinstance(framing, Rejection):
        return framing
    upgrade = selected.get(b"upgrade")
    connection = selected.get(b"connection")
    expect = selected.get(b"expect")
    return HeadFields(  # positional: a third of the cost of keywords, on every request
        framing[0],  # chunked
        framing[1],  # content_length
        field_tokens(connection) if connection else (),
        field_tokens(expect) if expect else (),
        upgrade[0] if upgrade else None,
    )


#: what the fields of a head with one Host field and none of the others say (shared: the
#: HeadFields of a request are only read)
_ONLY_HOST = HeadFields(chunked=False, content_length=None, connection=(), expect=(),
                        upgrade=None)


def field_tokens(values: list[bytes]) -> list[bytes]:
    """The comma-separated tokens of a field's values, trimmed and lower-cased."""
    return [token.strip(_WS).lower() for value in values for token in value.split(b",")]


def check_method(method: bytes, limits: Limits) -> Rejection | None:
    """A token, and (unless permitted otherwise) a conventional one: 3-20 bytes, upper case."""
    if not TOKEN.match(method):
        return Rejection(400, "invalid request method")
    if limits.permit_unconventional_http_method:
        return None
    if not 3 <= len(method) <= 20 or _UNCONVENTIONAL_METHOD_BYTE.search(method):
        return Rejection(400, "unconventional request method")
    return None


def _check_version(version: bytes, limits: Limits) -> Rejection | None:
    if _VERSION.match(version) is None:
        return Rejection(400, "invalid HTTP version")
    # A later HTTP/1 minor version is read as 1.1 (RFC 9112 2.6, and gunicorn accepts
    # 1.0-1.9); other major versions only with permit_unconventional_http_version.
    if version[5:6] != b"1" and not limits.permit_unconventional_http_version:
        return Rejection(505, "HTTP version not supported")
    return None


def served_version(version: bytes) -> bytes:
    """The version an accepted request of ``version`` is served as: itself for HTTP/1.0
    and 1.1, HTTP/1.0 for 0.x, HTTP/1.1 for anything later (1.2-1.9, 2.0-9.9)."""
    if version in _USUAL_VERSIONS:
        return version
    return b"HTTP/1.0" if version[5:6] == b"0" else b"HTTP/1.1"


def check_target(method: bytes, target: bytes) -> Rejection | None:
    """Visible ASCII in one of the four request-target forms (RFC 9112 3.2)."""
    if not target or _BAD_TARGET_BYTE.search(target):
        return Rejection(400, "invalid request target")
    if target.startswith(b"/"):
        return None
    if target == b"*":
        return None if method == b"OPTIONS" else Rejection(400, "'*' target outside OPTIONS")
    if method == b"CONNECT":
        ok = _CONNECT_AUTHORITY.match(target) is not None
        return None if ok else Rejection(400, "invalid CONNECT target")
    scheme, sep, rest = target.partition(b"://")
    if not (sep and scheme.lower() in (b"http", b"https") and rest and rest[:1] not in b"/?#"):
        return Rejection(400, "invalid request target form")
    if _ABSOLUTE_AUTHORITY.match(rest) is None:
        return Rejection(400, "invalid authority in request target")
    return None


def _check_singletons(version: bytes, selected: dict[bytes, list[bytes]]) -> Rejection | None:
    hosts = selected.get(b"host", _NONE)
    if len(hosts) > 1:
        return Rejection(400, "more than one Host header")
    if version == b"HTTP/1.1" and not hosts:
        return Rejection(400, "missing Host header")
    if len(selected.get(b"content-type", _NONE)) > 1:
        # gunicorn 26.1+: two Content-Types leave the body's meaning ambiguous.
        return Rejection(400, "more than one Content-Type header")
    return None


def _framing(
    version: bytes, selected: dict[bytes, list[bytes]]
) -> Rejection | tuple[bool, int | None]:
    """(chunked, content_length) when the framing fields are good."""
    lengths = selected.get(b"content-length", _NONE)
    codings = selected.get(b"transfer-encoding", _NONE)
    if codings:
        if lengths:
            return Rejection(400, "both Content-Length and Transfer-Encoding")
        if version == b"HTTP/1.0":
            return Rejection(400, "Transfer-Encoding in an HTTP/1.0 request")
        items = [c.strip(_WS).lower() for v in codings for c in v.split(b",")]
        if items[-1] != b"chunked" or items.count(b"chunked") != 1 or not all(items):
            return Rejection(400, "Transfer-Encoding must end in chunked")
        if len(items) > 1:
            return Rejection(501, "unsupported transfer coding")
        return True, None
    if not lengths:
        return False, None
    if len(lengths) > 1 or not _DIGITS.match(lengths[0]) or len(lengths[0]) > 18:
        return Rejection(400, "invalid Content-Length")
    return False, int(lengths[0])


def _values(headers: Headers, name: bytes) -> list[bytes]:
    return [v for n, v in headers if n.lower() == name]


def header_value(headers: Headers, name: bytes) -> bytes | None:
    """The comma-joined values of header ``name`` (lower case), or None if absent."""
    values = _values(headers, name)
    return b", ".join(values) if values else None
