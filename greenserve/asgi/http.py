"""One ASGI HTTP request/response cycle, split between the loop and the connection greenlet.

The app's task runs on the worker's loop (:mod:`.bridge`); the connection greenlet that
parsed the request waits in :meth:`HTTPCycle.serve` until the task is done, doing the I/O
that would block. The common cases need no crossing at all:

- ``receive()`` returns body bytes the parser already holds without leaving the loop; only
  when more must be read from the socket does it ask the connection greenlet (``READ``),
  which also sends ``100 Continue`` on that first read.
- ``send()`` serialises with the connection's sans-io protocol object (the connection
  greenlet is parked, so nothing touches it concurrently) and writes with one non-blocking
  ``send()``. Only what the kernel did not take goes to the connection greenlet (``WRITE``,
  a ``sendall`` under ``--timeout``); awaiting that is the backpressure a slow client puts
  on the app. The head waits for the first body message, so small responses are one write,
  with a Content-Length when the whole body came in that message. Under TLS there is no
  direct write (the bytes must go through the TLS layer): every write crosses.

Disconnects: a failed write or read, or, once the request body is complete and the app is
waiting in ``receive()`` (or has run longer than a sweep interval), a hub watcher that sees
EOF on the socket (``recv(MSG_PEEK)``). Then ``receive()`` returns ``http.disconnect``,
``send()`` becomes a no-op (spec 2.3, as uvicorn) and the task is cancelled if it is still
running ``--asgi-disconnect-grace-period`` seconds later.

Both non-blocking socket calls, the fast-path ``send()`` and the EOF peek, are
``HTTPConnection`` methods (``send_now``, ``peek_eof``): only ``connection.py`` touches the
socket.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any, Final

import gevent
from gevent import GreenletExit

from ..connection import RequestTimeout
from ..protocol.events import (
    Data,
    EndOfMessage,
    InformationalResponse,
    ProtocolError,
)
from ..protocol.writer import status_has_body, with_content_length
from ..streams import BodyError, ClientDisconnected, InlineStream
from .bridge import LoopBridge, current_task_of
from .handoff import DONE, Mailbox, settle, watch_readable

if TYPE_CHECKING:
    from ..connection import HTTPConnection
    from ..h2stream import AnyStream
    from .adapter import ASGIAdapter

log = logging.getLogger("greenserve.error")

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[dict[str, Any], Receive, Send], Awaitable[None]]
#: what response messages become: bytes here, a list of stream operations in :mod:`.h2cycle`
#: (Any, not a union: each class handles its own kind; compiled code checks declared types)
Outgoing = Any

READ, WRITE, FILE = "read", "write", "file"
#: (Final: a C static in the compiled build; the imported name would be a dict lookup)
_current_task_of: Final = current_task_of
_DISCONNECT: Message = {"type": "http.disconnect"}
_GONE_ERRNOS = frozenset({errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN, errno.ESHUTDOWN,
                          errno.ECONNABORTED, errno.EBADF})
_SERVER_ERROR = b"500 Internal Server Error\n"
# What an app that sends its messages out of order is told (http.py and h2cycle.py).
NO_START = "Expected ASGI message 'http.response.start', got 'http.response.body'"
BODY_AFTER_END = "Unexpected ASGI message 'http.response.body' after the body was complete"
MISPLACED_TRAILERS = ("Unexpected ASGI message 'http.response.trailers': trailers must be "
                      "announced in http.response.start and follow the body")
#: exceptions gevent throws into a greenlet from outside (kill, timeouts)
_THROWN_IN = (GreenletExit, gevent.Timeout, RequestTimeout)


class EOFWatch:
    """Peeks at a connection's socket from the hub; tells the loop when the client hung up.

    Armed while the app waits and nothing is expected from the client: readable then means
    EOF or a reset (``on_eof`` is scheduled on the loop), or bytes that arrived early (the
    watch ends and they stay in the kernel for whoever reads next).
    """

    def __init__(self, conn: HTTPConnection, bridge: LoopBridge,
                 on_eof: Callable[[], None]) -> None:
        self._conn = conn
        self._bridge = bridge
        self._on_eof = on_eof
        self._stop: Callable[[], None] | None = None

    @property
    def active(self) -> bool:
        """The watch is armed."""
        return self._stop is not None

    def start(self) -> None:
        """Arm the watch (no-op when armed)."""
        if self._stop is None:
            self._stop = watch_readable(self._conn.fileno(), self._peek)

    def stop(self) -> None:
        """Disarm the watch (no-op when not armed)."""
        stop, self._stop = self._stop, None
        if stop is not None:
            stop()

    def _peek(self) -> None:
        eof = self._conn.peek_eof()
        if eof is None:
            return
        self.stop()
        if eof:
            self._bridge.call_soon(self._on_eof)


class HTTPCycle:
    """State shared by the loop side (receive/send/run) and the greenlet side (serve).

    The flags start as class attributes and only the ones a request changes are stored on
    it: a hello request sets a handful, not thirty.
    """

    #: made when the task first hands work over (a task done in its first step never does)
    _mailbox: Mailbox | None = None
    task: asyncio.Task[Any] | None = None
    # request side
    body_done = False
    aged = False  # seen by one sweep of the adapter already
    first_read = True
    body_error: BodyError | None = None
    disconnected = False
    #: receive() calls waiting for the client to leave (a list once one waits)
    _waiters: list[asyncio.Future[Message]] | None = None
    #: made on first use: most requests never watch (and it refers back to the cycle)
    _eof_watch: EOFWatch | None = None
    # response side
    started = False
    head_sent = False
    complete = False
    failed = False
    status = 0
    headers: list[tuple[bytes, bytes]] = []  # noqa: RUF012 - replaced, never mutated
    trailers: list[tuple[bytes, bytes]] | None = None  # set: trailers expected
    body_sent = False
    task_done = False
    finished = False  # the connection greenlet got DONE
    #: a kill or timeout thrown into the connection greenlet during the first step
    interrupted: BaseException | None = None

    def __init__(self, adapter: ASGIAdapter, stream: InlineStream, scope: dict[str, Any]) -> None:
        self.adapter = adapter
        self.bridge: LoopBridge = adapter.bridge
        self.stream: AnyStream = stream
        self.conn = conn = stream.conn
        self.proto = conn.proto
        self.request = request = stream.request
        self.scope = scope
        #: direct non-blocking writes from the loop (not under TLS)
        self.direct = conn.direct_writes
        #: nothing more should come from the client once the head is in (no request body)
        self.quiet = not (request.chunked or request.content_length)

    @property
    def mailbox(self) -> Mailbox:
        """Where the task hands blocking work to the connection greenlet (made on first use;
        greenlets do not preempt, so a task that ends after serve() made it sees it)."""
        mailbox = self._mailbox
        if mailbox is None:
            mailbox = self._mailbox = Mailbox(self.bridge.hub)
        return mailbox

    # -- the loop side: the task -----------------------------------------------------------
    async def run(self) -> None:
        """The app's task: call it, then make sure the response is finished or failed."""
        self.task = _current_task_of(self.bridge.loop)  # (with the loop: no getpid())
        try:
            if self.finished:
                return  # abandoned (timeout, kill) before it could start
            await self.adapter.app(self.scope, self.receive, self.send)
        except _THROWN_IN as exc:
            if self.bridge.in_loop_greenlet():
                await self._app_raised(exc)
            else:
                # The first step runs in the connection greenlet (eager start): a request
                # timeout or a kill thrown into it while the app blocked in gevent is for
                # that greenlet, not an app error (serve() raises it there).
                self.interrupted = exc
                self.failed = not self.complete
        except BaseException as exc:
            await self._app_raised(exc)
        else:
            if not (self.complete or self.disconnected or self.body_error is not None):
                await self._app_returned()
        finally:
            self.task_done = True
            if self._eof_watch is not None:
                self._stop_watch()
            if self._mailbox is not None:  # else serve() sees task_done and waits for nothing
                self._mailbox.put((DONE, None, None))

    async def _app_raised(self, exc: BaseException) -> None:
        if self.disconnected or isinstance(exc, asyncio.CancelledError) or _is_disconnect(exc):
            log.debug("ASGI app ended after the client went away: %r", exc)
            self.failed = not self.complete
            return
        log.error("Exception in ASGI application %s", _target(self.request), exc_info=exc)
        if self.head_sent:
            self.failed = True  # the head is out: only closing the connection is honest
        else:
            await self._send_error()

    async def _app_returned(self) -> None:
        """The app returned without completing the response (or without starting it)."""
        if not self.head_sent:
            log.error("ASGI callable returned without %s response: %s",
                      "completing" if self.started else "starting", _target(self.request))
            await self._send_error()
        else:
            log.error("ASGI callable returned without completing response: %s",
                      _target(self.request))
            self.failed = True

    async def _send_error(self) -> None:
        """Answer 500 (the head has not gone out); close instead if even that fails."""
        self.status, self.trailers = 500, None
        self.headers = [(b"content-type", b"text/plain; charset=utf-8")]
        self.started = True
        try:
            out = self._head(len(_SERVER_ERROR)) + self.proto.send(Data(_SERVER_ERROR))
            out += self.proto.send(EndOfMessage())
        except Exception:
            log.exception("could not send the 500 response")
            self.failed = True
            return
        self._finish()
        await self._write(out)

    # -- receive -------------------------------------------------------------------------------
    async def receive(self) -> Message:
        """The next ``http.request`` piece, then ``http.disconnect`` once the client leaves."""
        message = await self._receive()
        # _DISCONNECT is a shared sentinel: the app gets a dict of its own.
        return {"type": "http.disconnect"} if message is _DISCONNECT else message

    async def _receive(self) -> Message:
        if self.disconnected or self.complete:
            return _DISCONNECT
        if not self.body_done:
            if not (self.first_read and self.request.expect_continue):
                message = self._buffered_body()
                if message is _DISCONNECT:
                    self.client_gone()
                if message is not None:
                    return message
            return await self._ask(READ, None) or _DISCONNECT
        return await self._wait_for_disconnect()

    def _buffered_body(self) -> Message | None:
        """Body the parser already holds, without I/O (either side may call it)."""
        chunks: list[bytes] = []
        while True:
            event = self.proto.next_event()
            if isinstance(event, Data):
                chunks.append(event.data)
                continue
            if isinstance(event, EndOfMessage):
                self._body_complete()
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            if isinstance(event, ProtocolError):
                self.body_error = BodyError(event)
                return _DISCONNECT
            break
        if not chunks:
            return None
        self.first_read = False
        return {"type": "http.request", "body": b"".join(chunks), "more_body": True}

    def _body_complete(self) -> None:
        self.body_done = self.stream.body_done = True
        self.first_read = False

    async def _wait_for_disconnect(self) -> Message:
        """Nothing more will come from the client: wait until it leaves or we answer."""
        if self._eof_watch is None or not self._eof_watch.active:
            self.watch()
        fut: asyncio.Future[Message] = self.bridge.loop.create_future()
        waiters = self._waiters
        if waiters is None:
            waiters = self._waiters = []
        waiters.append(fut)
        try:
            return await fut
        finally:
            # Read again (_release_waiters may have dropped the list meanwhile), into a local:
            # mypy keeps the attribute narrowed to a list across the await, and compiled code
            # would trust that.
            waiters = self._waiters
            if waiters is not None and fut in waiters:
                waiters.remove(fut)

    def _release_waiters(self) -> None:
        waiters = self._waiters
        if waiters:
            self._waiters = None
            for fut in waiters:
                settle(fut, _DISCONNECT)

    # -- disconnect detection -----------------------------------------------------------------
    def watch(self) -> None:
        """Start watching the socket for EOF (the request body is complete by now)."""
        watch = self._eof_watch
        if (watch is not None and watch.active) or self.disconnected or self.task_done:
            return
        if self.proto.buffered:
            return  # a pipelined request is waiting: the client is still there
        if watch is None:
            watch = self._eof_watch = EOFWatch(self.conn, self.bridge, self.client_gone)
        watch.start()

    def _stop_watch(self) -> None:
        """Disarm for good (the task is done or abandoned): also ends the watch <-> cycle
        reference cycle, so the cycle is freed by reference counting."""
        watch, self._eof_watch = self._eof_watch, None
        if watch is not None:
            watch.stop()

    def client_gone(self) -> None:
        """(loop) The client went away: tell the app, and cancel it after the grace period."""
        if self.disconnected:
            self._release_waiters()
            return
        self.disconnected = True
        self._release_waiters()
        task = self.task
        if task is not None and not task.done():
            grace = self.adapter.grace_period
            if grace > 0:
                self.bridge.loop.call_later(grace, self._cancel_task)
            else:
                self._cancel_task()

    def _cancel_task(self) -> None:
        task = self.task
        if task is not None and not task.done():
            log.debug("cancelling the ASGI task of %s: the client left", _target(self.request))
            task.cancel()

    # -- send ------------------------------------------------------------------------------------
    async def send(self, message: Message) -> None:
        """Handle one response message; a no-op once the client is gone (spec 2.3)."""
        if self.disconnected:
            return
        kind = message["type"]
        if kind == "http.response.body":  # the common case first, without a coroutine more
            rest = self._write_now(self._body_bytes(message))
            if rest is not None:
                await self._ask(WRITE, rest)
        elif kind == "http.response.start":
            if self.started:
                raise RuntimeError("Unexpected ASGI message 'http.response.start': the "
                                   "response has already started")
            self.started = True
            self.status = int(message["status"])
            headers = message.get("headers", ())
            # Read, never changed in place: the app's list as it is (any other iterable,
            # which the spec allows, is made one).
            self.headers = headers if type(headers) is list else list(headers)
            if message.get("trailers", False):
                self.trailers = []
        elif kind == "http.response.trailers":
            await self._send_trailers(message)
        elif kind == "http.response.pathsend":
            await self._send_path(message)
        elif kind == "http.response.early_hint":
            await self._send_early_hint(message)
        else:
            raise RuntimeError(f"Unexpected ASGI message {kind!r} for an HTTP response")

    def _body_bytes(self, message: Message) -> Outgoing:
        """The bytes that carry an ``http.response.body`` (with the head, the first time)."""
        if not self.started:
            raise RuntimeError(NO_START)
        if self.body_sent:
            raise RuntimeError(BODY_AFTER_END)
        body = message.get("body", b"")
        more = message.get("more_body", False)
        out = b""
        if not self.head_sent:
            out = self._head(None if more or self.trailers is not None else len(body))
        if body:
            out += self.proto.send_data(body)
            self.stream.bytes_sent += len(body)
        if not more:
            self.body_sent = True
            if self.trailers is None:
                out += self.proto.send_end()
                self.complete = True  # what _finish() does, inline on this hot path
                if self._waiters:
                    self._release_waiters()
        return out

    async def _send_trailers(self, message: Message) -> None:
        if self.trailers is None or not self.body_sent:
            raise RuntimeError(MISPLACED_TRAILERS)
        self.trailers.extend(message.get("headers", ()))
        if message.get("more_trailers", False):
            return
        out = self.proto.send(EndOfMessage(trailers=self.trailers))
        self._finish()
        await self._write(out)

    async def _send_path(self, message: Message) -> None:
        if not self.started or self.head_sent:
            raise RuntimeError("Unexpected ASGI message 'http.response.pathsend': it must "
                               "follow http.response.start and carry the whole body")
        self.body_sent = True
        await self._ask(FILE, os.fspath(message["path"]))
        self._finish()

    async def _send_early_hint(self, message: Message) -> None:
        if self.head_sent:
            return  # too late for hints: the final response is out
        links = message.get("links", ())
        await self._write(self.proto.send(
            InformationalResponse(103, [(b"link", bytes(link)) for link in links])))

    def _head(self, length: int | None) -> bytes:
        """Serialise the response head; ``length`` adds a Content-Length if the app gave none."""
        headers = self.headers
        if length is not None and status_has_body(self.status, self.request.method):
            headers = with_content_length(headers, length, b"content-length")
        data = self.conn.response_head(self.status, headers)
        self.head_sent = True
        self.stream.status, self.stream.response_headers = self.status, headers
        return data

    def _finish(self) -> None:
        self.complete = True
        self._release_waiters()

    async def _write(self, data: Outgoing) -> None:
        """Write now if the kernel takes it; otherwise the connection greenlet does (await)."""
        rest = self._write_now(data)
        if rest is not None:
            await self._ask(WRITE, rest)

    def _write_now(self, data: Outgoing) -> Outgoing | None:
        """Write what the kernel takes without blocking; returns what is left for the
        connection greenlet (all of it under TLS), or None."""
        if not data or self.disconnected:
            return None
        if not self.direct:  # TLS: the connection greenlet writes through the TLS layer
            return data
        try:
            sent = self.conn.send_now(data)
        except OSError as exc:
            if exc.errno not in _GONE_ERRNOS:
                log.debug("write failed: %s", exc)
            self.client_gone()
            return None
        return None if sent == len(data) else memoryview(data)[sent:]

    async def _ask(self, kind: str, payload: Any) -> Message | None:
        """Hand ``kind`` to the connection greenlet and await its answer."""
        fut: asyncio.Future[Message | None] = self.bridge.loop.create_future()
        self.mailbox.put((kind, payload, fut))
        try:
            result = await fut
        except ClientDisconnected:
            self.client_gone()
            return _DISCONNECT
        if result is _DISCONNECT:
            self.client_gone()
        return result

    # -- the connection greenlet's side ----------------------------------------------------
    def serve(self) -> None:
        """Do the blocking I/O the task asks for until it is done (or abandoned)."""
        if self.interrupted is not None:
            raise self.interrupted
        if not self.task_done:
            self.mailbox.serve(self.bridge, self._do)
        self.finished = True

    def _do(self, kind: str, payload: Any) -> Message | None:
        try:
            if kind == WRITE:
                self.conn.write(bytes(payload))
                return None
            if kind == READ:
                return self._read()
            self._send_file(payload)
            return None
        except (ClientDisconnected, TimeoutError) as exc:
            if isinstance(exc, BodyError):
                self.body_error = exc
            return _DISCONNECT

    def _read(self) -> Message:
        data = self.stream.receive()  # blocking; 100 Continue on the first call
        self.first_read = False
        if not data:
            self._body_complete()
            return {"type": "http.request", "body": b"", "more_body": False}
        more = self._buffered_body()
        if more is None:
            return {"type": "http.request", "body": data, "more_body": True}
        if more is _DISCONNECT:
            return more
        more["body"] = data + more["body"]
        return more

    def _send_file(self, path: str) -> None:
        with open(path, "rb") as fileobj:
            size = os.fstat(fileobj.fileno()).st_size
            self.conn.write(self._head(size))
            if status_has_body(self.status, self.request.method):
                self.stream.sendfile(fileobj, 0, size)
        self.conn.write(self.proto.send(EndOfMessage()))

    def abandon(self) -> None:
        """The connection greenlet stops waiting (timeout, kill): the app must let go."""
        self.disconnected = True
        self.finished = True
        self._stop_watch()
        self.bridge.call_soon(self.client_gone)
        self.bridge.call_soon(self._cancel_task)


def _is_disconnect(exc: BaseException) -> bool:
    """Exceptions apps raise because the client left (ours, Starlette's ClientDisconnect)."""
    return isinstance(exc, ClientDisconnected) or type(exc).__name__ == "ClientDisconnect"


def _target(request: Any) -> str:
    return f"{request.method.decode('latin-1')} {request.target[:200].decode('latin-1')}"
