"""The ASGI ``http`` cycle of one HTTP/2 stream.

Everything the app sees is :class:`~.http.HTTPCycle`'s (message order checks, disconnect,
cancellation, the 500 for an app that fails before its head); only the transport differs.
An HTTP/1 cycle turns messages into bytes and writes them from the loop when the kernel
takes them; an HTTP/2 stream's frames share the connection's flow-control windows and
writer, which may wait, so here messages become *operations* that the stream's greenlet
carries out (one crossing per ``send``). Request body the reader greenlet has already
received is handed over without a crossing, and a client that resets the stream is told at
once (no socket to watch: the reader sees RST_STREAM).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ..protocol.writer import check_headers, status_has_body, with_content_length
from ..streams import ClientDisconnected
from .http import (
    _DISCONNECT,
    _SERVER_ERROR,
    BODY_AFTER_END,
    FILE,
    MISPLACED_TRAILERS,
    NO_START,
    READ,
    WRITE,
    HTTPCycle,
    Message,
)

if TYPE_CHECKING:
    from ..h2stream import H2Stream
    from .adapter import ASGIAdapter

# The operations (first item of each tuple) the stream's greenlet performs, in order.
_HEAD, _DATA, _END, _INFO = "head", "data", "end", "info"
Op = tuple[Any, ...]


class H2Cycle(HTTPCycle):
    """:class:`HTTPCycle` over an :class:`~greenserve.h2stream.H2Stream` (module docstring)."""

    def __init__(self, adapter: ASGIAdapter, stream: H2Stream, scope: dict[str, Any]) -> None:
        # Not HTTPCycle.__init__: it reads the HTTP/1 connection's parser and socket.
        self.adapter = adapter
        self.bridge = adapter.bridge
        self.stream = stream
        self.h2stream = stream
        self.request = request = stream.request
        self.scope = scope
        self.direct = False
        self.quiet = not (request.chunked or request.content_length)
        stream.on_reset = self._reset_seen

    def _reset_seen(self) -> None:  # the reader greenlet: RST_STREAM or the connection ended
        self.bridge.call_soon(self.client_gone)

    # -- receive ------------------------------------------------------------------------------
    def _buffered_body(self) -> Message | None:
        data = self.h2stream.receive_nowait()
        if data is None:
            return _DISCONNECT if self.h2stream.reset else None
        if not data and self.h2stream.body_done:
            self._body_complete()
            return {"type": "http.request", "body": b"", "more_body": False}
        more = self.h2stream.receive_nowait()
        if more == b"" and self.h2stream.body_done:
            self._body_complete()
            return {"type": "http.request", "body": data, "more_body": False}
        self.first_read = False
        return {"type": "http.request", "body": data + (more or b""), "more_body": True}

    def watch(self) -> None:
        """Nothing to watch: a stream reset reaches :meth:`_reset_seen` from the reader."""
        if self.h2stream.reset and not self.disconnected:
            self.client_gone()

    # -- send: messages become operations ----------------------------------------------------
    def _body_bytes(self, message: Message) -> list[Op]:
        if not self.started:
            raise RuntimeError(NO_START)
        if self.body_sent:
            raise RuntimeError(BODY_AFTER_END)
        body = message.get("body", b"")
        more = message.get("more_body", False)
        ops: list[Op] = []
        if not self.head_sent:
            ops.append(self._head_op(None if more or self.trailers is not None else len(body)))
        if body:
            ops.append((_DATA, bytes(body)))
        if not more:
            self.body_sent = True
            if self.trailers is None:
                ops.append((_END, None))
                self._finish()
        return ops

    def _head_op(self, length: int | None) -> Op:
        headers = list(self.headers)
        check_headers(headers)  # a bad header is the app's error, raised in its send()
        if length is not None and status_has_body(self.status, self.request.method):
            headers = with_content_length(headers, length, b"content-length")
        self.head_sent = True
        return (_HEAD, self.status, headers)

    async def _send_error(self) -> None:
        self.status, self.trailers = 500, None
        self.headers = [(b"content-type", b"text/plain; charset=utf-8")]
        self.started = True
        ops = [self._head_op(len(_SERVER_ERROR)), (_DATA, _SERVER_ERROR), (_END, None)]
        self._finish()
        await self._write(ops)

    async def _send_trailers(self, message: Message) -> None:
        if self.trailers is None or not self.body_sent:
            raise RuntimeError(MISPLACED_TRAILERS)
        self.trailers.extend(message.get("headers", ()))
        if message.get("more_trailers", False):
            return
        check_headers(self.trailers)
        self._finish()
        await self._write([(_END, self.trailers)])

    async def _send_early_hint(self, message: Message) -> None:
        if self.head_sent:
            return  # too late for hints: the final response is out
        links = [(b"link", bytes(link)) for link in message.get("links", ())]
        await self._write([(_INFO, 103, links)])

    def _write_now(self, data: Any) -> Any:
        """Carry the operations out from the loop when nothing in them can wait (the client's
        window takes all the data; the write itself goes to a greenlet): one ``send`` then
        costs no crossing. Otherwise hand them all to the stream's greenlet."""
        if not data or self.disconnected:
            return None
        stream = self.h2stream
        session = stream.session
        size = sum(len(op[1]) for op in data if op[0] == _DATA)
        if stream.reset or (size and session.h2.local_flow_control_window(
                stream.stream_id) < size):
            return data
        session.nonblocking = True
        try:
            self._perform(data)
        except ClientDisconnected:
            self.client_gone()
        finally:
            session.nonblocking = False
        return None

    # -- the stream greenlet's side ----------------------------------------------------------
    def _do(self, kind: str, payload: Any) -> Message | None:
        from ..protocol.writer import LocalProtocolError
        from ..streams import BodyError

        try:
            if kind == WRITE:
                self._perform(payload)
                return None
            if kind == READ:
                return self._read()
            assert kind == FILE
            self._send_file(payload)
            return None
        except (ClientDisconnected, TimeoutError, LocalProtocolError) as exc:
            if isinstance(exc, BodyError):
                self.body_error = exc
            self.failed = self.failed or isinstance(exc, LocalProtocolError)
            return _DISCONNECT

    def _perform(self, ops: list[Op]) -> None:
        stream = self.h2stream
        for op in ops:
            kind = op[0]
            if kind == _DATA:
                stream.send_data(op[1])
            elif kind == _HEAD:
                stream.expect_trailers = self.trailers is not None
                stream.send_head(op[1], op[2])
            elif kind == _END:
                stream.end(op[1])
            else:
                stream.send_informational(op[1], op[2])

    def _send_file(self, path: str) -> None:
        stream = self.h2stream
        with open(path, "rb") as fileobj:
            size = os.fstat(fileobj.fileno()).st_size
            self._perform([self._head_op(size)])
            if status_has_body(self.status, self.request.method):
                stream.sendfile(fileobj, 0, size)
        stream.end()
