"""One worker process: a gevent hub, a greenlet per connection, graceful shutdown.

The worker reuses gevent's ``StreamServer`` accept loop and bounds concurrency with one
``Pool(worker_connections)`` shared by every listener: a full pool stops accepting, so extra
clients wait in the kernel backlog instead of costing memory here.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
import weakref
from collections.abc import Callable
from typing import Any, cast

import gevent
import gevent.event
import gevent.pool
import gevent.server
import gevent.socket

from . import __version__, health, hooks, logs, process, sockets, tls
from .app.mount import Mounts
from .app.runtime import AppStartupError, make_runtime
from .app.wsgi import WSGIApp
from .app.wsgi_environ import base_environ
from .config import Config
from .connection import HTTPConnection
from .h2negotiation import H2Options
from .h2stream import AnyStream
from .heartbeat import Heartbeat
from .protocol.parsers import connection_class
from .protocol.policy import Limits
from .streams import ConnectionInfo
from .trust import AllowList, SchemeHeaders

log = logging.getLogger("greenserve.error")


class WorkerState:
    """What every connection of this worker shares: settings, limits, logs, stop flag."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.limits = Limits.from_settings(cfg)
        self.connection_class = connection_class(cfg.http_parser, cfg.protocol)
        self.server_header = b"greenserve/" + __version__.encode("ascii")
        self.send_timeout: float | None = float(cfg.timeout) if cfg.timeout > 0 else None
        allow = cfg.forwarded_allow_ips
        self.forwarded_allow = AllowList(allow.split(",") if isinstance(allow, str) else allow)
        self.scheme_headers = SchemeHeaders(cfg.secure_scheme_headers)
        #: header names with '_' a trusted front end may send (--forwarder-headers)
        self.forwarder_headers = frozenset(cfg.forwarder_headers)
        #: who may send a PROXY header (--proxy-allow-from), when --proxy-protocol is on
        self.proxy_allow = AllowList(cfg.proxy_allow_ips) if cfg.proxy_protocol != "off" \
            else None
        #: who may send uwsgi requests (--uwsgi-allow-from), with --protocol uwsgi
        self.uwsgi_allow = AllowList(cfg.uwsgi_allow_ips) if cfg.protocol == "uwsgi" else None
        self.stopping = False
        self.requests = 0
        #: open WebSocket sessions of WSGI apps, told "going away" (1001) on a graceful stop
        self.websockets: weakref.WeakSet[Any] = weakref.WeakSet()
        #: what HTTP/2 the settings allow, and the open HTTP/2 connections (sent GOAWAY on
        #: a graceful stop)
        self.h2_options = H2Options.from_settings(cfg, tls=bool(cfg.certfile))
        self.h2_sessions: weakref.WeakSet[Any] = weakref.WeakSet()
        self.max_requests = health.Recycling.jittered_max_requests(cfg)
        #: the Worker, passed to request hooks as ``worker``
        self.worker: object = None
        self.request_hooks = hooks.request_hooks_enabled(cfg)
        self.hook_requests = 0
        self.base_environ = base_environ(self)
        self.access_log = logs.setup(cfg)

    def count_request(self) -> None:
        """Count a request; reaching ``max_requests`` (with jitter) starts a graceful stop."""
        self.requests += 1
        if self.max_requests and self.requests == self.max_requests and self.worker:
            log.info("Autorestarting worker after current request (max requests: %d)",
                     self.max_requests)
            gevent.spawn(self.worker.request_stop, True)  # type: ignore[attr-defined]

    def log_access(self, stream: AnyStream, environ: dict[str, Any], duration: float) -> None:
        """Write the access-log line for a finished request (if the access log is on)."""
        if self.access_log is not None and environ:
            self.access_log.log(stream, environ, duration)


class Worker:
    """Serves ``app`` on ``listeners`` until a stop signal; ``run()`` returns the exit code."""

    def __init__(self, cfg: Config, app: WSGIApp | Mounts, listeners: list[socket.socket], *,
                 heartbeat: Heartbeat | None = None, age: int = 0, ppid: int = 0,
                 reload_files: tuple[str, ...] = ()) -> None:
        self.cfg = cfg
        #: files --reload also watches (a SyntaxError's, when the app did not load)
        self.reload_files = reload_files
        self.app = app
        self.listeners = listeners
        self.pid = os.getpid()
        self.ppid = ppid  # the master's PID; 0 when running without one (embedding)
        self.age = age
        self.log = log
        self.alive = True
        self.booted = False
        self.heartbeat = heartbeat
        self.state = WorkerState(cfg)
        self.state.worker = self
        #: the app's runtime, chosen once by interface (WSGI, ASGI); handler runs a request
        self.runtime = make_runtime(app, self.state)
        self.handler = self.runtime.handler
        self.pool = gevent.pool.Pool(cfg.worker_connections)
        self.connections: dict[gevent.Greenlet, HTTPConnection] = {}
        self.servers: list[gevent.server.StreamServer] = []
        self._stop = gevent.event.Event()
        self._graceful = True
        self._hub: Any = None
        self.scheme = "http"
        #: called once every listener accepts (the embedding API waits on it)
        self.on_ready: Callable[[], None] | None = None

    def __repr__(self) -> str:
        return f"<Worker {self.pid}>"

    @property
    def requests(self) -> int:
        """Requests this worker has started serving."""
        return self.state.requests

    def activity(self) -> str:
        """What the worker is doing: the longest-running request, for the master's log."""
        now = time.monotonic()
        busy = [c.current for c in self.connections.values() if c.current is not None]
        if not busy:
            return ""
        started, line = min(busy)
        return f"{line} (for {now - started:.1f} s; {len(busy)} in flight)"

    def run(self, *, install_signals: bool = True) -> int:
        """Serve until SIGTERM (graceful) or SIGINT/SIGQUIT (fast), or :meth:`stop`."""
        self._hub = gevent.get_hub()
        if install_signals:
            self._install_signals()
        if install_signals:  # a process of its own; not when embedded in a thread
            health.start_block_monitor(self.cfg.max_blocking_time)
        interval = min(1.0, self.cfg.timeout / 4) if self.cfg.timeout else 1.0
        if not self._start_app(interval):
            self.runtime.shutdown(False)
            self.alive = False
            return 0
        if install_signals:  # not in a program that embeds the worker: its GC is its own
            process.tune_gc(self.cfg.gc_threshold)
        gevent.spawn(health.heartbeat_loop, self, self.heartbeat, interval)
        if self.cfg.reload:
            self._watch_code()
        tls = self._tls_args()
        for sock in self.listeners:
            listener = _as_gevent(sock)
            server = gevent.server.StreamServer(listener, self._handle, spawn=self.pool, **tls)
            server.start()
            self.servers.append(server)
            if not self.ppid:  # under a master, the master has said where it listens
                log.info("Listening at: %s (%s)", sockets.describe(listener), self.pid)
        log.info("Booting worker with pid: %s", self.pid)
        self.booted = True
        if self.on_ready is not None:
            self.on_ready()
        self._stop.wait()
        self._shutdown()
        self.runtime.shutdown(self._graceful)  # ASGI: lifespan shutdown, then the loop
        self.alive = False
        return 0

    def _start_app(self, interval: float) -> bool:
        """Hook point: the app's own startup, before any listener accepts (ASGI lifespan).

        The heartbeat keeps beating, not ready, while it runs. A failure stops the worker
        as a boot failure (the master reports it); False when a stop came first.
        """
        def tick() -> bool:
            if self.heartbeat is not None:
                self.heartbeat.beat(ready=False)
            return not self._stop.is_set()

        try:
            return self.runtime.startup(tick, interval)
        except AppStartupError as exc:
            from .arbiter import WORKER_BOOT_ERROR

            log.error("Worker failed to boot (pid: %s): %s", self.pid, exc)
            raise SystemExit(WORKER_BOOT_ERROR) from None

    def _tls_args(self) -> dict[str, Any]:
        """StreamServer's TLS arguments: none without --certfile.

        The handshake runs on the first read (``do_handshake_on_connect`` off by default,
        as in gunicorn), so it falls under the connection's header deadline.
        """
        context = tls.build_context(self.cfg)
        self.scheme = "https" if context is not None else "http"
        if context is None:
            return {}
        return {
            "ssl_context": context,
            "do_handshake_on_connect": self.cfg.do_handshake_on_connect,
            "suppress_ragged_eofs": self.cfg.suppress_ragged_eofs,
        }

    def _install_signals(self) -> None:
        gevent.signal_handler(signal.SIGTERM, self.request_stop, True)
        gevent.signal_handler(signal.SIGINT, self._interrupted)
        gevent.signal_handler(signal.SIGQUIT, self._interrupted)
        gevent.signal_handler(signal.SIGUSR1, logs.reopen)
        for ignored in (signal.SIGHUP, signal.SIGWINCH, signal.SIGTTIN, signal.SIGTTOU):
            signal.signal(ignored, signal.SIG_IGN)
        health.install_abort_handler(self._aborted)
        for sig in process.early_stops:  # a stop that came while this worker booted
            if sig == signal.SIGTERM:
                self.request_stop()
            else:
                self._interrupted()
        process.early_stops.clear()

    def _watch_code(self) -> None:
        """``--reload``: stop at once when a file of the code changes (see autoreload)."""
        from .autoreload import CodeWatcher

        def changed(path: str) -> None:
            log.info("Worker reloading: %s modified", path)
            self._hook("worker_int", self)  # as gunicorn's reloading worker
            self.request_stop(False)

        watcher = CodeWatcher(self.cfg.reload_extra_files, self.reload_files)
        gevent.spawn(watcher.run, changed)

    def _aborted(self) -> None:
        """SIGABRT (heartbeat timeout): say what was in flight, then the hook."""
        log.critical("Worker (pid: %s) was serving: %s", self.pid, self.activity() or "nothing")
        self._hook("worker_abort", self)

    def _interrupted(self) -> None:
        self._hook("worker_int", self)
        self.request_stop(False)

    def _hook(self, name: str, *args: object) -> None:
        hook = getattr(self.cfg, name, None)
        if hook is not None:
            hooks.safe_call(log, name, hook, *args)

    def stop(self, graceful: bool = True) -> None:
        """Ask the worker to stop; safe to call from another thread (embedding)."""
        self._hub.loop.run_callback_threadsafe(self.request_stop, graceful)

    def request_stop(self, graceful: bool = True) -> None:
        """Stop serving (from a greenlet of this worker's hub)."""
        # Runs in a greenlet spawned by gevent's signal machinery, never in a raw handler.
        if not self._stop.is_set():
            self._graceful = graceful
            self._stop.set()
        elif not graceful:
            self._graceful = False
            self._kill_all()

    def _handle(self, sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            # Responses go out in one sendall per piece; Nagle would only add latency.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = HTTPConnection(sock, _connection_info(sock, address, self.scheme), self.state)
        current = gevent.getcurrent()
        self.connections[current] = conn
        try:
            conn.serve(self.handler)
        finally:
            self.connections.pop(current, None)

    def _shutdown(self) -> None:
        self.state.stopping = True
        for server in self.servers:
            server.stop_accepting()
        if self._graceful:
            self._close_websockets()
            for session in list(self.state.h2_sessions):
                gevent.spawn(session.go_away)
            # Idle keep-alive connections are not cut: each may still bring one request,
            # answered with Connection: close, until its keep-alive timeout; cutting them
            # would race with a request already on the wire (the drop HUP must not cause).
            log.info("Worker exiting (pid: %s)", self.pid)
            if not self.pool.join(timeout=self.cfg.graceful_timeout):
                log.warning("graceful timeout: closing %d busy connections", len(self.pool))
        self._kill_all()
        for server in self.servers:
            server.close()

    def _close_websockets(self) -> None:
        """Start the close handshake (1001, going away) on every open WebSocket session.

        The app's ``receive()`` then returns None once the client answers, its loop ends and
        the connection finishes like any other, well within ``--graceful-timeout``.
        """
        for ws in list(self.state.websockets):
            gevent.spawn(ws.close, 1001, "server shutting down")

    def _kill_all(self) -> None:
        self.pool.kill(block=True, timeout=1)


def _as_gevent(sock: socket.socket) -> socket.socket:
    if isinstance(sock, gevent.socket.socket):
        return cast(socket.socket, sock)  # created after patching: already cooperative
    wrapped: socket.socket = gevent.socket.socket(
        sock.family, sock.type, sock.proto, fileno=sock.detach()
    )
    return wrapped


def _connection_info(sock: socket.socket, address: Any, scheme: str) -> ConnectionInfo:
    if sock.family == socket.AF_UNIX:
        return ConnectionInfo(client=None, server=None, scheme=scheme,
                              unix_path=str(sock.getsockname()))
    server = sock.getsockname()
    return ConnectionInfo(client=(address[0], address[1]), server=(server[0], server[1]),
                          scheme=scheme)
