"""ASGI WebSocket: the ``websocket`` scope and its messages, over the shared sans-io session.

As for HTTP (:mod:`.http`), the app's task runs on the worker's loop and the connection
greenlet waits in :meth:`WebSocketCycle.serve` for the I/O the task asks for; the socket
side (reader greenlet, writes, close) is :class:`.ws_io.WebSocketIO`.

- ``receive()``: ``websocket.connect`` first, then the messages the reader greenlet parsed
  (handed over with one loop callback each; at most :data:`.ws_io.BACKLOG` are read ahead),
  then ``websocket.disconnect`` with the close code (1006 when the connection was lost).
- ``send()``: ``websocket.accept`` (subprotocol, headers) crosses to the connection
  greenlet, which sends the ``101`` and starts the reader. ``websocket.send`` frames the
  message with the session and writes it with one non-blocking ``send()`` when the kernel
  takes it; the rest (or everything, under TLS) is written by the connection greenlet, and
  awaiting that is the backpressure a slow client puts on the app. ``websocket.close``
  starts the close handshake; before the accept it refuses the handshake with 403.
- ``websocket.http.response.start``/``.body`` (the denial extension): an ordinary HTTP
  response instead of the ``101``.
- A send after the connection closed raises :class:`~greenserve.streams.ClientDisconnected`
  (an ``OSError``, as the spec asks). An app exception closes with 1011 after the accept,
  and is a 500 before it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING, Any

from ..app.websocket import WebSocketOptions
from ..protocol.websocket import (
    GOING_AWAY,
    Handshake,
    HandshakeRejection,
    SessionClosed,
    SessionState,
)
from ..streams import ClientDisconnected, InlineStream
from .handoff import DONE, Mailbox, settle
from .http import EOFWatch, Message
from .ws_io import WebSocketIO

if TYPE_CHECKING:
    from .adapter import ASGIAdapter

log = logging.getLogger("greenserve.error")

ACCEPT, FLUSH, WRITE_HELD, HTTP, REFUSE = "accept", "flush", "write_held", "http", "refuse"
_LOST = 1006


def refuse_handshake(stream: InlineStream, rejection: HandshakeRejection) -> None:
    """Answer a broken handshake (426, 400) without calling the app."""
    log.info("refused WebSocket handshake: %d %s", rejection.status_code, rejection.reason)
    stream.send_text(rejection.status_code, rejection.reason, rejection.headers)


def serve_websocket(adapter: ASGIAdapter, stream: InlineStream, scope: dict[str, Any],
                    handshake: Handshake) -> None:
    """Run the app for one WebSocket handshake; returns when the session is over."""
    stream.prepare_upgrade()
    cycle = WebSocketCycle(adapter, stream, scope, handshake)
    adapter.bridge.start_task(cycle.run())
    try:
        cycle.serve()
    finally:
        if not cycle.finished:
            cycle.abandon()  # a kill (graceful timeout): the app must let go
    if not (cycle.io.session is not None or cycle.response_done):
        raise ClientDisconnected("the WebSocket handshake was not answered")


class WebSocketCycle:
    """State shared by the loop side (receive/send/run) and the connection greenlet."""

    def __init__(self, adapter: ASGIAdapter, stream: InlineStream, scope: dict[str, Any],
                 handshake: Handshake) -> None:
        self.adapter = adapter
        self.bridge = adapter.bridge
        self.stream = stream
        self.scope = scope
        self.mailbox = Mailbox()
        options = WebSocketOptions.from_state(adapter.state)
        self.io = WebSocketIO(stream, handshake, options, self._deliver_soon)
        self.conn = stream.conn
        self.direct = self.conn.direct_writes  # the loop may write itself (not under TLS)
        self._eof_watch = EOFWatch(self.conn, self.bridge, self._lost)
        self.task: asyncio.Task[Any] | None = None
        self.inbox: deque[Message] = deque()
        self.waiter: asyncio.Future[None] | None = None
        self.final: Message | None = None  # the disconnect, once the app has received it
        self.connected = False  # websocket.connect was received
        self.accepted = False
        self.closed = False  # the app sent websocket.close (or its denial is complete)
        self.status: int | None = None  # websocket.http.response.start
        self.headers: list[tuple[bytes, bytes]] = []
        self.response_done = False
        self.failed = False
        self.finished = False  # the connection greenlet got DONE

    def _target(self) -> str:
        return str(self.scope.get("raw_path", b"")[:200].decode("latin-1"))

    # -- the loop side: the task ---------------------------------------------------------------
    async def run(self) -> None:
        """The app's task: call it, then make sure the handshake was answered."""
        self.task = asyncio.current_task()
        try:
            if self.finished:
                return
            await self.adapter.app(self.scope, self.receive, self.send)
        except BaseException as exc:
            await self._app_raised(exc)
        else:
            await self._app_returned()
        finally:
            self._eof_watch.stop()
            self.mailbox.put((DONE, None, None))

    async def _app_raised(self, exc: BaseException) -> None:
        gone = self.final is not None or self.io.dead
        if gone or isinstance(exc, asyncio.CancelledError | ClientDisconnected):
            log.debug("ASGI WebSocket app ended after the client went away: %r", exc)
            self.failed = self.accepted
            return
        log.error("Exception in ASGI application (WebSocket %s)", self._target(), exc_info=exc)
        self.failed = True
        if not self.accepted and self.status is None and not self.closed:
            await self._refuse(500)

    async def _app_returned(self) -> None:
        if self.accepted or self.response_done:
            return
        if self.status is not None:
            log.error("ASGI callable returned without completing the denial response: "
                      "WebSocket %s", self._target())
            self.failed = True
            return
        log.error("ASGI callable returned without accepting the WebSocket: %s",
                  self._target())
        await self._refuse(403)

    async def _refuse(self, status: int) -> None:
        self.closed = True
        try:
            await self._ask(REFUSE, status)
        except ClientDisconnected:
            return
        self.response_done = True

    # -- receive -------------------------------------------------------------------------------
    async def receive(self) -> Message:
        """``websocket.connect``, then the client's messages, then ``websocket.disconnect``."""
        if not self.connected:
            self.connected = True
            return {"type": "websocket.connect"}
        while not self.inbox:
            if self.final is not None:
                return self.final
            if not (self.accepted or self.closed):
                self._watch()  # waiting before the accept: notice the client leaving
            fut: asyncio.Future[None] = self.bridge.loop.create_future()
            self.waiter = fut
            try:
                await fut
            finally:
                self.waiter = None
        message = self.inbox.popleft()
        if message["type"] == "websocket.receive":
            self.io.received()
        else:
            self.final = message
        return message

    def _watch(self) -> None:
        # Before the 101, readable is EOF, or frames the client sent too early.
        self._eof_watch.start()

    def _deliver_soon(self, message: Message) -> None:
        """(reader greenlet) Hand ``message`` to the loop."""
        self.bridge.call_soon(self._deliver, message)

    def _deliver(self, message: Message) -> None:
        self.inbox.append(message)
        waiter = self.waiter
        if waiter is not None:
            settle(waiter, None)

    def _lost(self) -> None:
        """No session will come (denied, or the client left before the 101)."""
        if not any(m["type"] == "websocket.disconnect" for m in self.inbox):
            self._deliver({"type": "websocket.disconnect", "code": _LOST, "reason": ""})

    # -- send ------------------------------------------------------------------------------------
    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "websocket.send":
            # The hot path (a broadcast sends one per member): frame, then one non-blocking
            # send, with no coroutine of its own; only a write that must wait is awaited.
            rest = self._send_message_now(self._payload(message))
            if rest is not None:
                await self._write_later(rest)
        elif kind == "websocket.accept":
            await self._accept(message)
        elif kind == "websocket.close":
            await self._close(message)
        elif kind == "websocket.http.response.start":
            self._start_denial(message)
        elif kind == "websocket.http.response.body":
            await self._send_denial_body(message)
        else:
            raise RuntimeError(f"Unexpected ASGI message {kind!r} for a WebSocket")

    def _check_handshake_open(self, kind: str) -> None:
        if self.accepted or self.closed or self.status is not None:
            raise RuntimeError(f"Unexpected ASGI message {kind!r}: the WebSocket handshake "
                               "was already answered")

    async def _accept(self, message: Message) -> None:
        self._check_handshake_open("websocket.accept")
        subprotocol = message.get("subprotocol")
        headers = [(bytes(n), bytes(v)) for n, v in message.get("headers", ())]
        if subprotocol is not None and subprotocol not in self.io.handshake.subprotocols:
            raise ValueError(f"subprotocol {subprotocol!r} was not offered by the client")
        self._eof_watch.stop()
        try:
            await self._ask(ACCEPT, (subprotocol, headers))
        except ClientDisconnected:
            self.closed = True
            self._lost()
            return
        self.accepted = True

    def _payload(self, message: Message) -> str | bytes:
        """What a ``websocket.send`` sends (checked)."""
        if not self.accepted:
            raise RuntimeError("Expected ASGI message 'websocket.accept' or 'websocket.close'"
                               ", got 'websocket.send'")
        text = message.get("text")
        if text is not None:
            return text if type(text) is str else str(text)
        data = message.get("bytes")
        if data is not None:
            return data if type(data) is bytes else bytes(data)
        raise RuntimeError("'websocket.send' needs 'text' or 'bytes'")

    def _send_message_now(self, payload: str | bytes) -> bytes | None:
        """Frame ``payload`` and write it like :meth:`_write_now` (same answer)."""
        io = self.io
        session = io.session
        if session is None or io.dead:
            raise ClientDisconnected("the WebSocket is closed")
        lock = io.write_lock
        queue_only = not self.direct or not lock.acquire(blocking=False)
        try:
            if queue_only:
                session.send_message(payload)  # a greenlet writes it
                return b""
            # The lock is ours: the queue and this frame go out together, in order.
            data = session.take_with_message(payload)
        except SessionClosed as exc:
            if not queue_only:
                lock.release()
            raise ClientDisconnected(str(exc)) from None
        return self._send_locked(data)

    async def _close(self, message: Message) -> None:
        code = int(message.get("code") or 1000)
        reason = str(message.get("reason") or "")
        if not self.accepted:
            self._check_handshake_open("websocket.close")
            self._eof_watch.stop()
            await self._refuse(403)
            self._lost()
            return
        session = self.io.session
        if session is None or self.closed or self.io.dead:
            return
        self.closed = True
        session.close(code, reason)
        await self._flush()

    def _start_denial(self, message: Message) -> None:
        self._check_handshake_open("websocket.http.response.start")
        self.status = int(message["status"])
        self.headers = [(bytes(n), bytes(v)) for n, v in message.get("headers", ())]

    async def _send_denial_body(self, message: Message) -> None:
        if self.status is None or self.response_done:
            raise RuntimeError("Unexpected ASGI message 'websocket.http.response.body': it "
                               "must follow 'websocket.http.response.start'")
        body = bytes(message.get("body", b""))
        more = bool(message.get("more_body", False))
        await self._ask(HTTP, (self.status, self.headers, body, more))
        if not more:
            self.response_done = self.closed = True
            self._lost()

    async def _flush(self) -> None:
        """Write what the session queued: directly if the kernel takes it, else cross."""
        rest = self._write_now()
        if rest is not None:
            await self._write_later(rest)

    def _write_now(self) -> bytes | None:
        """Write what the session queued with one non-blocking send, when the write lock is
        free and the kernel takes it all: None then (or when there is nothing to write).

        Otherwise what is left for the connection greenlet: the unsent bytes, with the
        write lock held (:meth:`_write_later` hands both over), or ``b""`` when the loop
        may not write itself (TLS, or a greenlet is writing): the greenlet flushes.
        """
        io = self.io
        session = io.session
        if io.dead or session is None:
            return None
        if not self.direct or not io.write_lock.acquire(blocking=False):
            return b""
        return self._send_locked(session.data_to_send())

    def _send_locked(self, data: bytes) -> bytes | None:
        """One non-blocking send of ``data``, the write lock held: None when it all went
        (the lock released), else the rest (the lock still held)."""
        io = self.io
        try:
            sent = self.conn.send_now(data) if data else 0
        except OSError as exc:
            io.write_lock.release()
            io.abort()
            raise ClientDisconnected(str(exc)) from None
        if sent >= len(data):
            io.write_lock.release()
            return None
        return data[sent:]

    async def _write_later(self, rest: bytes) -> None:
        """The connection greenlet writes ``rest`` (the lock held) or flushes (``b""``)."""
        if rest:
            await self._ask(WRITE_HELD, rest)
        else:
            await self._ask(FLUSH, None)

    async def _ask(self, kind: str, payload: Any) -> None:
        """Hand ``kind`` to the connection greenlet and await it (its exceptions too)."""
        fut: asyncio.Future[None] = self.bridge.loop.create_future()
        self.mailbox.put((kind, payload, fut))
        await fut

    # -- the connection greenlet's side ----------------------------------------------------
    def serve(self) -> None:
        """Do the blocking I/O the task asks for until it is done, then end the session."""
        self.mailbox.serve(self.bridge, self._do)
        self.finished = True
        self.io.finish(failed=self.failed)

    def _do(self, kind: str, payload: Any) -> None:
        io = self.io
        if kind == FLUSH:
            io.flush()
        elif kind == WRITE_HELD:
            io.write_held(payload)
        elif kind == ACCEPT:
            io.accept(*payload)
        elif kind == HTTP:
            io.http_response(*payload)
        else:
            io.simple_response(payload)

    def abandon(self) -> None:
        """The connection greenlet stops waiting (a kill): stop reading, cancel the task."""
        self.finished = True
        self._going_away()
        self.io.abort()
        self.io.kill()
        self.bridge.call_soon(self._cancel_task)

    def _going_away(self) -> None:
        """Tell the client with a close frame (1001) if that needs no waiting."""
        io, session = self.io, self.io.session
        if session is None or not self.direct or io.dead or session.state is not \
                SessionState.OPEN or not io.write_lock.acquire(blocking=False):
            return
        try:
            session.close(GOING_AWAY, "server shutting down")
            self.conn.send_now(session.data_to_send())
        except OSError:
            pass
        finally:
            io.write_lock.release()

    def _cancel_task(self) -> None:
        task = self.task
        if task is not None and not task.done():
            task.cancel()
