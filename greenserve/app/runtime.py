"""What a worker runs for its app: the per-request handler, and startup/shutdown around it.

The interface (WSGI, ASGI 3, ASGI 2) is decided once, here, from the loaded app and
``--interface`` (:func:`greenserve.app.loading.detect_interface`). A WSGI app needs nothing
around its adapter but the running-loop hook (so ``asyncio.run()`` and ``async_to_sync`` work
in views); an ASGI app gets the worker's asyncio loop and its lifespan
(:mod:`greenserve.asgi.adapter`), imported only then.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from .loading import detect_interface
from .mount import MountRuntime, Mounts

if TYPE_CHECKING:
    from ..h2stream import AnyStream
    from ..worker import WorkerState


class AppStartupError(Exception):
    """The app's startup failed (e.g. ASGI lifespan); ``str(exc)`` is one line."""


class AppRuntime(Protocol):
    """The worker's view of its app."""

    @property
    def handler(self) -> Callable[[AnyStream], None]:
        """Called by the connection for each request."""

    def startup(self, tick: Callable[[], bool], interval: float) -> bool:
        """Run before any listener accepts; False when a stop was requested meanwhile.

        ``tick`` is called every ``interval`` seconds while the startup waits, and returns
        False to abandon it. Raises :class:`AppStartupError` when the app cannot start.
        """

    def shutdown(self, graceful: bool) -> None:
        """Run after the connections are done."""


class WSGIRuntime:
    """A WSGI app: its adapter, plus the running-loop hook for asyncio used inside views."""

    def __init__(self, app: Callable[..., Any], state: WorkerState) -> None:
        from .wsgi import WSGIAdapter

        self.handler: Callable[[AnyStream], None] = WSGIAdapter(app, state)

    def startup(self, tick: Callable[[], bool], interval: float) -> bool:
        from ..asgi import loophook

        loophook.install()
        return True

    def shutdown(self, graceful: bool) -> None:
        pass


def make_runtime(app: Callable[..., Any] | Mounts, state: WorkerState) -> AppRuntime:
    """The runtime for ``app`` under ``--interface`` (AppLoadError when it cannot fit).

    Mounted apps (``--mount``) get a :class:`.mount.MountRuntime`, unless the only mount is
    ``/``: that one is served exactly like a single app.
    """
    if isinstance(app, Mounts):
        root = app.single_root
        if root is None:
            return MountRuntime(app, state)
        return _single(root.app, root.interface, state)
    return _single(app, detect_interface(app, state.cfg.interface), state)


def _single(app: Callable[..., Any], interface: str, state: WorkerState) -> AppRuntime:
    if interface == "wsgi":
        return WSGIRuntime(app, state)
    from ..asgi.adapter import ASGIRuntime

    return ASGIRuntime(app, interface, state)
