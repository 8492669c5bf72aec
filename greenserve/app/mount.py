"""Several apps in one worker, mounted by path prefix (``--mount /api=service.api:app``).

Three parts, in the order a deploy meets them:

* :func:`to_mounts` parses the ``mount`` setting (``PREFIX=APP_MODULE`` strings, or a dict of
  prefix to spec or app object). It is pure, so the config loader can use it before patching.
* :func:`load_mounts` imports every mounted app and decides its interface (WSGI, ASGI 3,
  ASGI 2) on its own; ``--interface`` only applies to the positional app.
* :class:`MountRuntime` is the worker's runtime for them: one WSGI adapter or ASGI adapter
  per mount, all ASGI ones on the worker's single asyncio loop, each with its own lifespan,
  and :class:`MountDispatcher` picking the adapter per request by longest prefix.

Prefixes match whole path segments: ``/api`` serves ``/api`` and ``/api/x`` but not
``/apix``. A WSGI app sees ``SCRIPT_NAME`` + prefix and the rest in ``PATH_INFO``, as with
werkzeug's ``DispatcherMiddleware``; an ASGI app sees ``root_path`` + prefix and the full
``path``, as with Starlette's ``Mount`` and uvicorn >= 0.26. A request no prefix matches is
answered 404.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes

if TYPE_CHECKING:
    from ..asgi.bridge import LoopBridge
    from ..config import Config
    from ..h2stream import AnyStream
    from ..worker import WorkerState
    from .runtime import AppRuntime

#: one parsed mount: (prefix, ``module:app`` spec or app object)
MountEntry = tuple[str, Any]
Handler = Callable[["AnyStream"], None]


# -- the setting -------------------------------------------------------------------------------
def to_mounts(value: object) -> tuple[MountEntry, ...]:
    """The ``mount`` setting: ``"PREFIX=SPEC"`` strings, (prefix, app) pairs, or a dict.

    Prefixes are normalised (a trailing ``/`` dropped, ``/`` kept for the root) and checked:
    they start with ``/``, hold no ``?`` or ``#``, and appear once. Raises ValueError.
    """
    if value is None:
        return ()
    if isinstance(value, Mapping):
        items: Iterable[object] = [(key, target) for key, target in value.items()]
    elif isinstance(value, str):
        items = [value]
    elif isinstance(value, list | tuple):
        items = value
    else:
        raise ValueError(f"expected PREFIX=APP_MODULE strings or a dict, got {value!r}")
    entries: list[MountEntry] = []
    for item in items:
        prefix, target = _entry(item)
        if any(prefix == seen for seen, _ in entries):
            raise ValueError(f"prefix {prefix!r} is mounted more than once")
        entries.append((prefix, target))
    return tuple(entries)


def _entry(item: object) -> MountEntry:
    if isinstance(item, str):
        prefix, sep, target = item.partition("=")
        if not sep:
            raise ValueError(f"expected PREFIX=APP_MODULE, got {item!r}")
        target = target.strip()
        if not target:
            raise ValueError(f"no application after '=' in {item!r}")
        return normalise_prefix(prefix.strip()), target
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
        prefix, target = item
        if isinstance(target, str) and not target.strip():
            raise ValueError(f"no application for prefix {prefix!r}")
        if not isinstance(target, str) and not callable(target):
            raise ValueError(f"the app mounted at {prefix!r} is not callable: {target!r}")
        return normalise_prefix(prefix), target.strip() if isinstance(target, str) else target
    raise ValueError(f"expected PREFIX=APP_MODULE, got {item!r}")


def normalise_prefix(prefix: str) -> str:
    """``/api/`` → ``/api``; ``/`` stays; ValueError for anything that is no path prefix."""
    if not prefix.startswith("/"):
        raise ValueError(f"a mount prefix must start with '/', got {prefix!r}")
    if "?" in prefix or "#" in prefix or any(c.isspace() for c in prefix):
        raise ValueError(f"a mount prefix is a path without '?', '#' or spaces, got {prefix!r}")
    return prefix.rstrip("/") or "/"


def root_conflict(cfg: Config) -> str | None:
    """The one-line error when APP_MODULE and a ``/`` mount both claim the root."""
    if cfg.app_uri and any(prefix == "/" for prefix, _ in cfg.mount):
        return (f"APP_MODULE {cfg.app_uri!r} would be mounted at '/', but --mount also "
                "mounts '/': give one of them")
    return None


# -- loading -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Mount:
    """One loaded app and where it is mounted."""

    #: ``/api``; ``/`` for the root
    prefix: str
    app: Callable[..., Any]
    #: ``wsgi``, ``asgi`` or ``asgi2``
    interface: str
    #: how messages name the app (its spec, or ``module:name`` of an object)
    label: str


@dataclass(frozen=True)
class Mounts:
    """The apps a worker serves by prefix (what :func:`load_mounts` returns)."""

    mounts: tuple[Mount, ...]

    @property
    def single_root(self) -> Mount | None:
        """The only mount when it is ``/``: served exactly like a single app."""
        if len(self.mounts) == 1 and self.mounts[0].prefix == "/":
            return self.mounts[0]
        return None


def load_mounts(cfg: Config, app: Callable[..., Any] | None = None) -> Mounts:
    """Import every mounted app (and APP_MODULE, or ``app``, at ``/``); AppLoadError on failure."""
    from .loading import AppLoadError, detect_interface, extend_sys_path, import_app

    extend_sys_path(cfg)
    entries: list[tuple[str, Any, str]] = [(p, t, "auto") for p, t in cfg.mount]
    if app is None and cfg.app_uri:
        conflict = root_conflict(cfg)
        if conflict:
            raise AppLoadError(conflict)
        entries.append(("/", cfg.app_uri, cfg.interface))
    elif app is not None:
        if any(prefix == "/" for prefix, _ in cfg.mount):
            raise AppLoadError("the app given would be mounted at '/', but the mount setting "
                               "also mounts '/': give one of them")
        entries.append(("/", app, cfg.interface))
    loaded = []
    for prefix, target, wanted in entries:
        where = f"mount {prefix!r}"
        try:
            obj = import_app(target) if isinstance(target, str) else target
            interface = detect_interface(obj, wanted, label=where)
        except AppLoadError as exc:
            raise AppLoadError(f"{where}: {exc}", user_error=exc.user_error) from exc
        label = target if isinstance(target, str) else _label(obj)
        loaded.append(Mount(prefix, obj, interface, label))
    return Mounts(tuple(loaded))


def check_mount_specs(cfg: Config) -> None:
    """Refuse a malformed mounted spec before forking (AppLoadError naming the mount)."""
    from .loading import AppLoadError, parse_app_uri

    for prefix, target in cfg.mount:
        if isinstance(target, str):
            try:
                parse_app_uri(target)
            except AppLoadError as exc:
                raise AppLoadError(f"mount {prefix!r}: {exc}") from None


def _label(app: object) -> str:
    module = getattr(app, "__module__", None) or "?"
    name = getattr(app, "__qualname__", None) or type(app).__qualname__
    return f"{module}:{name}"


# -- serving -----------------------------------------------------------------------------------
class PrefixedWSGI:
    """Moves the mount prefix from ``PATH_INFO`` to ``SCRIPT_NAME`` (DispatcherMiddleware's rule).

    The environ is changed in place, as the middleware does: the access log's ``%(U)s`` then
    shows the path below the mount (``%(r)s`` keeps the full request line).
    """

    def __init__(self, app: Callable[..., Any], prefix: str) -> None:
        self.app = app
        # WSGI strings are latin-1 views of the bytes: the prefix as PATH_INFO spells it.
        self.prefix = prefix.encode("utf-8").decode("latin-1")

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path: str = environ.get("PATH_INFO", "")
        if path.startswith(self.prefix):
            environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + self.prefix
            environ["PATH_INFO"] = path[len(self.prefix):]
        return self.app(environ, start_response)


def prefixed_asgi(app: Callable[..., Any], prefix: str) -> Callable[..., Any]:
    """An ASGI 3 app whose http/websocket scopes get ``root_path`` + ``prefix``.

    ``path`` stays the full path (ASGI spec; Starlette's ``Mount`` and uvicorn >= 0.26 do the
    same), so Starlette routes on ``path`` minus ``root_path`` and ``url_for`` includes the
    prefix. The lifespan scope passes unchanged.
    """

    async def mounted(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            scope["root_path"] = scope.get("root_path", "") + prefix
        await app(scope, receive, send)

    return mounted


def not_found(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """What a path outside every mount gets."""
    body = b"404 Not Found\n"
    start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8"),
                                     ("Content-Length", str(len(body)))])
    return [body]


class MountDispatcher:
    """The worker's handler with mounts: the longest matching prefix's adapter runs the request.

    Matching is on the percent-decoded path (as ``PATH_INFO`` has it) below the
    ``SCRIPT_NAME`` environment variable, when the path starts with it.
    """

    def __init__(self, routes: list[tuple[str, Handler]], fallback: Handler) -> None:
        # Longest first, so the first hit is the longest match. The root mount, if any,
        # takes everything else, ``OPTIONS *`` included.
        ordered = sorted(routes, key=lambda route: len(route[0]), reverse=True)
        self.routes = [(p.encode("utf-8"), h) for p, h in ordered if p != "/"]
        self.fallback = next((h for p, h in routes if p == "/"), fallback)
        self.script_name = os.environ.get("SCRIPT_NAME", "").encode("latin-1")
        from .wsgi_environ import split_target  # not at the top: the config loader imports us

        self._split_target = split_target

    def __call__(self, stream: AnyStream) -> None:
        self.select(stream.request.target)(stream)

    def select(self, target: bytes) -> Handler:
        """The handler for a request target."""
        path, _ = self._split_target(target)
        if b"%" in path:
            path = unquote_to_bytes(path)
        if self.script_name and path.startswith(self.script_name):
            path = path[len(self.script_name):]
        for prefix, handler in self.routes:
            if path.startswith(prefix) and (len(path) == len(prefix) or path[len(prefix)] == 0x2F):
                return handler
        return self.fallback


class MountRuntime:
    """The worker's runtime for several mounted apps (see :class:`.runtime.AppRuntime`)."""

    def __init__(self, mounts: Mounts, state: WorkerState) -> None:
        from .runtime import WSGIRuntime

        self.state = state
        self.bridge: LoopBridge | None = None
        self.runtimes: list[tuple[Mount, AppRuntime]] = []
        for mount in mounts.mounts:
            if mount.interface == "wsgi":
                app = mount.app if mount.prefix == "/" else PrefixedWSGI(mount.app, mount.prefix)
                runtime: AppRuntime = WSGIRuntime(app, state)
            else:
                runtime = self._asgi(mount)
            self.runtimes.append((mount, runtime))
        fallback = WSGIRuntime(not_found, state).handler
        self.handler: Handler = MountDispatcher(
            [(mount.prefix, runtime.handler) for mount, runtime in self.runtimes], fallback)
        self._started: list[AppRuntime] = []

    def _asgi(self, mount: Mount) -> AppRuntime:
        from ..asgi.adapter import ASGIRuntime, asgi2_to_3
        from ..asgi.bridge import LoopBridge

        if self.bridge is None:
            self.bridge = LoopBridge()  # one loop per worker, shared by every ASGI mount
        app = mount.app if mount.interface == "asgi" else asgi2_to_3(mount.app)
        if mount.prefix != "/":
            app = prefixed_asgi(app, mount.prefix)
        return ASGIRuntime(app, "asgi", self.state, bridge=self.bridge)

    def startup(self, tick: Callable[[], bool], interval: float) -> bool:
        """Start the loop, then each app in mount order (ASGI: its lifespan startup)."""
        from ..asgi import loophook
        from .runtime import AppStartupError

        if self.bridge is not None:
            self.bridge.start()  # installs the hook: the loop runs from now on
        else:
            loophook.install()
        for mount, runtime in self.runtimes:
            try:
                started = runtime.startup(tick, interval)
            except AppStartupError as exc:
                self.shutdown(True)  # the apps already started get their shutdown
                raise AppStartupError(f"mount {mount.prefix!r} ({mount.label}): {exc}") from None
            self._started.append(runtime)
            if not started:
                return False
        return True

    def shutdown(self, graceful: bool) -> None:
        """Each started app's shutdown, last started first, then the loop."""
        while self._started:
            self._started.pop().shutdown(graceful)
        if self.bridge is not None and self.bridge.running:
            timeout = float(max(self.state.cfg.graceful_timeout, 1))
            self.bridge.stop(min(timeout, 5.0))
