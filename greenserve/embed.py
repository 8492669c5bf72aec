"""The embedding API: ``greenserve.run(app)`` and ``greenserve.Server``.

``Server`` runs the real server either in a child process (``python -m greenserve`` with a
generated config file: exactly what a deploy runs, gevent-patched) or in a thread of the
calling process (a gevent hub of its own, no patching: quick for tests of apps that do not
block). Settings are gunicorn's names, as in ``gunicorn.conf.py``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, Literal

from . import config

if TYPE_CHECKING:
    from .app.mount import Mounts

App = Callable[..., Any]
Mode = Literal["auto", "thread", "process"]
_LISTEN = re.compile(r"Listening at: (http://\S+|unix:\S+)")


def run(app: str | App | None = None, **settings: Any) -> None:
    """Serve ``app`` in this process until SIGTERM/SIGINT; returns after the drain.

    ``app`` is an app object or a ``module:app`` string; ``settings`` use gunicorn's names
    (``bind="0.0.0.0:8000"``, ``keepalive=5``). ``mount={"/api": api_app, "/": "legacy:app"}``
    serves several apps by path prefix (objects or spec strings); ``app``, if also given,
    is mounted at ``/``. The process is gevent-patched first: call
    ``run`` before importing code that must see the patched socket/ssl/threading.
    """
    from . import _patch

    cfg = _config(app, settings)
    _patch.patch()
    from .sockets import bind_all
    from .worker import Worker

    Worker(cfg, _resolve(app, cfg), bind_all(cfg)).run()


def _config(app: str | App | None, settings: dict[str, Any]) -> config.Config:
    settings = {"bind": "127.0.0.1:8000", **settings}
    if isinstance(app, str):
        settings["wsgi_app"] = app
    cfg = config.from_mapping(settings)
    if app is None and not cfg.app_uri and not cfg.mount:
        raise ValueError("no application: pass an app, or mount={prefix: app}")
    return cfg


def _resolve(app: str | App | None, cfg: config.Config) -> App | Mounts:
    from .app.loading import load_app

    if cfg.mount:
        from .app.mount import load_mounts

        # A string app is already cfg.app_uri; an object is mounted at "/" as given.
        return load_mounts(cfg, None if isinstance(app, str) else app)
    if app is None or isinstance(app, str):
        return load_app(cfg)
    return app


def _default_mode(app: str | App | None, settings: dict[str, Any]) -> Mode:
    """``process`` when every app is named by a string (it can be imported in a child)."""
    from .app.mount import to_mounts

    targets = [target for _, target in to_mounts(settings.get("mount"))]
    if app is not None:
        targets.append(app)
    return "process" if targets and all(isinstance(t, str) for t in targets) else "thread"


class Server:
    """A greenserve server you can start and stop, on port 0 by default.

    >>> with Server("myproject.wsgi:application") as server:   # doctest: +SKIP
    ...     requests.get(server.url + "/health")

    ``mode="process"`` (the default for a ``module:app`` string) runs ``python -m greenserve``
    in a child process; ``mode="thread"`` (the default for an app object) serves from a
    thread of this process without gevent patching, so the app must not block.
    ``mount={"/api": api_app, "/": "legacy.wsgi:application"}`` serves several apps by path
    prefix (``app`` may then be omitted; if given it is mounted at ``/``); the default mode
    is ``process`` only when every app is a string.
    """

    def __init__(self, app: str | App | None = None, *, mode: Mode = "auto",
                 **settings: Any) -> None:
        self.app = app
        self.mode: Mode = mode if mode != "auto" else _default_mode(app, settings)
        self.settings = {"bind": "127.0.0.1:0", **settings}
        self.url = ""
        self._backend: _ProcessBackend | _ThreadBackend | None = None

    @property
    def host(self) -> str:
        """The host part of :attr:`url`."""
        return self.url.split("//", 1)[1].rsplit(":", 1)[0].strip("[]")

    @property
    def port(self) -> int:
        """The port the server listens on (the real one when bound to port 0)."""
        return int(self.url.rsplit(":", 1)[1])

    def start(self, timeout: float = 30.0) -> Server:
        """Start serving; returns once the server accepts connections."""
        if self._backend is not None:
            raise RuntimeError("server already started")
        if self.mode == "process":
            self._backend = _ProcessBackend(self.app, self.settings)
        else:
            self._backend = _ThreadBackend(self.app, self.settings)
        self.url = self._backend.start(timeout)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop gracefully (in-flight requests finish), killing after ``timeout`` seconds."""
        if self._backend is not None:
            self._backend.stop(timeout)
            self._backend = None

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


class _ThreadBackend:
    """The worker's gevent hub in a daemon thread of this process."""

    def __init__(self, app: str | App | None, settings: dict[str, Any]) -> None:
        self.cfg = _config(app, settings)
        self.app = _resolve(app, self.cfg)
        self.worker: Any = None
        self.error: BaseException | None = None
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._main, name="greenserve", daemon=True)

    def start(self, timeout: float) -> str:
        from .sockets import bind_all, describe

        listeners = bind_all(self.cfg, attempts=1)  # embedded: an error at once, no retries
        url = describe(listeners[0])
        self.listeners = listeners
        self.thread.start()
        if not self.ready.wait(timeout) or self.error is not None:
            for sock in listeners:
                sock.close()
            raise RuntimeError(f"server did not start: {self.error!r}")
        return url

    def _main(self) -> None:
        from .worker import Worker

        try:
            self.worker = Worker(self.cfg, self.app, self.listeners)
            self.worker.on_ready = self.ready.set
            self.worker.run(install_signals=False)
        except BaseException as exc:  # reported to the starting thread
            self.error = exc
            self.ready.set()

    def stop(self, timeout: float) -> None:
        if self.worker is not None:
            self.worker.stop(graceful=True)
        self.thread.join(timeout)


class _ProcessBackend:
    """``python -m greenserve -c <generated config>`` in a child process."""

    def __init__(self, app: str | App | None, settings: dict[str, Any]) -> None:
        self.app_uri = app if isinstance(app, str) or app is None else _import_path(app)
        self.settings = dict(settings)
        if "mount" in settings:
            from .app.mount import to_mounts

            # The child reads a config file: every mounted app must be an import path.
            self.settings["mount"] = {
                prefix: target if isinstance(target, str) else _import_path(target)
                for prefix, target in to_mounts(settings["mount"])
            }
        self.lines: list[str] = []
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float) -> str:
        conf = tempfile.NamedTemporaryFile("w", suffix=".py", prefix="greenserve-",
                                           delete=False)
        with conf:
            for name, value in self.settings.items():
                conf.write(f"{name} = {value!r}\n")
        self.conf_path = conf.name
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "greenserve", "-c", conf.name,
             *([self.app_uri] if self.app_uri else [])],
            stderr=subprocess.PIPE,
        )
        assert self.proc.stderr is not None
        url = self._wait_for_url(self.proc.stderr, timeout)
        threading.Thread(target=self._pump, args=(self.proc.stderr,), daemon=True).start()
        return url

    def _wait_for_url(self, pipe: IO[bytes], timeout: float) -> str:
        deadline = time.monotonic() + timeout
        for raw in iter(pipe.readline, b""):
            line = raw.decode("utf-8", "replace")
            self.lines.append(line)
            sys.stderr.write(line)
            match = _LISTEN.search(line)
            if match:
                return match.group(1)
            if time.monotonic() > deadline:
                break
        self.stop(1)
        raise RuntimeError("greenserve did not start:\n" + "".join(self.lines))

    def _pump(self, pipe: IO[bytes]) -> None:
        for raw in iter(pipe.readline, b""):
            sys.stderr.write(raw.decode("utf-8", "replace"))
        pipe.close()

    def stop(self, timeout: float) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: graceful
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "conf_path", None):
            os.unlink(self.conf_path)
            self.conf_path = ""


def _import_path(app: App) -> str:
    module = getattr(app, "__module__", None)
    name = getattr(app, "__qualname__", None)
    if not module or module == "__main__" or not name or "<" in name:
        raise ValueError(
            "mode='process' needs an importable app: pass 'module:app' instead of an object"
        )
    return f"{module}:{name}"
