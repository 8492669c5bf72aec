"""``environ["wsgi.websocket"]``: WebSocket for WSGI apps, with gevent-websocket's API.

The object is a blocking, greenlet-friendly driver of the sans-io
:class:`~greenserve.protocol.websocket.WebSocketSession`. It reads from the client socket
only inside :meth:`WebSocket.receive` (in the app's greenlet), so a slow reader lets TCP
flow control slow the client down instead of growing a buffer; :meth:`WebSocket.send`
blocks until the kernel has taken the frame (for at most ``--timeout`` seconds), so a slow
client slows its sender down. Pings from the client are answered while the app receives;
``--ws-ping-interval`` adds a small greenlet that pings and, when the app is not receiving,
reads just enough to see that the client is alive.

**The handshake is lazy.** The ``101`` goes out on the first use of the object
(``receive``, ``send``, ``close`` or an explicit ``accept``), not before the app is called.
gevent-websocket apps only ever use the object, so they cannot tell the difference; but an
app may still refuse the upgrade with an ordinary HTTP response (403, 404...) as long as it
has not touched ``wsgi.websocket``, and libraries that do their own handshake over
``environ["gunicorn.socket"]`` (simple-websocket, Flask-Sock, python-engineio) find the
socket untouched. An app that returns without using the object or starting a response gets
what gevent-websocket gave it: the handshake, then a normal close.
"""

from __future__ import annotations

import logging
import socket
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gevent
import gevent.lock

from ..connection import os_sockets
from ..protocol.websocket import (
    INTERNAL_ERROR,
    NORMAL_CLOSURE,
    Handshake,
    HandshakeRejection,
    Message,
    SessionClosed,
    SessionEvent,
    SessionState,
    WebSocketSession,
    check_handshake,
    is_websocket_request,
)
from ..sendall import send_all
from ..streams import ClientDisconnected, InlineStream

if TYPE_CHECKING:
    from ..worker import WorkerState

log = logging.getLogger("greenserve.error")

_RECV_SIZE = 65536
# With permessage-deflate one received chunk may inflate about a thousandfold: read less.
_RECV_SIZE_DEFLATE = 16384
_CLOSE_TIMEOUT = 5.0  # how long to wait for the client's answer to our close frame
_LINGER = 2.0  # how long to read (and drop) what a client still sends after the end


def _direct_socket(sock: Any) -> socket.socket | None:
    """The OS socket under a plain gevent socket, for sends that must not wait (else None)."""
    try:
        return os_sockets(sock)[0]
    except TypeError:  # not a gevent socket: every send goes through sendall
        return None


class WebSocketError(OSError):
    """The WebSocket is closed or the connection broke (gevent-websocket's ``WebSocketError``
    is likewise a ``socket.error``)."""


class _SendTimeout(Exception):
    pass


@dataclass(frozen=True, slots=True)
class WebSocketOptions:
    """The settings every WebSocket of a worker shares."""

    max_message_size: int
    ping_interval: float = 0.0
    ping_timeout: float = 20.0
    send_timeout: float | None = None
    #: negotiate permessage-deflate when the client offers it (``ws_per_message_deflate``)
    compression: bool = True

    @classmethod
    def from_state(cls, state: WorkerState) -> WebSocketOptions:
        cfg = state.cfg
        return cls(
            max_message_size=cfg.websocket_max_message_size,
            ping_interval=cfg.ws_ping_interval,
            ping_timeout=cfg.ws_ping_timeout,
            send_timeout=state.send_timeout,
            compression=cfg.ws_per_message_deflate,
        )


def attach_websocket(
    stream: InlineStream, environ: dict[str, Any], options: WebSocketOptions
) -> WebSocket | HandshakeRejection | None:
    """Put a :class:`WebSocket` in ``environ`` when the request is a valid handshake.

    None for a plain HTTP request; a :class:`HandshakeRejection` (426, 400) for a broken
    handshake, which the adapter answers without calling the app.
    """
    if not is_websocket_request(stream.request):
        return None
    handshake = check_handshake(stream.request)
    if isinstance(handshake, HandshakeRejection):
        return handshake
    stream.prepare_upgrade()
    ws = WebSocket(stream, handshake, environ, options)
    environ["wsgi.websocket"] = ws
    environ["wsgi.websocket_version"] = WebSocket.version
    return ws


class WebSocket:
    """One WebSocket connection, as ``environ["wsgi.websocket"]`` (see the module docstring).

    ``receive()`` returns the next message (``str`` or ``bytes``), or None once when the
    connection has closed (by either side); after that it raises :class:`WebSocketError`,
    as gevent-websocket does, so a loop that ignores None cannot spin. ``send()`` raises
    :class:`WebSocketError` once the connection is closing or closed.
    """

    version = "13"

    def __init__(self, stream: InlineStream, handshake: Handshake, environ: dict[str, Any],
                 options: WebSocketOptions) -> None:
        self.environ = environ
        self.handshake = handshake
        #: the subprotocol chosen by :meth:`accept` (None when none was)
        self.subprotocol: str | None = None
        self._stream = stream
        self._options = options
        self._session: WebSocketSession | None = None
        self._sock: socket.socket | None = None
        # The OS-level, non-blocking socket under gevent's (None under TLS): a send the
        # kernel takes at once skips gevent's sendall and the send timeout.
        self._direct: socket.socket | None = None
        self._unread = False  # the pinger read bytes that no receive() has parsed yet
        self._read_lock = gevent.lock.Semaphore()
        self._write_lock = gevent.lock.Semaphore()
        self._reported = False  # receive() has returned None for the close
        self._dead = False  # the socket failed or was cut: no more I/O
        self._shut = False  # our side of the TCP connection is shut down
        self._last_recv = 0.0
        self._pinger: gevent.Greenlet | None = None

    # -- gevent-websocket's attributes ------------------------------------------------------
    @property
    def path(self) -> str | None:
        return self.environ.get("PATH_INFO")

    @property
    def origin(self) -> str | None:
        return self.environ.get("HTTP_ORIGIN")

    @property
    def protocol(self) -> str | None:
        """The ``Sec-WebSocket-Protocol`` the client sent (gevent-websocket's meaning); the
        one chosen is :attr:`subprotocol`."""
        return self.environ.get("HTTP_SEC_WEBSOCKET_PROTOCOL")

    @property
    def subprotocols(self) -> list[str]:
        """The subprotocols the client offered, in its order of preference."""
        return list(self.handshake.subprotocols)

    @property
    def accepted(self) -> bool:
        """The handshake is done (``101`` was sent)."""
        return self._session is not None

    @property
    def closed(self) -> bool:
        """The connection is closing or closed (by either side, or lost)."""
        session = self._session
        return self._dead or (session is not None and session.state is not SessionState.OPEN)

    @property
    def close_code(self) -> int | None:
        """The close code received (or the one we failed the connection with), if any."""
        return self._session.close_code if self._session is not None else None

    @property
    def close_reason(self) -> str:
        return self._session.close_reason if self._session is not None else ""

    # -- the app's side ---------------------------------------------------------------------
    def accept(self, subprotocol: str | None = None,
               headers: list[tuple[str, str]] | None = None) -> None:
        """Send the ``101`` now, choosing ``subprotocol`` (one of :attr:`subprotocols`) and
        adding ``headers``; the first ``receive``/``send``/``close`` does it otherwise."""
        if self._session is not None:
            return
        if self._stream.response_started:
            raise WebSocketError("an HTTP response was already sent on this connection")
        extra = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in headers or []]
        accepted = self.handshake.accept(
            subprotocol, compression=self._options.compression, extra_headers=extra)
        try:
            sock, trailing = self._stream.switch_protocols(accepted.headers)
        except ClientDisconnected as exc:
            self._dead = True
            raise WebSocketError(f"the client went away during the handshake: {exc}") from exc
        self._sock = sock
        self._direct = _direct_socket(sock)
        self.subprotocol = accepted.subprotocol
        self._session = WebSocketSession(
            accepted.extensions, max_message_size=self._options.max_message_size,
            trailing_data=trailing,
        )
        self._last_recv = time.monotonic()
        self._stream.conn.state.websockets.add(self)  # closed with 1001 on a graceful stop
        if self._options.ping_interval:
            self._pinger = gevent.spawn(self._keepalive)

    def receive(self) -> str | bytes | None:
        """The next message; None when the connection has closed (see the class docstring)."""
        try:
            session = self._open_session()
        except WebSocketError:
            if self._reported:
                raise
            self._reported = True
            return None  # the client left before the handshake could be answered
        with self._read_lock:
            while True:
                event = self._next_event(session)
                if isinstance(event, Message):
                    return event.data
                if event is not None:
                    continue  # a pong, or the close (the session's state tells)
                if self.closed:
                    if self._reported:
                        raise WebSocketError("Connection is already closed")
                    self._reported = True
                    return None
                self._read(None)

    def send(self, message: str | bytes | bytearray | memoryview,
             binary: bool | None = None) -> None:
        """Send a text (``str``) or binary (``bytes``-like) message; ``binary`` forces one."""
        session = self._session or self._open_session()
        if binary is None:
            binary = not isinstance(message, str)
        if binary:
            data: str | bytes = message.encode() if isinstance(message, str) else bytes(message)
        else:
            data = message if isinstance(message, str) else bytes(message).decode()
        if self._dead:
            raise WebSocketError("Connection is already closed")
        with self._write_lock:
            try:
                # Framed under the lock: whatever is queued (a pong) goes out first.
                frames = session.take_with_message(data)
            except SessionClosed as exc:
                raise WebSocketError("Connection is already closed") from exc
            self._write(frames)

    def ping(self, payload: bytes = b"") -> None:
        """Send a ping; the pong is not waited for."""
        session = self._open_session()
        try:
            session.ping(payload)
        except SessionClosed as exc:
            raise WebSocketError("Connection is already closed") from exc
        self._flush()

    def close(self, code: int = NORMAL_CLOSURE, reason: str | bytes = "",
              message: str | bytes | None = None) -> None:
        """Start the close handshake with ``code`` and ``reason`` (``message`` is
        gevent-websocket's name for it). The client's answer is awaited after the app
        returns; a second call does nothing."""
        text = message if message is not None else reason
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        try:
            session = self._open_session()
        except WebSocketError:
            return  # the client is gone before the handshake: nothing to close
        if session.state is not SessionState.OPEN or self._dead:
            return
        session.close(code, text)
        try:
            self._flush()
        except WebSocketError:
            pass

    # -- the server's side ------------------------------------------------------------------
    def finish(self, *, failed: bool = False) -> None:
        """End the session after the app returned: close (1011 when the app ``failed``) if
        it is still open, wait a little for the client's close frame, then shut down TCP."""
        session = self._session
        if session is None or self._sock is None:
            return
        self._stream.conn.state.websockets.discard(self)
        if self._pinger is not None:
            self._pinger.kill(timeout=1)
        if session.state is SessionState.OPEN and not self._dead:
            session.close(INTERNAL_ERROR if failed else NORMAL_CLOSURE)
            try:
                self._flush()
            except WebSocketError:
                pass
        if session.state is SessionState.CLOSING and not self._dead:
            self._await_close(session)
        self._shutdown_write()
        self._linger()

    def _await_close(self, session: WebSocketSession) -> None:
        deadline = time.monotonic() + _CLOSE_TIMEOUT
        if not self._read_lock.acquire(timeout=_CLOSE_TIMEOUT):
            return  # another greenlet of the app is still receiving: it will see the close
        try:
            while session.state is SessionState.CLOSING and not self._dead:
                if self._next_event(session) is not None:
                    continue
                left = deadline - time.monotonic()
                if left <= 0 or not self._read(left):
                    return
        finally:
            self._read_lock.release()

    def _linger(self) -> None:
        """Read and drop what the client still sends until it closes (bounded), so closing
        our socket does not reset the connection before the client has read our close."""
        sock = self._sock
        if sock is None or self._dead:
            return
        with gevent.Timeout(_LINGER, False):
            try:
                while sock.recv(_RECV_SIZE):
                    pass
            except OSError:
                pass

    # -- I/O ------------------------------------------------------------------------------------
    def _open_session(self) -> WebSocketSession:
        if self._session is None:
            if self._dead:
                raise WebSocketError("Connection is already closed")
            self.accept()
        assert self._session is not None
        return self._session

    def _read(self, timeout: float | None) -> bool:
        """Read once (up to ``timeout`` seconds) into the session; False on a timeout.

        Nothing is parsed here: events are pulled one at a time by :meth:`receive`, so a
        message is handed to the app (and answered) before the frames behind it are even
        looked at, and a protocol error further on cannot overtake it.
        """
        session = self._session
        sock = self._sock
        assert session is not None and sock is not None
        size = _RECV_SIZE_DEFLATE if session.compressed else _RECV_SIZE
        data: bytes | None = None
        with gevent.Timeout(timeout, False):
            try:
                data = sock.recv(size)
            except OSError:
                data = b""  # a reset counts as the end of the connection
        if data is None:
            return False
        if data:
            self._last_recv = time.monotonic()
        session.receive_data(data)
        return True

    def _next_event(self, session: WebSocketSession) -> SessionEvent | None:
        """The session's next event, with its replies (pong, close) sent."""
        event = session.next_event()
        if event is None:
            self._unread = False
        try:
            self._flush()
        except WebSocketError:
            pass
        if session.state in (SessionState.CLOSED, SessionState.FAILED):
            # The server closes TCP first (RFC 6455 §7.1.1); after a failure it must not
            # wait for a close reply from a peer that broke the protocol.
            self._shutdown_write()
        return event

    def _flush(self) -> None:
        session = self._session
        assert session is not None
        with self._write_lock:
            self._write(session.data_to_send())

    def _write(self, data: bytes) -> None:
        """Send ``data`` (the write lock held); WebSocketError when the socket is dead."""
        if not data or self._dead:
            return
        sock = self._sock
        assert sock is not None
        try:
            send_all(sock, self._direct, data, self._options.send_timeout, _SendTimeout)
        except (OSError, _SendTimeout) as exc:
            self._abort()
            raise WebSocketError("Socket is dead") from exc

    def _shutdown_write(self) -> None:
        if self._shut or self._sock is None:
            return
        self._shut = True
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def _abort(self) -> None:
        """Cut the connection: a greenlet blocked in ``receive`` sees it end (1006)."""
        self._dead = True
        if self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    # -- server pings ---------------------------------------------------------------------------
    def _keepalive(self) -> None:
        interval, timeout = self._options.ping_interval, self._options.ping_timeout
        while True:
            gevent.sleep(interval)
            if self.closed:
                return
            sent_at = time.monotonic()
            try:
                self.ping()
            except WebSocketError:
                return
            if timeout and not self._answered(sent_at, timeout):
                peer = self.environ.get("REMOTE_ADDR", "-")
                log.info("WebSocket ping timeout (%g s): closing the connection from %s",
                         timeout, peer)
                session = self._session
                if session is not None and session.state is SessionState.OPEN:
                    session.close(INTERNAL_ERROR, "keepalive ping timeout")
                    try:
                        self._flush()
                    except WebSocketError:
                        pass
                self._abort()
                return

    def _answered(self, sent_at: float, timeout: float) -> bool:
        """Whether anything arrived from the client within ``timeout`` of ``sent_at``."""
        deadline = sent_at + timeout
        while self._last_recv < sent_at:
            left = deadline - time.monotonic()
            if left <= 0 or self._dead:
                return False
            if self._read_lock.acquire(blocking=False):
                try:
                    if self._unread:
                        return True  # the client talks; the app is just slow to read it
                    if self._read(left):
                        self._unread = True
                finally:
                    self._read_lock.release()
            else:
                gevent.sleep(left)  # the app is receiving: it will see the answer
        return True
