"""The socket side of an ASGI WebSocket: greenlets that read, write and close.

:class:`WebSocketIO` belongs to the connection greenlet of one WebSocket request. It sends
the ``101`` (or the app's denial response), drives the sans-io
:class:`~greenserve.protocol.websocket.WebSocketSession` and owns the socket afterwards:

- A **reader greenlet** reads the socket, feeds the session and hands each complete message
  to the loop (``deliver``). On a plain socket it exists only while there are bytes to read:
  an idle connection has just an I/O watcher, which starts one when the client sends. It
  stops reading while :data:`BACKLOG` messages wait for the app's ``receive()``, so a slow
  app lets TCP flow control slow the client down instead of growing a queue. Pings are
  answered as they are parsed.
- **Writes** go through the connection (``HTTPConnection.write``, under ``--timeout``) while
  holding :attr:`WebSocketIO.write_lock`; whoever holds it sends everything the session has
  queued, so frames never interleave. The loop may take the lock without blocking for its
  fast path (see :mod:`.websocket`) and hand the rest to :meth:`WebSocketIO.write_held`.
- A close from the peer is answered by the session; after it, or after a protocol error of
  the peer (a 1002/1007/1009 close frame from us), our side of TCP is shut down at once and
  the app gets ``websocket.disconnect``.

This module imports gevent and not asyncio; :mod:`.websocket` is the loop side.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import gevent
import gevent.event
import gevent.lock
from gevent import getcurrent

from ..app.websocket import WebSocketOptions
from ..protocol.events import Headers
from ..protocol.websocket import (
    INTERNAL_ERROR,
    NORMAL_CLOSURE,
    Closed,
    Handshake,
    Message,
    SessionState,
    WebSocketSession,
)
from ..streams import ClientDisconnected, InlineStream

log = logging.getLogger("greenserve.error")

#: messages read ahead of the app's ``receive()`` before the reader stops reading
BACKLOG = 16
_RECV_SIZE = 65536
_RECV_SIZE_DEFLATE = 16384  # one deflated chunk may inflate a thousandfold: read less
_CLOSE_TIMEOUT = 5.0  # how long to wait for the client's answer to our close frame
_LINGER = 2.0  # then how long to read (and drop) what it still sends before closing
#: how long a reader greenlet waits for more bytes before it ends (the connection is idle)
READER_PARK = 1.0

Deliver = Callable[[dict[str, Any]], None]


class WebSocketIO:
    """The greenlet side of one ASGI WebSocket (see the module docstring)."""

    def __init__(self, stream: InlineStream, handshake: Handshake, options: WebSocketOptions,
                 deliver: Deliver) -> None:
        self.stream = stream
        self.handshake = handshake
        self.options = options
        self.deliver = deliver
        self.write_lock = gevent.lock.Semaphore()
        self.session: WebSocketSession | None = None
        self.conn = stream.conn  # the socket's only user (reads, writes, shutdown)
        self.upgraded = False  # the 101 is out: the socket speaks WebSocket
        self.backlog = 0  # messages delivered to the loop and not yet received by the app
        self.room = gevent.event.Event()
        self.room.set()
        self.dead = False  # the socket failed or was cut: no more writes
        self.gone = False  # websocket.disconnect has been delivered
        self.http_started = False  # the app's denial response has started
        self.app_done = False  # the app returned: messages are read and dropped
        self.last_recv = 0.0
        self._shut = False
        self._reader: gevent.Greenlet | None = None
        self._watcher: Any = None  # plain sockets: wakes a reader when bytes arrive
        self._park_timer: Any = None  # ends a reader's wait for bytes (READER_PARK)
        self._ended = False  # the reader saw the end of the connection
        self._on_end: gevent.event.Event | None = None  # finish() waits for the end
        self._pinger: gevent.Greenlet | None = None

    # -- the handshake, or a denial ----------------------------------------------------------
    def accept(self, subprotocol: str | None, headers: Headers) -> None:
        """Send the ``101`` and start reading (ClientDisconnected if the client left)."""
        accepted = self.handshake.accept(
            subprotocol, compression=self.options.compression, extra_headers=headers)
        _, trailing = self.stream.switch_protocols(accepted.headers)
        self.upgraded = True
        self.session = WebSocketSession(
            accepted.extensions, max_message_size=self.options.max_message_size,
            trailing_data=trailing)
        self.last_recv = time.monotonic()
        self._start_reading()
        if self.options.ping_interval:
            self._pinger = gevent.spawn(self._keepalive)

    def http_response(self, status: int, headers: Headers, body: bytes, more: bool) -> None:
        """A piece of the app's denial response (``websocket.http.response.*``)."""
        stream = self.stream
        if not self.http_started:
            self.http_started = True
            headers = list(headers)
            if not more and not any(n.lower() == b"content-length" for n, _ in headers):
                headers.append((b"content-length", b"%d" % len(body)))
            stream.send_head(status, headers)
        stream.send_data(body)
        if not more:
            stream.end()

    def simple_response(self, status: int) -> None:
        """A short plain-text answer (403 for a close before accept, 500 for a failure)."""
        body = f"{status} {HTTPStatus(status).phrase}\n".encode()
        self.http_response(status, [(b"content-type", b"text/plain; charset=utf-8")],
                           body, False)

    # -- writing -------------------------------------------------------------------------------
    def flush(self) -> None:
        """Send what the session has queued (blocking this greenlet, under ``--timeout``)."""
        with self.write_lock:
            self._write_queued()

    def write_held(self, data: bytes) -> None:
        """Finish a write the loop started while holding :attr:`write_lock`; release it."""
        try:
            if not self.dead:
                self._send(data)
            self._write_queued()  # frames queued behind it meanwhile
        finally:
            self.write_lock.release()

    def _write_queued(self) -> None:
        session = self.session
        if session is None:
            return
        data = session.data_to_send()
        if data and not self.dead:
            self._send(data)

    def _send(self, data: bytes) -> None:
        try:
            self.conn.write(data)
        except ClientDisconnected:
            self.abort()
            raise

    def shutdown_write(self) -> None:
        """The server closes TCP first (RFC 6455 §7.1.1): no more bytes from us."""
        if self._shut or not self.upgraded:
            return
        self._shut = True
        self.conn.shutdown(socket.SHUT_WR)

    def abort(self) -> None:
        """Cut the connection: the reader sees it end (1006)."""
        self.dead = True
        if self.upgraded:
            self.conn.shutdown(socket.SHUT_RDWR)

    # -- reading -------------------------------------------------------------------------------
    def received(self) -> None:
        """(any greenlet) The app took one message: maybe let the reader read again."""
        self.backlog -= 1
        if self.backlog < BACKLOG:
            self.room.set()

    def _start_reading(self) -> None:
        if not self.conn.direct_writes:
            # TLS: decrypted bytes may wait in the TLS layer while the socket is quiet, so
            # one reader greenlet stays, blocked in recv.
            self._reader = gevent.spawn(self._read_loop)
            return
        # A plain socket has no reader greenlet once the client has been quiet for
        # READER_PARK seconds (a parked one costs its saved stack: ~10 KB RSS per idle
        # connection): a watcher starts one when bytes arrive. A busy client keeps its
        # reader, so no greenlet is made per message.
        hub = gevent.get_hub()
        self._watcher = hub.loop.io(self.conn.fileno(), 1)
        self._park_timer = hub.loop.timer(READER_PARK, READER_PARK)
        self._watcher.start(self._readable)

    def _readable(self) -> None:
        """(hub callback) Bytes arrived: a reader greenlet takes over."""
        self._watcher.stop()
        self._reader = gevent.spawn(self._read_burst)

    def _read_burst(self) -> None:
        session, recv = self.session, self.conn.recv_upgraded_now
        assert session is not None
        size = _RECV_SIZE_DEFLATE if session.compressed else _RECV_SIZE
        while True:
            self._wait_for_room()
            data = recv(size)
            if data is None and not self._park():
                # Quiet for READER_PARK seconds: wait for more without a greenlet.
                if self._watcher is not None:
                    self._watcher.start(self._readable)
                return
            if data is not None and not self._take(session, data):
                return

    def _park(self) -> bool:
        """Wait in the hub until the socket is readable (True) or READER_PARK seconds
        passed (False). The watcher and the timer are the connection's, reused."""
        watcher, timer = self._watcher, self._park_timer
        switch = getcurrent().switch
        watcher.start(switch, True)
        timer.again(switch, False)  # again(): restarts the full period (see connection.py)
        try:
            return bool(gevent.get_hub().switch())
        finally:
            watcher.stop()
            timer.stop()

    def _read_loop(self) -> None:
        session, recv = self.session, self.conn.recv_upgraded
        assert session is not None
        size = _RECV_SIZE_DEFLATE if session.compressed else _RECV_SIZE
        while True:
            self._wait_for_room()
            try:
                data = recv(size)
            except TimeoutError:
                continue  # a write set the socket's timeout: reading has none
            except OSError:
                data = b""
            if not self._take(session, data):
                return

    def _wait_for_room(self) -> None:
        while self.backlog >= BACKLOG and not (self.gone or self.app_done):
            self.room.clear()
            self.room.wait()

    def _take(self, session: WebSocketSession, data: bytes) -> bool:
        """Feed what was read to the session; False at the end of the connection."""
        if not data:
            self._disconnected(session, eof=True)
            self._ended = True
            if self._on_end is not None:
                self._on_end.set()
            return False
        self.last_recv = time.monotonic()
        if not self.gone:  # past the close, the client's bytes are dropped
            session.receive_data(data)
            self._pump(session)
        return True

    def _pump(self, session: WebSocketSession) -> None:
        """Hand the app every complete message; answer pings and closes."""
        while (event := session.next_event()) is not None:
            if isinstance(event, Message):
                if self.app_done:
                    continue
                self.backlog += 1
                if isinstance(event.data, str):
                    self.deliver({"type": "websocket.receive", "text": event.data})
                else:
                    self.deliver({"type": "websocket.receive", "bytes": event.data})
            elif isinstance(event, Closed):
                self._disconnected(session, eof=False)
                return
        self._flush_quietly()

    def _disconnected(self, session: WebSocketSession, *, eof: bool) -> None:
        if eof:
            session.receive_data(b"")
            while session.next_event() is not None:
                pass
        self._flush_quietly()
        if session.state in (SessionState.CLOSED, SessionState.FAILED):
            self.shutdown_write()
        if not self.gone:
            self.gone = True
            self.room.set()
            if self.app_done:
                return
            code = session.close_code if session.close_code is not None else 1006
            self.deliver({"type": "websocket.disconnect", "code": code,
                          "reason": session.close_reason})

    def _flush_quietly(self) -> None:
        try:
            self.flush()
        except ClientDisconnected:
            pass

    # -- the end -----------------------------------------------------------------------------
    def finish(self, *, failed: bool) -> None:
        """After the app: close (1011 when it ``failed``) if still open, wait a little for
        the client's close frame and its EOF, then stop the greenlets."""
        session = self.session
        if session is None:
            return
        _kill(self._pinger)
        if session.state is SessionState.OPEN and not self.dead:
            session.close(INTERNAL_ERROR if failed else NORMAL_CLOSURE)
            self._flush_quietly()
        self.app_done = True
        self.room.set()
        if not (self._ended or self.dead):
            # The reader sees the client's close frame (and shuts our side down), then
            # reads and drops until the client closes TCP: closing first could reset the
            # connection before the client has read our close frame.
            self._on_end = gevent.event.Event()
            self._on_end.wait(_CLOSE_TIMEOUT + _LINGER)
        self.kill()

    def kill(self) -> None:
        """Stop the reader and the pinger now (the connection is being torn down)."""
        _kill(self._pinger)
        watcher, self._watcher = self._watcher, None
        _kill(self._reader)
        if watcher is not None:
            watcher.stop()
            watcher.close()
        if self._park_timer is not None:
            self._park_timer.close()
            self._park_timer = None

    def _keepalive(self) -> None:
        """``--ws-ping-interval``: ping; close with 1011 when nothing came back in time."""
        interval, timeout = self.options.ping_interval, self.options.ping_timeout
        session = self.session
        assert session is not None
        while True:
            gevent.sleep(interval)
            if session.state is not SessionState.OPEN or self.dead:
                return
            sent_at = time.monotonic()
            session.ping()
            self._flush_quietly()
            if not timeout:
                continue
            gevent.sleep(timeout)
            if (self.last_recv < sent_at and self.backlog < BACKLOG
                    and session.state is SessionState.OPEN):
                log.info("WebSocket ping timeout (%g s): closing the connection", timeout)
                session.close(INTERNAL_ERROR, "keepalive ping timeout")
                self._flush_quietly()
                self.abort()
                return


def _kill(greenlet: gevent.Greenlet | None) -> None:
    if greenlet is not None and not greenlet.dead:
        greenlet.kill(block=True, timeout=1)
