"""A dirty worker: a process that loads dirty apps once and runs their actions on call.

Forked by the dirty arbiter. It listens on a Unix socket of its own; each connection (one
call relayed by the arbiter) is served in a thread, at most ``--dirty-threads`` calls at
once: dirty work is blocking or CPU-bound by definition, so these are real threads.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import signal
import socket
import threading
import time
import traceback
from typing import TYPE_CHECKING, Any

from ..heartbeat import Heartbeat
from ..hooks import safe_call
from . import protocol, tlv
from .app import load_class
from .errors import DirtyAppError, DirtyAppNotFoundError, DirtyError, DirtyProtocolError

if TYPE_CHECKING:
    from .arbiter import DirtyArbiter

log = logging.getLogger("greenserve.error")


class DirtyWorker:
    """One dirty worker (hooks get it: ``pid``, ``age``, ``app_paths``, ``apps``...)."""

    def __init__(self, arbiter: DirtyArbiter, age: int, app_paths: list[str]) -> None:
        self.pid: int | str = "[booting]"
        self.age = age
        self.ppid = arbiter.pid
        self.app_paths = app_paths
        self.apps: dict[str, Any] = {}  # filled in the worker process only
        self.cfg = arbiter.cfg
        self.log = log
        self.socket_path = os.path.join(arbiter.tmpdir, f"worker-{age}.sock")
        self.booted = False
        self.aborted = False
        self.alive = True
        #: written by the worker's accept loop, read by the arbiter (made before the fork)
        self.heartbeat = Heartbeat()
        self._server: socket.socket | None = None

    def __repr__(self) -> str:
        return f"<DirtyWorker {self.pid}>"

    # -- in the worker process ---------------------------------------------------------------
    def run(self) -> int:
        """Load the apps, serve calls until told to stop; the exit code."""
        self.pid = os.getpid()
        self.heartbeat.beat(ready=False)  # alive; the apps get --dirty-timeout to load
        from .. import process

        process.set_title(f"greenserve: dirty-worker [{', '.join(self.app_paths)}]")
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGABRT):
            signal.signal(sig, self._stop)  # ABRT: the arbiter saw no heartbeat (gunicorn)
        for sig in (signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL if sig == signal.SIGCHLD else signal.SIG_IGN)
        try:
            for path in self.app_paths:
                app = load_class(path)()
                app.init()
                self.apps[path] = app
        except Exception:
            log.exception("Dirty worker %s failed to load its apps", self.pid)
            return 1
        _hook(self.cfg, "dirty_worker_init", self)
        self._server = server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(self.socket_path)
        server.listen(64)
        # Calls run in threads, so this loop beats on while they work; only a stuck process
        # (a call holding the GIL in C, a deadlock, SIGSTOP) falls silent. Twice per
        # --dirty-timeout, as gunicorn's dirty workers beat.
        timeout = float(self.cfg.dirty_timeout)
        server.settimeout(min(1.0, timeout / 2) if timeout > 0 else 1.0)
        self.booted = True
        slots = threading.BoundedSemaphore(max(1, self.cfg.dirty_threads))
        calls: list[threading.Thread] = []
        try:
            while self.alive and os.getppid() == self.ppid:
                self.heartbeat.beat()
                try:
                    conn, _ = server.accept()
                except TimeoutError:
                    continue
                except OSError:
                    break
                thread = threading.Thread(target=self._serve, args=(conn, slots), daemon=True)
                thread.start()
                calls.append(thread)
                calls[:] = [t for t in calls if t.is_alive()]
        finally:
            # Calls under way finish first (the arbiter gives us --dirty-graceful-timeout).
            deadline = time.monotonic() + self.cfg.dirty_graceful_timeout
            for thread in calls:
                thread.join(max(0.0, deadline - time.monotonic()))
            for app in self.apps.values():
                try:
                    app.close()
                except Exception:
                    log.exception("Dirty app close() failed")
        return 0

    def _stop(self, signum: int, frame: object) -> None:
        self.alive = False

    def _serve(self, conn: socket.socket, slots: threading.BoundedSemaphore) -> None:
        channel = protocol.Channel(conn)
        try:
            for kind, request_id, payload, _ in channel.incoming():
                if kind != protocol.REQUEST:
                    channel.send(protocol.ERROR, request_id, {"error": DirtyProtocolError(
                        "dirty workers take requests only").to_dict()})
                    continue
                with slots:
                    self._execute(channel, request_id, payload)
        finally:
            channel.close()

    def _execute(self, channel: protocol.Channel, request_id: int, payload: Any) -> None:
        path, action = str(payload.get("app_path")), str(payload.get("action"))
        app = self.apps.get(path)
        try:
            if app is None:
                raise DirtyAppNotFoundError(f"Dirty app not loaded here: {path}")
            result = app(action, *payload.get("args") or (), **payload.get("kwargs") or {})
            if inspect.iscoroutine(result):
                result = asyncio.run(result)
            if inspect.isgenerator(result) or inspect.isasyncgen(result):
                for item in _items(result):
                    channel.send(protocol.CHUNK, request_id, {"data": item})
                channel.send(protocol.END, request_id)
            else:
                channel.send(protocol.RESPONSE, request_id, {"result": result})
        except OSError:
            raise  # the arbiter went away: nobody to answer
        except DirtyError as exc:
            channel.send(protocol.ERROR, request_id, {"error": exc.to_dict()})
        except Exception as exc:
            error = DirtyAppError(f"{type(exc).__name__}: {exc}" if isinstance(exc, tlv.TLVError)
                                  else str(exc), path, action, traceback.format_exc())
            channel.send(protocol.ERROR, request_id, {"error": error.to_dict()})


def _items(result: Any) -> Any:
    """The items of a generator, or of an async generator (run on a loop of its own)."""
    if inspect.isgenerator(result):
        yield from result
        return
    loop = asyncio.new_event_loop()
    try:
        while True:
            try:
                yield loop.run_until_complete(result.__anext__())
            except StopAsyncIteration:
                return
    finally:
        loop.close()


def _hook(cfg: Any, name: str, *args: object) -> None:
    safe_call(log, name, getattr(cfg, name), *args)
