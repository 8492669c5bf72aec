"""The peer registry: how to start each server on a given app, and a running server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from benchlib.procs import HOST, SERVER_CPU, pin_prefix, spawn, stop

HERE = Path(__file__).resolve().parent.parent  # loadtests/: the apps live there
PY = sys.executable
START_TIMEOUT = 30.0
#: settings greenserve and gunicorn are both given; the gevent worker and no access log are
#: their defaults
COMMON = ["-w", "1", "--worker-connections", "1000", "--keep-alive", "75"]
UVICORN = [PY, "-m", "uvicorn", "--loop", "asyncio", "--lifespan", "off", "--no-access-log",
           "--log-level", "warning", "--host", HOST, "--port", "{port}"]


@dataclass(frozen=True)
class ServerSpec:
    """One column of a table: a server and its settings. ``{port}``/``{app}`` are filled in."""

    name: str
    label: str
    interface: str  # "wsgi" or "asgi": which of a row's apps it serves
    argv: list[str]
    requires: tuple[str, ...]  # distributions that must be installed
    header: str | None = None  # what its ``Server`` header starts with, when it sends one
    #: put first on the server's PYTHONPATH (made by ``prepare`` before the first start)
    pythonpath: tuple[str, ...] = ()
    prepare: Callable[[], None] | None = None

    def command(self, app: str, port: int) -> list[str]:
        return [a.format(port=port, app=app) for a in self.argv]

    def missing(self) -> list[str]:
        return [d for d in self.requires if version(d) == "not installed"]


def _greenserve(*extra: str) -> list[str]:
    return [PY, "-m", "greenserve", *COMMON, *extra, "-b", f"{HOST}:{{port}}", "{app}"]


#: greenserve with its request path compiled by mypyc (tools/build_compiled.py), as
#: ``GREENSERVE_COMPILE=1 pip install greenserve`` installs it
COMPILED_TREE = HERE.parent / "build" / "compiled"
_compiled_built = False


def _build_compiled() -> None:
    """Compile the checkout's request path once per run (about 15 s)."""
    global _compiled_built
    if not _compiled_built:
        subprocess.run([PY, str(HERE.parent / "tools" / "build_compiled.py"),
                        str(COMPILED_TREE)], check=True)
        _compiled_built = True


_SPECS = [
    ServerSpec("gunicorn", "gunicorn -k gevent", "wsgi",
               # --no-control-socket: gunicorn 24+ otherwise creates ~/.gunicorn/gunicorn.ctl
               [PY, "-m", "gunicorn", "-k", "gevent", *COMMON, "--no-control-socket",
                "-b", f"{HOST}:{{port}}", "{app}"], ("gunicorn", "gevent"), "gunicorn"),
    ServerSpec("pywsgi", "gevent pywsgi (TCP_NODELAY)", "wsgi",
               [PY, str(HERE / "pywsgi_server.py"), "{port}", "{app}"], ("gevent",)),
    ServerSpec("waitress", "waitress", "wsgi",
               [PY, "-m", "waitress", "--host", HOST, "--port", "{port}",
                "--connection-limit", "1000", "{app}"], ("waitress",), "waitress"),
    ServerSpec("uvicorn-httptools", "uvicorn httptools", "asgi",
               [*UVICORN, "--http", "httptools", "{app}"], ("uvicorn", "httptools"), "uvicorn"),
    ServerSpec("granian", "granian (WSGI)", "wsgi",
               [PY, "-m", "granian", "--interface", "wsgi", "--workers", "1", "--host", HOST,
                "--port", "{port}", "--no-ws", "--log-level", "warning", "{app}"],
               ("granian",)),
    ServerSpec("greenserve", "greenserve (httptools)", "wsgi",
               _greenserve("--http-parser", "fast"), ("greenserve", "httptools"), "greenserve"),
    ServerSpec("greenserve-compiled", "greenserve compiled (mypyc)", "wsgi",
               _greenserve("--http-parser", "fast"), ("greenserve", "httptools", "mypy"),
               "greenserve", (str(COMPILED_TREE),), _build_compiled),
    ServerSpec("greenserve-h11", "greenserve (h11)", "wsgi",
               _greenserve("--http-parser", "python"), ("greenserve",), "greenserve"),
    # the ASGI table
    ServerSpec("greenserve-asgi", "greenserve ASGI (httptools)", "asgi",
               _greenserve("--interface", "asgi", "--asgi-lifespan", "off"),
               ("greenserve",), "greenserve"),
    ServerSpec("uvicorn-h11", "uvicorn h11", "asgi", [*UVICORN, "--http", "h11", "{app}"],
               ("uvicorn", "h11"), "uvicorn"),
    ServerSpec("gunicorn-asgi", "gunicorn -k asgi", "asgi",
               [PY, "-m", "gunicorn", "-k", "asgi", *COMMON, "--no-control-socket",
                "--asgi-loop", "asyncio", "--asgi-lifespan", "off", "-b", f"{HOST}:{{port}}",
                "{app}"], ("gunicorn",), "gunicorn"),
]
SERVERS: dict[str, ServerSpec] = {s.name: s for s in _SPECS}


def version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


@dataclass
class Server:
    """A server started on one app for one row, on a port of its own."""

    spec: ServerSpec
    app: str
    log_path: Path
    port: int
    pin: bool
    proc: subprocess.Popen[bytes] | None = None
    argv: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.spec.name

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items()
               if k not in ("GUNICORN_CMD_ARGS", "GREENSERVE_CMD_ARGS", "WEB_CONCURRENCY")}
        # the apps; cwd is loadtests/, which has no config file
        env["PYTHONPATH"] = os.pathsep.join([*self.spec.pythonpath, str(HERE)])
        if self.spec.prepare is not None:
            self.spec.prepare()
        self.argv = self.spec.command(self.app, self.port)
        with self.log_path.open("wb") as log:
            self.proc = spawn(pin_prefix(SERVER_CPU, self.pin) + self.argv, cwd=HERE, env=env,
                              stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        self._wait_listening()

    def _wait_listening(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                socket.create_connection((HOST, self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not start; its log ({self.log_path}):\n"
                           + self.log_path.read_text(errors="replace")[-2000:])

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)

    def url(self, path: str) -> str:
        return f"http://{HOST}:{self.port}{path}"

    def check(self, path: str, size: int) -> None:
        """The row's URL answers 200 with the right body size, from the right server."""
        with urllib.request.urlopen(self.url(path), timeout=10) as resp:
            body = resp.read()
            server = resp.headers.get("Server", "")
        if resp.status != 200 or len(body) != size:
            raise RuntimeError(f"{self.name} {path}: status {resp.status}, {len(body)} bytes "
                               f"(expected 200, {size} bytes)")
        if self.spec.header and not server.startswith(self.spec.header):
            raise RuntimeError(f"{self.name} {path}: answered by {server!r}")
