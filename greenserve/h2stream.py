"""One HTTP/2 stream as an adapter sees it: the same surface as an HTTP/1 ``InlineStream``.

The session's reader greenlet feeds the request body in (:meth:`H2Stream.feed`); the app
runs in a greenlet of its own and reads it with :meth:`H2Stream.receive`, which gives the
flow-control window back as the app consumes, so an upload never waits in the server's
memory beyond one window. The response head is held until the first body bytes (or the
end), so a small response goes out as one HEADERS and one DATA frame in one write.
"""

from __future__ import annotations

import socket
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import gevent
import gevent.event

from .protocol.events import Headers, Request
from .protocol.writer import (
    LocalProtocolError,
    check_headers,
    status_has_body,
)
from .streams import ClientDisconnected, InlineStream

if TYPE_CHECKING:
    from .h2session import H2Session


class H2Stream:
    """A request/response pair on one HTTP/2 stream (see the module docstring)."""

    #: HTTP/2 streams never switch protocols (RFC 8441 WebSockets are not offered)
    upgraded = False

    def __init__(self, session: H2Session, request: Request, *, body_ended: bool) -> None:
        self.session = session
        #: the adapters keep per-connection data (``environ_base``) on ``conn``
        self.conn = session
        self.request = request
        self.info = session.info
        self.stream_id = request.stream_id
        self.status: int | None = None
        self.response_headers: Headers = []
        self.bytes_sent = 0
        self.body_done = False
        #: the response ended cleanly (END_STREAM sent)
        self.complete = False
        #: the client reset the stream, or the connection is gone
        self.reset = False
        #: called (in the reader greenlet) when the stream is reset: the ASGI cycle's hook
        self.on_reset: Callable[[], None] | None = None
        self._chunks: deque[tuple[bytes, int]] = deque()
        self._ended = body_ended  # the client sent END_STREAM
        self._arrived = gevent.event.Event()
        self._continue_sent = False
        self._held: Headers | None = None  # a response head waiting for its first body bytes
        self._with_body = True
        self._length_left: int | None = None  # what the app's Content-Length still promises
        self._data_ended = False  # END_STREAM went out with the last DATA frame
        #: trailers were announced (ASGI): the stream must not end with the body
        self.expect_trailers = False

    # -- fed by the session's reader ---------------------------------------------------------
    def feed(self, data: bytes, flow_length: int) -> None:
        """Body bytes arrived (``flow_length`` counts padding too, for the window)."""
        self._chunks.append((data, flow_length))
        self._arrived.set()

    def feed_end(self) -> None:
        """The client ended its side (END_STREAM, or trailers)."""
        self._ended = True
        self._arrived.set()

    def feed_reset(self) -> None:
        """The client reset the stream or the connection went away."""
        if self.reset:
            return
        self.reset = True
        self._arrived.set()
        if self.on_reset is not None:
            self.on_reset()

    # -- request body -------------------------------------------------------------------------
    def receive(self) -> bytes:
        """The next piece of request body; ``b""`` once it is complete (blocks)."""
        while True:
            data = self.receive_nowait()
            if data is not None:
                return data
            if self.reset:
                raise ClientDisconnected("the client reset the stream")
            if self.request.expect_continue and not self._continue_sent:
                self._continue_sent = True
                if self.status is None and self._held is None:
                    self.session.send_headers(self.stream_id, [(b":status", b"100")])
            self._arrived.clear()
            if not self._arrived.wait(self.session.send_timeout):
                self.session.reset_stream(self.stream_id, cancel=True)
                raise ClientDisconnected("timed out waiting for the request body")

    def receive_nowait(self) -> bytes | None:
        """Body already received, without waiting: None when nothing is there yet."""
        if self.body_done:
            return b""
        if self._chunks:
            parts: list[bytes] = []
            flow = 0
            while self._chunks:
                data, length = self._chunks.popleft()
                parts.append(data)
                flow += length
            self.session.consumed(self.stream_id, flow)
            return b"".join(parts)
        if self._ended:
            self.body_done = True
            return b""
        return None

    # -- response -----------------------------------------------------------------------------
    @property
    def response_started(self) -> bool:
        """The response head has been given (it may still be held for the first bytes)."""
        return self.status is not None

    def send_head(self, status: int, headers: Headers, reason: bytes = b"") -> None:
        """Start the response; it goes out with the first body bytes or the end."""
        if not 200 <= status <= 999:
            raise LocalProtocolError(f"invalid status code {status!r}")
        check_headers(headers)
        self.status = status
        self.response_headers = headers
        self._with_body = status_has_body(status, self.request.method)
        for name, value in headers:
            if name.lower() == b"content-length":
                if not value.isdigit():
                    raise LocalProtocolError(f"invalid Content-Length {value!r}")
                self._length_left = int(value)
        self._held = self.session.response_headers(status, headers)

    def send_data(self, data: bytes, end: bool = False) -> None:
        """Send a piece of the response body (waits for the client's window); ``end``
        finishes the response after it."""
        if end:
            self.send_data(data)
            self.end()
            return
        if not data or not self._with_body:
            return
        last = False
        if self._length_left is not None:
            if len(data) > self._length_left:
                raise LocalProtocolError("response body longer than its Content-Length")
            self._length_left -= len(data)
            # The Content-Length is reached: END_STREAM rides on this DATA frame (end()
            # then has nothing to send), unless trailers are to follow.
            last = not self._length_left and not self.expect_trailers
        self._release_head()
        self.bytes_sent += len(data)
        self.session.send_data(self.stream_id, data, end_stream=last)
        self._data_ended = last

    def end(self, trailers: Headers | None = None) -> None:
        """Finish the response (with trailers, when given)."""
        if self._length_left and self._with_body:
            raise LocalProtocolError("response body shorter than its Content-Length")
        held = self._held
        if held is not None:
            self._held = None
            self.session.send_headers(self.stream_id, held, end_stream=not trailers)
        if trailers:
            check_headers(trailers)
            self.session.send_trailers(self.stream_id, trailers)
        elif held is None and not self._data_ended:
            self.session.send_data(self.stream_id, b"", end_stream=True)
        self.complete = True

    def _release_head(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self.session.send_headers(self.stream_id, held, flush=False)

    def send_informational(self, status: int, headers: Headers) -> None:
        """A 1xx response (103 Early Hints) before the final one."""
        if self.status is None and self._held is None:
            check_headers(headers)
            self.session.send_headers(
                self.stream_id, [(b":status", b"%d" % status),
                                 *((n.lower(), v) for n, v in headers)])

    def send_text(self, status: int, text: str, headers: Headers | None = None) -> None:
        """A whole short ``text/plain`` response (what the server answers itself)."""
        body = f"{status} {text}\n".encode()
        self.send_head(status, [(b"Content-Type", b"text/plain; charset=utf-8"),
                                (b"Content-Length", b"%d" % len(body)), *(headers or ())])
        self.send_data(body)
        self.end()

    def sendfile(self, fileobj: Any, offset: int, count: int | None) -> int:
        """Send file bytes (read in pieces: DATA frames need the bytes in user space)."""
        if offset:
            fileobj.seek(offset)
        sent = 0
        while count is None or sent < count:
            size = 65536 if count is None else min(65536, count - sent)
            block = fileobj.read(size)
            if not block:
                break
            self.send_data(block)
            sent += len(block)
        return sent

    # -- what HTTP/1 streams also offer -------------------------------------------------------
    @property
    def sock(self) -> socket.socket:
        """The connection's socket (``gunicorn.socket``): shared by every stream."""
        return self.session.sock

    def prepare_upgrade(self) -> None:
        """Nothing to prepare: an HTTP/2 request never switches protocols."""

    def switch_protocols(self, headers: Headers) -> tuple[socket.socket, bytes]:
        """Refused: HTTP/2 has no ``101 Switching Protocols``."""
        raise LocalProtocolError("no protocol switch on an HTTP/2 stream")


#: a request being served: on an HTTP/1 connection or an HTTP/2 stream (one surface; said
#: exactly where both arrive, since a compiled build checks the types it is given)
AnyStream = InlineStream | H2Stream
