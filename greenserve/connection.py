"""One client connection: the only module that reads from or writes to a client socket.

The connection greenlet runs the read loop, applies the idle and header timeouts, feeds the
sans-io protocol object and runs the app adapter inline for each request (no extra greenlet
per request on HTTP/1: keep-alive requests reuse this greenlet).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

import gevent
from gevent.socket import wait_write

from . import h2negotiation, proxied
from .dates import http_date
from .protocol.events import (
    Headers,
    InboundEvent,
    InformationalResponse,
    ProtocolError,
    Request,
)
from .protocol.writer import LocalProtocolError, reason_phrase
from .streams import BodyError, ClientDisconnected, ConnectionInfo, InlineStream

if TYPE_CHECKING:
    from .worker import WorkerState

log = logging.getLogger("greenserve.error")

_RECV_SIZE = 65536
#: hub iterations a socket may stay readable, nobody waiting, before its watcher stops
_EARLY_FIRINGS = 8
#: an unread request body is drained up to this size to keep the connection alive
_MAX_DRAIN = 1 << 20

Handler = Callable[[InlineStream], None]


class RequestTimeout(BaseException):
    """``--request-timeout`` expired for the request being served.

    A BaseException, like ``gevent.Timeout``, so an app's ``except Exception`` does not
    swallow it.
    """


#: [(the second, server, the defaults dict)]: one dict for every connection for a whole second
#: (one tuple, read and replaced whole: embedded servers may run in several threads)
_DEFAULTS: list[tuple[int, Any, dict[bytes, tuple[bytes, bytes]]]] = [(-1, None, {})]


def server_defaults(server: bytes) -> dict[bytes, tuple[bytes, bytes]]:
    """The Date and Server headers added to responses, as ``send_response`` defaults.

    The same dict object for every connection until the Date changes (once a second), so
    the writer serialises it once per head shape (``writer._added``), not per response.
    """
    second = int(time.time())
    cached_second, cached_server, defaults = _DEFAULTS[0]
    if cached_second == second and cached_server is server:
        return defaults
    defaults = {b"date": (b"Date", http_date()), b"server": (b"Server", server)}
    _DEFAULTS[0] = (second, server, defaults)
    return defaults


def os_sockets(sock: Any) -> tuple[socket.socket | None, socket.socket]:
    """(the socket to write to without blocking, the socket to peek at) under a gevent one.

    Both are the OS-level, non-blocking TCP socket, except that a TLS connection has no
    direct-write socket: its bytes must go through the TLS layer (``write``).
    """
    raw = getattr(sock, "_sock", None)
    if raw is None:
        raise TypeError(f"expected a gevent socket, got {type(sock).__name__}")
    tls = hasattr(sock, "_sslobj") or hasattr(sock, "do_handshake")
    return (None if tls else raw), raw


def _request_line(request: Request) -> str:
    target = request.target[:200].decode("latin-1")
    return f"{request.method.decode('latin-1')} {target}"


class HTTPConnection:
    """Serves HTTP/1.x requests on one accepted socket until it closes."""

    def __init__(self, sock: socket.socket, info: ConnectionInfo, state: WorkerState) -> None:
        self.sock = sock
        self.info = info
        self.state = state
        self.proto = state.connection_class(state.limits)
        self.idle = True  # waiting for a request: safe to close on graceful stop
        self.requests = 0
        self._server = state.server_header
        self._send_timeout = state.send_timeout
        self._deadline: float | None = None
        self._eof = False
        self._held = b""  # a response head waiting for its first body bytes
        self._timer: gevent.Timeout | None = None  # --request-timeout of the current request
        self._raw: tuple[socket.socket | None, socket.socket] | None = None  # os_sockets()
        # _wait_readable()'s watcher and timer, made on first use (plain sockets only)
        self._plain = not (hasattr(sock, "_sslobj") or hasattr(sock, "do_handshake"))
        # The OS-level, non-blocking socket under gevent's (plain sockets only): the hot
        # path's sends, and its reads once the socket is readable, skip gevent's Python
        # wrappers (their timeout handling only matters when the call would block).
        self._direct: socket.socket | None = getattr(sock, "_sock", None) \
            if self._plain else None
        #: whether :meth:`send_now` may be used (not under TLS)
        self.direct_writes = self._direct is not None
        self._hub = gevent.get_hub()
        self._watcher: Any = None
        self._idle_timer: Any = None
        self._idle_seconds = 0.0
        self._throw: Any = None
        self._timed_out: TimeoutError | None = None
        self._greenlet: Any = None  # the connection's greenlet, woken by _readable()
        self._waiting = False  # in _wait_readable(): a readable socket wakes the greenlet
        self._early = 0  # times the watcher fired while nobody waited (see _readable)
        #: the socket now speaks another protocol (WebSocket): never reuse it for HTTP
        self.upgraded = False
        #: the WSGI environ keys shared by every request of this connection (built by the
        #: adapter on the first request: addresses, scheme, trust)
        self.environ_base: dict[str, Any] | None = None
        #: the HTTP/2 session that took the socket over (h2negotiation), if one did
        self.session: Any = None
        # the request being served and when it started (``current``), for the heartbeat
        self._serving: Request | None = None
        self._started = 0.0

    # -- the loop -----------------------------------------------------------------------------
    def serve(self, handler: Handler) -> None:
        """Read and answer requests until the connection is done."""
        try:
            if self.state.cfg.proxy_protocol != "off":
                refused = proxied.read_header(self)
                if refused is not None:
                    self._reject(refused)
                    return
            uwsgi_allow = self.state.uwsgi_allow
            if uwsgi_allow is not None and not uwsgi_allow.allows(self.info):
                self._reject(ProtocolError(403, "uwsgi requests are not allowed from it"))
                return
            if self.state.h2_options.enabled and h2negotiation.serve_if_h2(self, handler):
                return
            while self._serve_one(handler):
                pass
        except BodyError as exc:
            if not self.proto.response_started:
                self._reject(exc.error)
        except (ClientDisconnected, ConnectionError, TimeoutError):
            pass  # the client went away: nothing to answer
        finally:
            self._close()

    def _serve_one(self, handler: Handler) -> bool:
        """Serve one request; True when the connection may carry another."""
        event = self._wait_for_head()
        if not isinstance(event, Request):
            if isinstance(event, ProtocolError):
                self._reject(event)
            return False
        if event.upgrade is not None and self.state.h2_options.upgrade:
            settings = h2negotiation.upgrade_settings(event, self.state.h2_options)
            if settings is not None and self.state.forwarded_allow.allows(self.info):
                h2negotiation.serve_upgrade(self, handler, event, settings)
                return False
        self.idle = False
        self.requests += 1
        self.state.count_request()
        if self.state.stopping:
            self.proto.close_after_response()
        stream = InlineStream(self, event)
        self._started, self._serving = time.monotonic(), event
        try:
            self._run_handler(handler, stream)
        finally:
            self._serving = None
        return self._finish_cycle(stream)

    @property
    def current(self) -> tuple[float, str] | None:
        """(start time, request line) of the request being served, for the heartbeat."""
        if self.session is not None:
            return self.session.current  # type: ignore[no-any-return]
        request = self._serving
        return None if request is None else (self._started, _request_line(request))

    def _run_handler(self, handler: Handler, stream: InlineStream) -> None:
        """Run the app for one request, under ``--request-timeout`` when it is set."""
        limit = self.state.cfg.request_timeout
        if not limit:
            handler(stream)
            return
        self._timer = gevent.Timeout(limit, RequestTimeout(limit))
        try:
            with self._timer:
                handler(stream)
        except RequestTimeout:
            log.error("Request timed out after %g s: %s", limit, self.current[1]
                      if self.current else "?")
            if stream.response_started:
                raise ClientDisconnected("request timed out mid-response") from None
            self._reject(ProtocolError(504, "request timed out"))
            self.proto.close_after_response()
            raise ClientDisconnected("request timed out") from None
        finally:
            self._timer = None

    def _wait_for_head(self) -> InboundEvent | None:
        """Wait for the next request head: idle timeout first, then the header deadline."""
        cfg = self.state.cfg
        idle_timeout = float(cfg.keepalive) if self.requests else cfg.header_timeout
        started = False
        self.idle = True
        while True:
            event = self.proto.next_event()
            if event is not None:
                self._deadline = None
                return event
            # Stopping, an idle connection still gets its keep-alive time: its next request
            # may be on the wire. It is answered with Connection: close, not dropped.
            if not started and self.proto.buffered:
                started = True
                self._deadline = time.monotonic() + cfg.header_timeout
            self.idle = not started
            try:
                if not started and self.requests and self._direct is not None:
                    # Nothing of the next request is here yet (it never is right after a
                    # response): wait for it before reading, instead of a recv that fails.
                    self._wait_readable(idle_timeout)  # (its own timer: no deadline)
                    self._recv_now(self._direct)
                else:
                    if self._deadline is None:
                        self._deadline = time.monotonic() + idle_timeout
                    self._recv()
            except TimeoutError:
                if self.proto.buffered or (not self.requests and started):
                    return ProtocolError(408, "timed out reading the request head")
                return None

    def _finish_cycle(self, stream: InlineStream) -> bool:
        """True when the next request may follow (the protocol's next cycle has started)."""
        if self.upgraded or self.state.stopping:
            return False  # another protocol ran on the socket, or the worker is stopping
        # False as well when the app failed mid-response (the framing is broken)
        ended = self.proto.end_cycle()
        if ended is not None:
            return ended
        if not self._drain() or not self.proto.keep_alive or self.state.stopping:
            return False
        self.proto.start_next_cycle()
        return True

    def _drain(self) -> bool:
        """Read and discard what the app left of the request body."""
        left = _MAX_DRAIN
        self._deadline = time.monotonic() + self.state.cfg.header_timeout
        try:
            while not self.proto.request_complete:
                event = self.next_event()
                if isinstance(event, ProtocolError):
                    return False
                left -= len(getattr(event, "data", b""))
                if left < 0:
                    return False
        except (ClientDisconnected, TimeoutError, OSError):
            return False
        finally:
            self._deadline = None
        return True

    # -- reading ----------------------------------------------------------------------------
    def next_event(self) -> InboundEvent:
        """The next protocol event, reading from the socket as needed."""
        while True:
            event = self.proto.next_event()
            if event is not None:
                return event
            self._recv()

    def _wait_readable(self, seconds: float) -> None:
        """Wait until the socket is readable, for at most ``seconds`` (TimeoutError).

        The watcher and the timer are made once per connection and reused by every
        keep-alive request (a socket timeout would build a ``gevent.Timeout`` per wait).
        Plain sockets only: a TLS socket may hold decrypted bytes while its fd is idle.
        The watcher stays started between waits (a stop and a start cost libev epoll_ctl
        calls); :meth:`_readable` stops it if the socket stays readable, nobody waiting.
        """
        if self._early:  # readable while the last request ran: read without waiting
            self._early = 0
            return
        watcher = self._watcher
        if watcher is None:
            watcher = self._watcher = self._hub.loop.io(self.sock.fileno(), 1)
            self._greenlet = gevent.getcurrent()
            self._throw = self._greenlet.throw
            self._timed_out = TimeoutError("timed out waiting for a request")
        if not watcher.active:
            watcher.start(self._readable)
        timer = self._idle_timer
        if timer is None or self._idle_seconds != seconds:
            if timer is not None:
                timer.close()
            # A repeating timer restarted with again(): libev's start() after a stop() would
            # count only the time left from the previous wait (keep-alive cut early).
            timer = self._idle_timer = self._hub.loop.timer(seconds, seconds)
            self._idle_seconds = seconds
        timer.again(self._throw, self._timed_out)
        self._waiting = True
        try:
            # Woken by _readable() or the timer's throw; any other switch back here is
            # harmless: the caller's read finds nothing and waits again.
            self._hub.switch()
        finally:
            self._waiting = False
            timer.stop()

    def _readable(self) -> None:  # in the hub: the watcher's callback
        if self._waiting:
            self._greenlet.switch()
        elif self._early >= _EARLY_FIRINGS:
            self._watcher.stop()  # readable still: until the next _wait_readable (no spin)
        else:
            # Nobody waits: usually an ASGI task answered from the loop and the client sent
            # its next request before this greenlet took DONE (a burst can take a few hub
            # iterations). Stopping now would cost two epoll_ctl; the next wait reads at once.
            self._early += 1

    def _settimeout(self, timeout: float | None) -> None:
        # gevent's settimeout is Python code: skip it when the value does not change.
        if self.sock.timeout != timeout:
            self.sock.settimeout(timeout)

    def _recv(self) -> None:
        timeout = None
        if self._deadline is not None:
            timeout = self._deadline - time.monotonic()
            if timeout <= 0:
                raise TimeoutError("deadline passed")
        self._settimeout(timeout)
        self._recv_ready()

    def _recv_ready(self) -> None:
        """Read what the socket has, waiting up to the socket's timeout."""
        try:
            data = self.sock.recv(_RECV_SIZE)
        except TimeoutError:
            raise
        except OSError:
            data = b""  # reset by peer counts as EOF
        self._received(data)

    def _recv_now(self, direct: socket.socket) -> None:
        """Read what the OS socket has, after :meth:`_wait_readable` said it is readable."""
        try:
            data = direct.recv(_RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return  # a spurious wake-up: the caller waits again
        except OSError:
            data = b""  # reset by peer counts as EOF
        self._received(data)

    def feed(self, data: bytes) -> None:
        """Bytes read from the socket by someone else (h2negotiation's preface check)."""
        self._received(data)

    def _received(self, data: bytes) -> None:
        if not data:
            if self._eof:
                raise ClientDisconnected("connection closed by the client")
            self._eof = True
        self.proto.receive_data(data)

    # -- switching protocols ----------------------------------------------------------------
    def prepare_upgrade(self) -> None:
        """This request may switch the connection to another protocol (WebSocket).

        Whatever the app answers, the connection is not reused for HTTP; ``--request-timeout``
        stops applying (a WebSocket session is long-lived by design); and the socket loses
        its timeout, since an app that speaks on it directly (``gunicorn.socket``) blocks in
        ``recv`` between messages.
        """
        self.proto.close_after_response()
        if self._timer is not None:
            self._timer.cancel()
        self._settimeout(None)

    def switch_protocols(self, headers: Headers) -> tuple[socket.socket, bytes]:
        """Send ``101 Switching Protocols`` with ``headers`` and hand the socket over.

        Returns the socket and the bytes already received past the request head; from here
        on the caller reads and writes the socket itself, and the connection only closes it
        once the handler returns.
        """
        self.write(self.proto.send(InformationalResponse(101, headers)))
        self.upgraded = True
        self._settimeout(None)
        return self.sock, self.proto.trailing_data

    # -- writing ----------------------------------------------------------------------------
    def send_head(self, status: int, headers: Headers, reason: bytes = b"") -> None:
        """Send a response head, adding the Date and Server headers."""
        # Held back and sent with the first body bytes (or the end of the response): one
        # send per small response instead of two.
        self._held = self.response_head(status, headers, reason)

    def response_head(self, status: int, headers: Headers, reason: bytes = b"") -> bytes:
        """The bytes of a response head with the Date and Server headers added (the app's
        own win); the caller sends them."""
        if self.state.stopping:
            self.proto.close_after_response()
        return self.proto.send_response(status, headers, reason, server_defaults(self._server))

    def write(self, data: bytes) -> None:
        """Send bytes (after any held response head); a stalled client gets ``--timeout``."""
        if self._held:
            data, self._held = self._held + data, b""
        if not data:
            return
        sock, direct = self.sock, self._direct
        try:
            # One plain send first: it usually takes everything, and gevent's sendall costs
            # an extra getsockopt per call. On a plain socket it is the OS socket's own
            # non-blocking send: gevent's wrapper and the timeout only matter when it would
            # block, and then sendall waits (under ``--timeout``) for the rest.
            if direct is not None:
                try:
                    sent = direct.send(data)
                except (BlockingIOError, InterruptedError):
                    sent = 0
                if sent == len(data):
                    return
            self._settimeout(self._send_timeout)
            if direct is None:
                sent = sock.send(data)
            if sent < len(data):
                sock.sendall(memoryview(data)[sent:])
        except OSError as exc:
            raise ClientDisconnected(str(exc)) from exc

    def sendfile(self, fileobj: Any, offset: int, count: int | None) -> int:
        """Send a file with ``os.sendfile`` when the framing allows it, else in chunks.

        gevent's ``socket.sendfile`` reads and sends in user space, so the zero-copy path
        is ours: ``os.sendfile`` on the non-blocking socket, waiting on the hub when full.
        """
        try:
            fd_in = fileobj.fileno()
        except (AttributeError, OSError, ValueError):
            fd_in = None  # BytesIO and friends: no file descriptor
        if (
            fd_in is not None
            and count is not None
            and self.state.cfg.sendfile is not False
            and self.proto.body_passthrough(count)
        ):
            self.write(b"")  # the held head goes first
            return self._zero_copy(fd_in, offset, count)
        return self._copy_file(fileobj, offset, count)

    def _zero_copy(self, fd_in: int, offset: int, count: int) -> int:
        out = self.sock.fileno()
        sent = 0
        while sent < count:
            try:
                n = os.sendfile(out, fd_in, offset + sent, count - sent)
            except BlockingIOError:
                wait_write(out, timeout=self.state.send_timeout,
                           timeout_exc=ClientDisconnected("timed out sending a file"))
                continue
            except OSError as exc:
                raise ClientDisconnected(str(exc)) from exc
            if n == 0:
                break
            sent += n
        if sent < count:
            # The head promised more than the file holds (it shrank?): the only way to keep
            # the client from reading the next response as body is to close.
            log.warning("file ended %d bytes short of its Content-Length", count - sent)
            raise ClientDisconnected("file shorter than its Content-Length")
        return sent

    def _copy_file(self, fileobj: IO[bytes], offset: int, count: int | None) -> int:
        from .protocol.events import Data

        if offset:
            fileobj.seek(offset)
        sent = 0
        while count is None or sent < count:
            size = _RECV_SIZE if count is None else min(_RECV_SIZE, count - sent)
            block = fileobj.read(size)
            if not block:
                break
            self.write(self.proto.send(Data(block)))
            sent += len(block)
        return sent

    # -- non-blocking I/O, for code that must never wait (the ASGI loop) -------------------
    # They act on the OS-level socket under gevent's: the ASGI app's task runs on the
    # worker's asyncio loop, where a gevent wait would block every other task.
    def send_now(self, data: bytes | memoryview) -> int:
        """One non-blocking send: how many bytes the kernel took (0 when its buffer is full).

        Only when :attr:`direct_writes`; an ``OSError`` means the connection is broken.
        """
        raw = self._direct  # what write() sends on too
        if raw is None:
            raise RuntimeError("no direct writes on a TLS connection")
        try:
            return raw.send(data)
        except (BlockingIOError, InterruptedError):
            return 0

    def peek_eof(self) -> bool | None:
        """Without reading or waiting: True when the client has closed (EOF or reset), False
        when bytes wait unread (they stay for the next read), None when nothing happened."""
        try:
            data = self._os_sockets()[1].recv(1, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError:
            return True
        return not data

    def fileno(self) -> int:
        """The socket's file descriptor (to watch it for readability)."""
        return self.sock.fileno()

    def _os_sockets(self) -> tuple[socket.socket | None, socket.socket]:
        if self._raw is None:
            self._raw = os_sockets(self.sock)
        return self._raw

    # -- after switch_protocols(): the new protocol's reads ---------------------------------
    def recv_upgraded(self, size: int) -> bytes:
        """One blocking read of up to ``size`` bytes (``b""`` at EOF). ``TimeoutError`` when
        a concurrent :meth:`write` has just set the socket's send timeout; other socket
        errors propagate."""
        return self.sock.recv(size)

    def recv_upgraded_now(self, size: int) -> bytes | None:
        """One non-blocking read of up to ``size`` bytes: None when nothing is there yet,
        ``b""`` at EOF or on a broken connection. Only when :attr:`direct_writes` (a TLS
        socket may hold decrypted bytes its file descriptor does not show)."""
        try:
            return self._os_sockets()[1].recv(size)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError:
            return b""

    def shutdown(self, how: int) -> None:
        """``socket.shutdown(how)``, ignoring a connection that is already gone."""
        try:
            self.sock.shutdown(how)
        except OSError:
            pass

    def reject(self, error: ProtocolError) -> None:
        """Answer a request we refuse, log it, and let the caller close."""
        self._reject(error)

    def _reject(self, error: ProtocolError) -> None:
        """Answer a request we refuse, log it, and let the caller close."""
        peer = self.info.peer
        if error.status_code is None:
            log.debug("closing connection from %s: %s", peer, error.reason)
            return
        what = "bad request from" if error.status_code < 500 else "answering"
        log.info("%s %s: %d %s", what, peer, error.status_code, error.reason)
        body = b"%d %s\n" % (error.status_code, reason_phrase(error.status_code))
        headers = [
            (b"Content-Type", b"text/plain; charset=utf-8"),
            (b"Content-Length", b"%d" % len(body)),
        ]
        try:
            self.send_head(error.status_code, headers)
            self.write(body)
        except (ClientDisconnected, LocalProtocolError):
            pass

    def _close(self) -> None:
        if self._watcher is not None:
            self._watcher.close()
        if self._idle_timer is not None:
            self._idle_timer.close()
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        self.sock.close()
