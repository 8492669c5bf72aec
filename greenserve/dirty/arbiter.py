"""The dirty arbiter: a process of the master's that runs the dirty workers and routes calls.

HTTP workers connect to its Unix socket (``$GUNICORN_DIRTY_SOCKET``); each call is relayed,
on a connection of its own, to a dirty worker that loaded the app (round robin), and the
answer (or the stream of chunks) relayed back. It keeps ``--dirty-workers`` workers alive,
replaces one that dies, obeys TTIN/TTOU (one more, one fewer) and HUP (replace them all),
and stops when its master does.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import signal
import socket
import threading
import time
from typing import Any

from .. import process
from . import protocol
from .app import AppSpec, parse_spec, worker_limit
from .errors import (
    DirtyError,
    DirtyNoWorkersAvailableError,
    DirtyProtocolError,
    DirtyTimeoutError,
    DirtyWorkerError,
)
from .stash import Tables
from .worker import DirtyWorker, _hook

log = logging.getLogger("greenserve.error")


class DirtyArbiter:
    """Made in the master (hooks get it: ``pid``, ``workers``, ``socket_path``...), run in
    its own process (:meth:`run`)."""

    def __init__(self, cfg: Any, tmpdir: str) -> None:
        self.cfg = cfg
        self.log = log
        self.pid = os.getpid()
        self.ppid = os.getppid()
        self.tmpdir = tmpdir
        self.socket_path = os.path.join(tmpdir, "arbiter.sock")
        specs = [parse_spec(spec) for spec in cfg.dirty_apps]
        self.app_specs: dict[str, AppSpec] = {spec.import_path: spec for spec in specs}
        self.limits = {path: worker_limit(spec) for path, spec in self.app_specs.items()}
        self.workers: dict[int, DirtyWorker] = {}
        self.num_workers = max(cfg.dirty_workers, *(n or 0 for n in self.limits.values()))
        self.worker_age = 0
        self.alive = True
        self._turn = itertools.count()
        self._replace = False
        self.stash = Tables()
        self.stash_tables = self.stash.tables  # gunicorn's attribute name, for hooks

    # -- the arbiter process ---------------------------------------------------------------
    def run(self) -> int:
        """Serve until the master stops us (or goes away); the exit code."""
        self.pid, self.ppid = os.getpid(), os.getppid()
        _hook(self.cfg, "on_dirty_starting", self)
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        signal.signal(signal.SIGQUIT, self._stop)
        signal.signal(signal.SIGTTIN, lambda *_: self._resize(+1))
        signal.signal(signal.SIGTTOU, lambda *_: self._resize(-1))
        signal.signal(signal.SIGHUP, self._hup)
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(self.socket_path)
        os.chmod(self.socket_path, 0o600)
        server.listen(128)
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()
        checked = time.monotonic()
        try:
            while self.alive and os.getppid() == self.ppid:
                self._reap()
                if time.monotonic() - checked >= 1.0:  # once a second, as gunicorn's monitor
                    checked = time.monotonic()
                    self._murder()
                self._manage()
                time.sleep(0.1)
        finally:
            server.close()
            self._stop_workers()
            shutil.rmtree(self.tmpdir, ignore_errors=True)
        return 0

    def _stop(self, signum: int, frame: object) -> None:
        self.alive = False

    def _resize(self, delta: int) -> None:
        floor = max([1, *(n or 0 for n in self.limits.values())])
        self.num_workers = max(floor, self.num_workers + delta)
        log.info("Dirty workers: %d", self.num_workers)

    def _hup(self, signum: int, frame: object) -> None:
        self._replace = True

    # -- workers ---------------------------------------------------------------------------
    def _manage(self) -> None:
        if self._replace:
            self._replace = False
            old = list(self.workers.values())
            for _ in old:
                self._spawn()
            for worker in old:
                _signal(worker, signal.SIGTERM)
        live = [w for w in self.workers.values() if w.alive]
        while len(live) < self.num_workers:
            live.append(self._spawn())
        for worker in sorted(live, key=lambda w: w.age)[: max(0, len(live) - self.num_workers)]:
            worker.alive = False
            _signal(worker, signal.SIGTERM)

    def _spawn(self) -> DirtyWorker:
        self.worker_age += 1
        holding = {path: sum(path in w.app_paths for w in self.workers.values() if w.alive)
                   for path in self.app_specs}
        apps = [path for path, limit in self.limits.items()
                if limit is None or holding[path] < limit]
        worker = DirtyWorker(self, self.worker_age, apps)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = worker.run()
            finally:
                os._exit(code)
        worker.pid = pid
        self.workers[pid] = worker
        _hook(self.cfg, "dirty_post_fork", self, worker)
        return worker

    def _murder(self) -> None:
        """Kill the workers whose heartbeat is older than ``--dirty-timeout``: ABRT first,
        KILL a second later if that did not end it (gunicorn's dirty monitor)."""
        timeout = float(self.cfg.dirty_timeout)
        if timeout <= 0:
            return
        for worker in list(self.workers.values()):
            if not worker.alive or worker.heartbeat.read()[0] <= timeout:
                continue
            if not worker.aborted:
                log.critical("DIRTY WORKER TIMEOUT (pid:%s)", worker.pid)
                worker.aborted = True
                _signal(worker, signal.SIGABRT)
            else:
                _signal(worker, signal.SIGKILL)

    def _reap(self) -> None:
        for pid, status in process.reaped():
            worker = self.workers.pop(pid, None)
            if worker is None:
                continue
            worker.heartbeat.close()
            if worker.alive and self.alive:
                log.error("Dirty worker (pid:%s) exited with code %s", pid,
                          os.waitstatus_to_exitcode(status))
            worker.alive = False
            _hook(self.cfg, "dirty_worker_exit", self, worker)

    def _stop_workers(self) -> None:
        for worker in self.workers.values():
            _signal(worker, signal.SIGTERM)
        deadline = time.monotonic() + self.cfg.dirty_graceful_timeout
        while self.workers and time.monotonic() < deadline:
            self._reap()
            time.sleep(0.05)
        for worker in list(self.workers.values()):
            _signal(worker, signal.SIGKILL)
        while self.workers:
            try:
                pid, _ = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            gone = self.workers.pop(pid, None)
            if gone is not None:
                _hook(self.cfg, "dirty_worker_exit", self, gone)

    # -- routing calls -----------------------------------------------------------------------
    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve_client, args=(conn,), daemon=True).start()

    def _serve_client(self, conn: socket.socket) -> None:
        client = protocol.Channel(conn)
        try:
            for kind, request_id, payload, raw in client.incoming():
                if kind == protocol.REQUEST:
                    self._relay(client, request_id, str(payload.get("app_path")), raw)
                elif kind == protocol.STATUS:
                    client.send(protocol.RESPONSE, request_id, {"result": self.status()})
                elif kind == protocol.STASH:
                    try:
                        result = self.stash.apply(payload)
                    except DirtyError as exc:
                        client.send(protocol.ERROR, request_id, {"error": exc.to_dict()})
                    else:
                        client.send(protocol.RESPONSE, request_id, {"result": result})
                elif kind == protocol.MANAGE:
                    previous = self.num_workers
                    count = int(payload.get("count") or 1)
                    self._resize(count if payload.get("op") == 1 else -count)
                    client.send(protocol.RESPONSE, request_id, {"result": {
                        "success": True, "previous": previous, "total": self.num_workers}})
                else:
                    error = DirtyProtocolError("not supported by greenserve's dirty arbiter")
                    client.send(protocol.ERROR, request_id, {"error": error.to_dict()})
        except OSError:
            pass
        finally:
            client.close()

    def _relay(self, client: protocol.Channel, request_id: int, path: str, raw: bytes) -> None:
        worker = self._connect(path)
        if isinstance(worker, DirtyNoWorkersAvailableError):
            client.send(protocol.ERROR, request_id, {"error": worker.to_dict()})
            return
        timeout = float(self.cfg.dirty_timeout) or None
        worker.sock.settimeout(timeout)
        try:
            worker.send_raw(raw)
            while True:
                kind, _, _, answer = worker.receive()
                client.send_raw(answer)
                if kind != protocol.CHUNK:
                    return
        except TimeoutError:
            error: Any = DirtyTimeoutError("Worker timeout", timeout)
        except (DirtyProtocolError, OSError) as exc:
            error = DirtyWorkerError(f"the dirty worker went away during the call: {exc}")
        finally:
            worker.close()
        client.send(protocol.ERROR, request_id, {"error": error.to_dict()})

    def _connect(self, path: str) -> protocol.Channel | DirtyNoWorkersAvailableError:
        """A connection to a worker that has ``path`` (waiting while one boots)."""
        deadline = time.monotonic() + max(float(self.cfg.dirty_timeout), 1.0)
        while True:
            holders = [w for w in list(self.workers.values())
                       if w.alive and path in w.app_paths]
            if not holders and path not in self.app_specs:
                return DirtyNoWorkersAvailableError(path)
            start = next(self._turn)
            for i in range(len(holders)):
                worker = holders[(start + i) % len(holders)]
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    sock.connect(worker.socket_path)
                    return protocol.Channel(sock)
                except OSError:
                    sock.close()  # still booting, or gone
            if time.monotonic() > deadline:
                return DirtyNoWorkersAvailableError(path)
            time.sleep(0.05)

    def status(self) -> dict[str, Any]:
        """The arbiter and its workers, for ``show dirty`` and the STATUS message."""
        live = sorted((w for w in self.workers.values() if w.alive), key=lambda w: w.age)
        workers = [{"pid": w.pid, "age": w.age, "apps": list(w.app_paths),
                    "booted": os.path.exists(w.socket_path),
                    "last_heartbeat": round(w.heartbeat.read()[0], 2)} for w in live]
        apps = []
        for path in self.app_specs:
            pids = [w.pid for w in live if path in w.app_paths]
            apps.append({"import_path": path, "worker_count": self.limits[path],
                         "current_workers": len(pids), "worker_pids": pids})
        return {"pid": self.pid, "workers": workers, "apps": apps}


def _signal(worker: DirtyWorker, sig: int) -> None:
    try:
        os.kill(int(worker.pid), sig)
    except (ProcessLookupError, ValueError):
        pass
