"""The master process: binds, forks workers, supervises them, and maps signals to actions.

gunicorn's process model and signal meanings. Signal handlers only enqueue and wake the
loop; the loop dispatches ``handle_<signal>`` by name (architecture guide, rule 7). The
master imports no gevent unless ``--preload`` has already patched the process.
"""

from __future__ import annotations

import logging
import os
import random
import select
import signal
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import logs, metrics, process, sockets, systemd
from .config import Config
from .config.naming import process_name
from .control import ControlServer
from .dirty.supervisor import DirtySupervisor
from .heartbeat import Heartbeat

if TYPE_CHECKING:
    from .app.mount import Mounts

log = logging.getLogger("greenserve.error")

WORKER_BOOT_ERROR = 3
APP_LOAD_ERROR = 4
_SIGNALS = ("HUP", "QUIT", "INT", "TERM", "TTIN", "TTOU", "USR1", "USR2", "WINCH", "CHLD")
_SIGNUMS = [getattr(signal, "SIG" + name) for name in _SIGNALS]
_ABORT_GRACE = 2.0  # seconds between SIGABRT (stack dump) and SIGKILL for a stuck worker
_QUICK_GRACE = 2.0  # seconds a graceful stop has left once INT or QUIT makes it fast


class WorkerProcess:
    """The master's record of one worker (what hooks receive as ``worker`` in the master)."""

    def __init__(self, age: int, ppid: int, cfg: Config) -> None:
        self.age = age
        self.ppid = ppid
        self.pid = 0
        self.cfg = cfg
        self.log = log
        self.heartbeat = Heartbeat()
        self.started = time.monotonic()
        self.retiring = False  # replaced by HUP or recycling: stopping gracefully
        self.aborted_at: float | None = None
        self.alive = True
        self._booted = False

    @property
    def booted(self) -> bool:
        """The worker has accepted connections (read from its heartbeat in the master)."""
        if not self._booted and self.alive:
            self._booted = self.heartbeat.read()[1]
        return self._booted

    @booted.setter
    def booted(self, value: bool) -> None:
        self._booted = value

    def __repr__(self) -> str:
        return f"<Worker {self.pid} age={self.age}>"


class Arbiter:
    """The master. ``run()`` returns the process exit code."""

    def __init__(self, cfg: Config, *, argv: list[str], app: Callable[..., Any] | Mounts | None,
                 reload_config: Callable[[], Config] | None = None) -> None:
        self.cfg = cfg
        self.argv = argv
        self.app = app  # loaded here only with --preload
        self.reload_config = reload_config
        self.log = log
        self.pid = os.getpid()
        self._num_workers = cfg.workers
        self.WORKERS: dict[int, WorkerProcess] = {}
        self.LISTENERS: list[Any] = []
        self.worker_age = 0
        self.reexec_pid = 0
        self.adopted_fds: set[int] = set()  # listeners passed in by systemd or fd://N
        self._reported_workers = -1  # the gunicorn.workers gauge last sent
        self.master_name = "Master"
        self.pidfile: process.Pidfile | None = None
        self._queue: list[str] = []
        self._wake_r, self._wake_w = os.pipe()
        self._crashes: list[float] = []
        self._halt: tuple[str, int] | None = None
        self._stopping = False
        self._graceful = True
        self.control: ControlServer | None = None  # --control-socket
        self.dirty: DirtySupervisor | None = None  # --dirty-app with --dirty-workers
        #: what the control socket's ``show stats`` reports
        self.stats = {"start_time": time.time(), "workers_spawned": 0, "workers_killed": 0,
                      "reloads": 0}

    # -- lifecycle ------------------------------------------------------------------------------
    def run(self) -> int:
        """Start, then supervise until a stop signal; returns the exit code."""
        self.start()
        try:
            while self._halt is None:
                self._loop_once()
        except StopIteration:
            pass
        except Exception:
            log.exception("Unhandled exception in the master loop")
            self._halt = ("unhandled exception in the master", 1)
        reason, code = self._halt or ("", 0)
        self._shutdown(reason, code)
        return code

    def start(self) -> None:
        """Hooks, pidfile, signals, listeners, the first workers."""
        if self.cfg.daemon:
            process.daemonize(keep_stdio=self.cfg.enable_stdio_inheritance)
            self.pid = os.getpid()
        logs.setup(self.cfg)
        self.hook("on_starting", self)
        os.umask(self.cfg.umask)
        activated = systemd.listen_fds()  # systemd's socket activation
        # Sockets someone else made (systemd's, fd://N): never unlink their paths.
        self.adopted_fds = set(activated) | sockets.fd_binds(self.cfg)
        # a failure is one line, nothing before
        self.LISTENERS = sockets.bind_all(self.cfg, fds=activated)
        log.info("Starting greenserve %s", _version())
        if self.cfg.pidfile:
            self.pidfile = process.Pidfile(self.cfg.pidfile)
            self.pidfile.create(self.pid)
        for name in _SIGNALS:
            signal.signal(getattr(signal, "SIG" + name), self._enqueue)
        os.set_blocking(self._wake_w, False)
        for sock in self.LISTENERS:
            log.info("Listening at: %s (%s)", sockets.describe(sock), self.pid)
        log.info("Using worker: gevent")
        if self.cfg.control_socket and not self.cfg.control_socket_disable:
            control = ControlServer(self, self.cfg.control_socket, self.cfg.control_socket_mode)
            self.control = control if control.open() else None
        if self.cfg.threads > 1:
            log.info("--threads %d: each worker serves up to %d requests at once in greenlets "
                     "(--worker-connections), not threads", self.cfg.threads,
                     self.cfg.worker_connections)
        systemd.notify(systemd.READY, log)
        if self.cfg.reload and self.cfg.preload_app:
            log.warning("--reload cannot reload code loaded by --preload: new workers get "
                        "the master's copy")
        self.num_workers = self.cfg.workers  # nworkers_changed(server, N, None), as gunicorn
        process.set_title(f"greenserve: master [{self.proc_name}]")
        if DirtySupervisor.wanted(self.cfg):
            self.dirty = DirtySupervisor(self)
            self.dirty.start()  # before the workers: they inherit its socket's path
        self.manage_workers()
        self.hook("when_ready", self)

    def hook(self, name: str, *args: object) -> None:
        """Run a server hook from the config file.

        As in gunicorn, an exception propagates: in the master it stops the master, in a
        booting worker it is a boot failure. (``worker_exit`` is the exception: logged.)
        """
        getattr(self.cfg, name)(*args)

    @property
    def num_workers(self) -> int:
        """The target number of workers (TTIN/TTOU/HUP change it)."""
        return self._num_workers

    @num_workers.setter
    def num_workers(self, value: int) -> None:
        old = getattr(self, "_num_workers_announced", None)
        self._num_workers_announced = value
        self._num_workers = value
        self.hook("nworkers_changed", self, value, old)

    @property
    def proc_name(self) -> str:
        """``-n/--name``, else the app (see ``config.naming.process_name``)."""
        return process_name(self.cfg)

    def _enqueue(self, signum: int, frame: object) -> None:
        # A signal handler does as little as possible: the loop does the work.
        if len(self._queue) < 16:
            self._queue.append(signal.Signals(signum).name[3:])
        try:
            os.write(self._wake_w, b".")
        except OSError:
            pass

    def _loop_once(self) -> None:
        if self._queue:
            name = self._queue.pop(0)
            if name != "CHLD":
                log.info("Handling signal: %s", name.lower())
            getattr(self, "handle_" + name.lower())()
        else:
            self.pause(1.0)
        self.reap()
        self._murder()
        self.manage_workers()  # a worker that exited is replaced at once, not a tick later
        if self.dirty is not None:
            self.dirty.ensure()
        if self.cfg.enable_backlog_metric and metrics.client is not None:
            metrics.client.histogram("gunicorn.backlog", metrics.backlog(self.LISTENERS))

    def pause(self, timeout: float) -> None:
        """Sleep until a signal arrives or ``timeout`` passes."""
        control = self.control
        try:
            ready, _, _ = select.select(
                [self._wake_r, *(control.fds() if control else ())], [], [], timeout)
            if self._wake_r in ready:
                while os.read(self._wake_r, 64):
                    if not select.select([self._wake_r], [], [], 0)[0]:
                        break
            if control is not None:
                control.handle(ready)  # commands run here, between two turns of the loop
        except InterruptedError:
            pass

    # -- workers --------------------------------------------------------------------------------
    def manage_workers(self) -> None:
        """Spawn or retire workers until the count of active ones is ``num_workers``."""
        active = sorted((w for w in self.WORKERS.values() if not w.retiring),
                        key=lambda w: w.age)
        for worker in active[: max(0, len(active) - self.num_workers)]:
            self.retire(worker)  # the oldest go first, as in gunicorn
        missing = self.num_workers - min(len(active), self.num_workers)
        if missing and not self._stopping and self._may_spawn():
            for _ in range(missing):
                self.spawn_worker()
        if metrics.client is not None:  # gunicorn.workers, when the count changes
            count = sum(1 for w in self.WORKERS.values() if not w.retiring)
            if count != self._reported_workers:
                self._reported_workers = count
                metrics.client.gauge("gunicorn.workers", count)

    def _may_spawn(self) -> bool:
        """Crash-loop back-off: after repeated quick deaths, wait before spawning again."""
        now = time.monotonic()
        self._crashes = [t for t in self._crashes if now - t < 60]
        if len(self._crashes) < 3:
            return True
        delay = min(2 ** (len(self._crashes) - 3), 30)
        return bool(now - self._crashes[-1] >= delay)

    def spawn_worker(self) -> WorkerProcess:
        """Fork one worker; in the child this never returns."""
        self.worker_age += 1
        worker = WorkerProcess(self.worker_age, self.pid, self.cfg)
        self.hook("pre_fork", self, worker)
        # Signals stay blocked across the fork: the child must not run the master's handlers
        # before it resets them (a TERM in that window would be lost, not obeyed).
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNUMS)
        pid = os.fork()
        if pid:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
            worker.pid = pid
            self.WORKERS[pid] = worker
            self.stats["workers_spawned"] += 1
            return worker
        process.reset_signals()
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        self._become_worker(worker)
        raise AssertionError("unreachable")

    def _become_worker(self, worker: WorkerProcess) -> None:
        code = 1
        try:
            worker.pid = os.getpid()
            os.close(self._wake_r)
            os.close(self._wake_w)
            if self.control is not None:
                self.control.close_in_child()
            self.hook("post_fork", self, worker)
            from .child import run_worker

            code = run_worker(self, worker)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            log.exception("Exception in worker process")
            code = 1 if worker.booted else WORKER_BOOT_ERROR
        finally:
            try:
                self.hook("worker_exit", self, worker)
            except Exception:
                log.warning("Exception during worker exit", exc_info=True)
            logging.shutdown()
            os._exit(code)

    def retire(self, worker: WorkerProcess, sig: int = signal.SIGTERM) -> None:
        """Stop ``worker`` (gracefully by default); it no longer counts as active."""
        worker.retiring = True
        self.stats["workers_killed"] += 1
        self.kill_worker(worker.pid, sig)

    def kill_worker(self, pid: int, sig: int) -> None:
        """Send ``sig`` to a worker, forgetting it if it is already gone."""
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            self._forget(pid)

    def _forget(self, pid: int) -> WorkerProcess | None:
        worker = self.WORKERS.pop(pid, None)
        if worker is not None:
            worker.alive = False
            worker.heartbeat.close()
        return worker

    def reap(self) -> None:
        """Collect every exited child without blocking."""
        for pid, status in process.reaped():
            if pid == self.reexec_pid:
                self._reexec_exited()
                continue
            if self.dirty is not None and pid == self.dirty.pid:
                self.dirty.exited(status)
                continue
            self._worker_exited(pid, status)

    def _worker_exited(self, pid: int, status: int) -> None:
        worker = self.WORKERS.get(pid)
        if worker is None:
            return  # not ours (greenserve as PID 1 reaps silently, like gunicorn 26.1)
        code = os.waitstatus_to_exitcode(status)
        ready = worker.booted
        self._forget(pid)
        expected = worker.retiring or self._stopping
        if code < 0 and not (expected and -code != signal.SIGKILL):
            name = signal.Signals(-code).name
            hint = " Perhaps out of memory?" if -code == signal.SIGKILL else ""
            # (gunicorn's levels: KILL is an error, TERM was asked for, others a warning)
            level = logging.ERROR if -code == signal.SIGKILL else \
                logging.INFO if -code == signal.SIGTERM else logging.WARNING
            log.log(level, "Worker (pid:%s) was sent %s!%s", pid, name, hint)
        elif code > 0 and not worker.retiring:  # (a signal the stop sent is no error)
            log.error("Worker (pid:%s) exited with code %s.", pid, code)  # (gunicorn's period)
        if code and not worker.retiring and time.monotonic() - worker.started < 5:
            self._crashes.append(time.monotonic())  # died young and unasked: a crash
        self.hook("child_exit", self, worker)
        if code in (WORKER_BOOT_ERROR, APP_LOAD_ERROR) and not ready:
            self._boot_failed(code)

    def _boot_failed(self, code: int) -> None:
        if any(w.booted for w in self.WORKERS.values() if not w.retiring):
            log.error("A new worker failed to boot; the running workers stay")
            return
        reason = "App failed to load." if code == APP_LOAD_ERROR else "Worker failed to boot."
        self._halt = (reason, code)

    def _murder(self) -> None:
        """Abort, then kill, workers whose heartbeat is older than ``--timeout``."""
        now = time.monotonic()
        for worker in list(self.WORKERS.values()):
            age, _, activity = worker.heartbeat.read()
            if not self.cfg.timeout or age <= self.cfg.timeout:
                continue
            if worker.aborted_at is None:
                what = f"; it was serving: {activity}" if activity else ""
                log.critical("WORKER TIMEOUT (pid:%s): no heartbeat for %.1f s%s",
                             worker.pid, age, what)
                worker.aborted_at = now
                self.kill_worker(worker.pid, signal.SIGABRT)
            elif now - worker.aborted_at > _ABORT_GRACE:
                self.kill_worker(worker.pid, signal.SIGKILL)

    # -- signal handlers ------------------------------------------------------------------------
    def handle_chld(self) -> None:
        """Reaping happens every loop; the signal only wakes it."""

    def handle_term(self) -> None:
        """Graceful stop."""
        raise StopIteration

    def handle_int(self) -> None:
        """Fast stop."""
        self._stop(graceful=False)

    handle_quit = handle_int

    def handle_ttin(self) -> None:
        """One more worker."""
        self._set_workers(self.num_workers + 1)

    def handle_ttou(self) -> None:
        """One worker fewer (never below one)."""
        if self.num_workers > 1:
            self._set_workers(self.num_workers - 1)

    def _set_workers(self, count: int) -> None:
        self.num_workers = count
        self.manage_workers()

    def handle_usr1(self) -> None:
        """Reopen log files, here and in every worker."""
        logs.reopen()
        for pid in list(self.WORKERS):
            self.kill_worker(pid, signal.SIGUSR1)

    def handle_usr2(self) -> None:
        """Re-exec a new master that inherits the listening sockets."""
        from .reexec import reexec

        reexec(self)

    def handle_winch(self) -> None:
        """Stop the workers gracefully, when daemonised (otherwise a terminal resize)."""
        if self.cfg.daemon:
            log.info("graceful stop of workers")
            self.num_workers = 0
            for worker in list(self.WORKERS.values()):
                self.retire(worker)
        else:
            log.debug("SIGWINCH ignored: not daemonized")

    def handle_hup(self) -> None:
        """Reload the configuration, start new workers, then retire the old ones."""
        from .reload import reload

        self.stats["reloads"] += 1
        reload(self)
        if self.dirty is not None:
            self.dirty.signal(signal.SIGHUP)  # new dirty workers too, as gunicorn

    # -- stopping -------------------------------------------------------------------------------
    def _stop(self, *, graceful: bool) -> None:
        self._graceful = graceful
        raise StopIteration

    def _shutdown(self, reason: str, code: int) -> None:
        graceful = self._graceful and not reason
        self._stopping = True
        if self.control is not None:
            self.control.close()
            self.control = None
        # As gunicorn: either stop gives the workers --graceful-timeout (a fast stop's
        # workers exit at once unless blocked); an INT or QUIT during a graceful one
        # makes it fast, with _QUICK_GRACE left.
        sig = signal.SIGTERM if graceful else signal.SIGQUIT
        for pid in list(self.WORKERS):
            self.kill_worker(pid, sig)
        self._wait_for_workers(self.cfg.graceful_timeout, quick=not graceful)
        for pid in list(self.WORKERS):
            self.kill_worker(pid, signal.SIGKILL)
        self._wait_for_workers(2.0)
        if self.dirty is not None:
            self.dirty.stop()  # after the HTTP workers: they may have been mid-call
        for sock in self.LISTENERS:
            # After USR2 the new master serves from these sockets: leave unix paths alone.
            unlink = not self.reexec_pid and sock.fileno() not in self.adopted_fds
            sockets.close(sock, unlink=unlink)
        if reason:
            log.error("Shutting down: %s", reason)
        else:
            log.info("Shutting down: %s", self.master_name)
        self.hook("on_exit", self)
        if self.pidfile is not None:
            self.pidfile.unlink(self.pid)

    def _wait_for_workers(self, limit: float, *, quick: bool = True) -> None:
        deadline = time.monotonic() + limit
        while self.WORKERS and time.monotonic() < deadline:
            self.reap()
            if not quick and any(name in ("INT", "QUIT") for name in self._queue):
                quick = True
                self._queue.clear()
                log.info("Quick shutdown requested")
                for pid in list(self.WORKERS):
                    self.kill_worker(pid, signal.SIGQUIT)
                deadline = time.monotonic() + _QUICK_GRACE
            if self.WORKERS:
                self.pause(0.05)

    def _reexec_exited(self) -> None:
        log.info("Re-exec'd master (pid:%s) exited", self.reexec_pid)
        self.reexec_pid = 0
        if self.pidfile is not None and self.cfg.pidfile:
            self.pidfile.rename(self.cfg.pidfile)
        self.master_name = "Master"


def _version() -> str:
    from . import __version__
    from .build import describe

    return describe(__version__)


def jittered(base: float, fraction: float = 0.1) -> float:
    """``base`` plus up to ``fraction`` of random jitter (0 stays 0)."""
    return base + random.uniform(0, base * fraction) if base else 0.0
