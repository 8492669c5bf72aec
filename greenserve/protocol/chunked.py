"""A strict decoder for the chunked transfer coding (RFC 9112 section 7.1).

h11 and llhttp both accept chunk lines that RFC 9112 forbids (a space after the size, a bare
CR inside an extension), and those are request-smuggling vectors, so greenserve frames chunked
bodies itself, identically for every parser.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .events import Headers
from .policy import Limits, Rejection, check_trailer_line

_SIZE_LINE = re.compile(
    rb"([0-9A-Fa-f]{1,16})"  # chunk-size
    rb"((?:[ \t]*;[ \t]*[!#$%&'*+\-.^_`|~0-9A-Za-z]+"  # chunk-ext name (BWS allowed)
    rb"(?:[ \t]*=[ \t]*(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+"  # chunk-ext-val: token
    rb"|\"(?:[^\"\\\x00-\x08\x0a-\x1f\x7f]|\\[\t\x20-\x7e\x80-\xff])*\"))?)*)"  # or quoted
    rb"\Z"
)
# A chunk-size line is a size and optional extensions; nobody needs 4 KiB of those.
_MAX_SIZE_LINE = 4096


@dataclass(slots=True)
class ChunkedDecoder:
    """Incremental chunked-body decoder over a shared buffer.

    :meth:`feed` consumes what it can from ``buf`` and returns body bytes; ``done`` turns
    True after the last chunk and trailers. Errors come back as a :class:`Rejection`.
    ``header_fields`` is how many fields the head had: trailers count toward the same
    ``limit_request_fields`` budget (gunicorn 27).
    """

    limits: Limits = field(default_factory=Limits)
    header_fields: int = 0
    remaining: int = 0  # bytes left in the current chunk
    need_crlf: bool = False  # the CRLF after a chunk's data is pending
    in_trailers: bool = False
    done: bool = False
    trailers: Headers = field(default_factory=list)
    error: Rejection | None = None  # found after some body bytes: reported on the next feed

    def feed(self, buf: bytearray) -> bytes | Rejection:
        """Consume bytes from ``buf``; return the body bytes decoded so far.

        Body bytes decoded before an error are returned first and the error on the next
        call, so the events do not depend on how the bytes were split.
        """
        if self.error is not None:
            return self.error
        out = bytearray()
        while not self.done:
            if self.remaining:
                take = min(self.remaining, len(buf))
                if not take:
                    break
                out += buf[:take]
                del buf[:take]
                self.remaining -= take
                continue
            step = self._step(buf)
            if step is None:
                break
            if isinstance(step, Rejection):
                self.error = step
                return bytes(out) if out else step
        return bytes(out)

    def _step(self, buf: bytearray) -> Rejection | bool | None:
        """Handle one line: a chunk's CRLF, a size line or a trailer. None = need more."""
        if self.need_crlf and not b"\r\n".startswith(bytes(buf[:2])):
            # Checked before the line is complete so extra data cannot hide a request.
            return Rejection(400, "chunk data longer than its size")
        end = buf.find(b"\r\n")
        if end < 0:
            return self._check_partial(buf)
        line = bytes(buf[:end])
        del buf[: end + 2]
        if self.need_crlf:
            self.need_crlf = False
            return True
        if self.in_trailers:
            return self._trailer(line)
        return self._size_line(line)

    def _check_partial(self, buf: bytearray) -> Rejection | None:
        """A line still arriving: refuse it as soon as it cannot become valid."""
        limit = self.limits.field_size_limit if self.in_trailers else _MAX_SIZE_LINE
        if b"\n" in buf:
            return Rejection(400, "bare LF in chunked framing")
        if b"\r" in buf[:-1]:
            return Rejection(400, "bare CR in chunked framing")
        if len(buf.rstrip(b"\r")) > limit:
            return Rejection(431 if self.in_trailers else 400, "chunk line too long")
        return None

    def _size_line(self, line: bytes) -> Rejection | bool:
        match = _SIZE_LINE.match(line)
        if match is None or len(line) > _MAX_SIZE_LINE:
            return Rejection(400, "invalid chunk size line")
        size = int(match.group(1), 16)
        if size == 0:
            self.in_trailers = True
        else:
            self.remaining = size
            self.need_crlf = True
        return True

    def _trailer(self, line: bytes) -> Rejection | bool:
        if not line:
            self.done = True
            return True
        count = self.header_fields + len(self.trailers) + 1
        rejection = check_trailer_line(line, count, self.limits)
        if rejection is not None:
            return rejection
        name, _, value = line.partition(b":")
        self.trailers.append((name, value.strip(b" \t")))
        return True
