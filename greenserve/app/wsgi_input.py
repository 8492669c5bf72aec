"""``wsgi.input``: a streaming, file-like view of the request body."""

from __future__ import annotations

from collections.abc import Iterator

from ..h2stream import AnyStream


class WSGIInput:
    """Reads the body from the stream on demand; nothing is buffered beyond what is asked.

    A read past the end returns ``b""`` (``wsgi.input_terminated`` is set, so apps may read
    to EOF without a Content-Length, e.g. for chunked uploads).
    """

    def __init__(self, stream: AnyStream) -> None:
        self._stream = stream
        self._buf = bytearray()
        self._eof = False

    def _fill(self) -> bool:
        """Read one more piece of body into the buffer; False at the end of the body."""
        if self._eof:
            return False
        chunk = self._stream.receive()
        if not chunk:
            self._eof = True
            return False
        self._buf += chunk
        return True

    def _take(self, size: int) -> bytes:
        data = bytes(self._buf[:size])
        del self._buf[:size]
        return data

    def read(self, size: int | None = -1) -> bytes:
        """Read ``size`` bytes, or the rest of the body when size is negative or None."""
        if size is None or size < 0:
            while self._fill():
                pass
            return self._take(len(self._buf))
        while len(self._buf) < size and self._fill():
            pass
        return self._take(size)

    def readline(self, size: int | None = -1) -> bytes:
        """Read one line (up to ``size`` bytes), including the newline."""
        limit = -1 if size is None else size
        start = 0
        while True:
            end = self._buf.find(b"\n", start)
            if end >= 0:
                end += 1
                break
            if 0 <= limit <= len(self._buf):
                end = limit
                break
            start = len(self._buf)
            if not self._fill():
                end = len(self._buf)
                break
        if 0 <= limit < end:
            end = limit
        return self._take(end)

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        """Read lines until the end of the body (or until ``hint`` bytes were read)."""
        lines: list[bytes] = []
        total = 0
        while line := self.readline():
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                break
        return lines

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line

    def close(self) -> None:
        """No-op: the server owns the stream (some apps call it anyway)."""
