"""The ASGI side of a worker: the per-request adapter and the runtime around it.

:class:`ASGIAdapter` has the WSGI adapter's shape: the connection calls it with an
``InlineStream`` and it returns when the request is over. It starts the app's task on the
worker's loop and lends the connection greenlet to the task for blocking I/O
(:meth:`.HTTPCycle.serve`). :class:`ASGIRuntime` owns the loop (:class:`.LoopBridge`) and the
lifespan: the worker calls :meth:`~ASGIRuntime.startup` before it accepts and
:meth:`~ASGIRuntime.shutdown` after its connections are done.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from ..app.runtime import AppStartupError
from ..app.wsgi_environ import HeaderRefused, ScriptNameMismatch, build_environ
from ..h2stream import AnyStream
from ..hooks import RequestInfo, ResponseInfo, call_post_request, safe_call
from ..protocol.websocket import HandshakeRejection, check_handshake, is_websocket_request
from ..streams import ClientDisconnected, InlineStream
from ..trust import SchemeConflict
from .bridge import LoopBridge
from .h2cycle import H2Cycle
from .http import ASGIApp, HTTPCycle, Receive, Send
from .lifespan import Lifespan, LifespanFailed
from .scope import ScopeBuilder
from .websocket import refuse_handshake, serve_websocket

if TYPE_CHECKING:
    from ..h2stream import H2Stream
    from ..worker import WorkerState

log = logging.getLogger("greenserve.error")

#: seconds between sweeps that start disconnect detection for long-running requests
SWEEP_INTERVAL = 1.0


class ASGIAdapter:
    """Runs an ASGI 3 app for each request of a worker."""

    def __init__(self, app: ASGIApp, state: WorkerState, bridge: LoopBridge,
                 lifespan_state: dict[str, Any]) -> None:
        self.app = app
        self.state = state
        self.bridge = bridge
        self.grace_period = float(state.cfg.asgi_disconnect_grace_period)
        self.scopes = ScopeBuilder(state, lifespan_state)
        self.active: set[HTTPCycle] = set()

    def __call__(self, stream: AnyStream) -> None:
        request = stream.request
        if (request.upgrade is not None and isinstance(stream, InlineStream)
                and is_websocket_request(request)):  # (HTTP/2 streams never upgrade)
            self._websocket(stream)
            return
        state = self.state
        # Read once (WorkerState's attributes are dict lookups, even compiled).
        logged, hooked = state.access_log is not None, bool(state.request_hooks)
        # Timed only for the access log and the hooks (a clock read less per request).
        started = time.monotonic() if logged or hooked else 0.0
        try:
            scope = self.scopes.http(request, stream.info)
        except SchemeConflict as exc:
            self._refuse(stream, exc)
            return
        req = self._request_info(stream, scope) if hooked else None
        if req is not None and not self._pre_request(req, stream):
            self._after(stream, req, started)
            return
        cycle = HTTPCycle(self, stream, scope) if type(stream) is InlineStream \
            else H2Cycle(self, cast("H2Stream", stream), scope)  # HTTP/2 (same surface)
        self.bridge.start_task(cycle.run(), eager=True)  # the task sets cycle.task
        watched = not cycle.task_done
        if watched:  # still running: the sweep watches it for disconnects
            self.active.add(cycle)
        try:
            if watched or cycle.interrupted is not None:
                cycle.serve()
            else:
                cycle.finished = True  # done in its first step: nothing to serve
        finally:
            if watched:
                self.active.discard(cycle)
            if not cycle.finished:
                cycle.abandon()  # a request timeout or a kill: the app must let go
            if logged or req is not None:
                self._after(stream, req, started)
        if cycle.body_error is not None:
            raise cycle.body_error  # the connection answers 400 if nothing went out yet
        if cycle.failed or not cycle.complete:
            raise ClientDisconnected("the ASGI response did not complete")

    def _websocket(self, stream: InlineStream) -> None:
        """A WebSocket handshake: the ``websocket`` scope (see :mod:`.websocket`)."""
        started = time.monotonic()
        handshake = check_handshake(stream.request)
        if isinstance(handshake, HandshakeRejection):
            refuse_handshake(stream, handshake)
            return
        try:
            scope = self.scopes.websocket(stream.request, stream.info, handshake.subprotocols)
        except SchemeConflict as exc:
            self._refuse(stream, exc)
            return
        req = self._request_info(stream, scope)
        if req is not None and not self._pre_request(req, stream):
            self._after(stream, req, started)
            return
        try:
            serve_websocket(self, stream, scope, handshake)
        finally:
            self._after(stream, req, started)

    # -- disconnect detection for requests that run long -------------------------------------
    def start_sweeping(self) -> None:
        """Every second, watch for EOF on requests older than a sweep (see :mod:`.http`)."""
        self.bridge.loop.call_later(SWEEP_INTERVAL, self._sweep)

    def _sweep(self) -> None:
        for cycle in list(self.active):
            if not cycle.aged:
                cycle.aged = True
            elif cycle.body_done or cycle.quiet:
                cycle.watch()
        if self.bridge.running:
            self.bridge.loop.call_later(SWEEP_INTERVAL, self._sweep)

    # -- hooks and logging (the connection greenlet) --------------------------------------------
    def _request_info(self, stream: AnyStream, scope: dict[str, Any]) -> RequestInfo | None:
        if not self.state.request_hooks:
            return None
        self.state.hook_requests += 1
        return RequestInfo.from_request(
            stream.request, stream.info, scheme=scope["scheme"],
            header_map=self.state.cfg.header_map, req_number=self.state.hook_requests,
        )

    def _refuse(self, stream: AnyStream, exc: SchemeConflict) -> None:
        """Answer 400 before the app runs (contradictory secure-scheme headers)."""
        log.info("bad request from %s: 400 %s", stream.info.peer, exc)
        stream.send_text(400, str(exc))

    def _pre_request(self, req: RequestInfo, stream: AnyStream) -> bool:
        """Run ``pre_request``; an exception fails the request with a 500 (as for WSGI)."""
        try:
            self.state.cfg.pre_request(self.state.worker, req)
        except Exception:
            log.exception("Error handling request %s", req.uri)
            stream.send_text(500, "Internal Server Error")
            return False
        return True

    def _after(self, stream: AnyStream, req: RequestInfo | None, started: float) -> None:
        """The access log line and ``post_request``, when either is wanted."""
        if self.state.access_log is None and req is None:
            return
        try:
            environ = build_environ(stream.request, stream.info, self.state)
        except (HeaderRefused, SchemeConflict, ScriptNameMismatch):
            environ = {}
        self.state.log_access(stream, environ, time.monotonic() - started)
        if req is not None:
            resp = ResponseInfo.from_stream(stream)
            safe_call(log, "post_request", call_post_request, self.state.cfg.post_request,
                      self.state.worker, req, environ, resp)


def asgi2_to_3(app: Callable[[dict[str, Any]], Any]) -> ASGIApp:
    """Wrap an ASGI 2 "double callable" (``app(scope)(receive, send)``) as ASGI 3."""

    async def single(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        instance = app(scope)
        await instance(receive, send)

    return single


class ASGIRuntime:
    """The worker's loop and lifespan around an :class:`ASGIAdapter`.

    ``bridge`` is given when several mounted apps share the worker's loop
    (:mod:`greenserve.app.mount`); its owner then starts and stops it.
    """

    def __init__(self, app: Callable[..., Any], interface: str, state: WorkerState, *,
                 bridge: LoopBridge | None = None) -> None:
        self.state = state
        self.app: ASGIApp = app if interface == "asgi" else asgi2_to_3(app)
        self._owns_bridge = bridge is None
        self.bridge = LoopBridge() if bridge is None else bridge
        self.lifespan_state: dict[str, Any] = {}
        self.handler = ASGIAdapter(self.app, state, self.bridge, self.lifespan_state)
        self.lifespan: Lifespan | None = None

    def startup(self, tick: Callable[[], bool], interval: float) -> bool:
        """Start the loop, then the lifespan; False when a stop came first.

        ``tick()`` runs every ``interval`` seconds while the app starts (the worker beats
        its heartbeat there) and returns False to abandon. Startup is bounded by
        ``--timeout`` when that is set; a failure raises :class:`AppStartupError`.
        """
        if self._owns_bridge:
            self.bridge.start()
        self.handler.start_sweeping()
        mode = self.state.cfg.asgi_lifespan
        if mode == "off":
            return True
        lifespan = Lifespan(self.app, mode, self.lifespan_state)
        pending = self.bridge.submit(lifespan.startup())
        limit = float(self.state.cfg.timeout)
        deadline = time.monotonic() + limit if limit else None
        while not pending.wait(interval):
            if not tick():
                pending.cancel()
                return False
            if deadline is not None and time.monotonic() > deadline:
                pending.cancel()
                raise AppStartupError(
                    f"ASGI lifespan startup did not complete within {limit:g} s (--timeout)")
        try:
            pending.result()
        except LifespanFailed as exc:
            raise AppStartupError(str(exc)) from None
        if lifespan.supported:
            self.lifespan = lifespan
        return True

    def shutdown(self, graceful: bool) -> None:
        """Lifespan shutdown (graceful stops only), then close the loop."""
        timeout = float(max(self.state.cfg.graceful_timeout, 1))
        if graceful and self.lifespan is not None and self.bridge.running:
            pending = self.bridge.submit(self.lifespan.shutdown())
            if not pending.wait(timeout):
                log.warning("ASGI lifespan shutdown did not complete within %g s", timeout)
                pending.cancel()
        if self._owns_bridge:
            self.bridge.stop(min(timeout, 5.0))
