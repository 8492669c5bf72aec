"""A worker's health duties: heartbeat, recycling, stack dumps, the blocked-hub monitor.

Runs inside a worker process (gevent patched). The heartbeat greenlet is also the tick that
checks ``max_requests``, ``--max-worker-lifetime``, ``--max-worker-memory`` and whether the
master is still our parent; a blocked hub stops all of that, which is the point.
"""

from __future__ import annotations

import logging
import os
import random
import sys
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import gevent
import gevent.util

from . import process
from .heartbeat import Heartbeat

if TYPE_CHECKING:
    from .worker import Worker

log = logging.getLogger("greenserve.error")


class Recycling:
    """When this worker should be replaced: age or memory, each jittered."""

    def __init__(self, cfg: Any) -> None:
        lifetime = float(cfg.max_worker_lifetime)
        self.deadline = time.monotonic() + lifetime + random.uniform(0, lifetime * 0.1) \
            if lifetime else None
        self.max_memory = float(cfg.max_worker_memory)

    @staticmethod
    def jittered_max_requests(cfg: Any) -> int:
        """``max_requests`` plus ``randint(0, max_requests_jitter)``; 0 = never (gunicorn)."""
        if cfg.max_requests <= 0:
            return 0
        return int(cfg.max_requests + random.randint(0, cfg.max_requests_jitter))

    def reason(self) -> str | None:
        """Why the worker should stop now (age or memory), or None.

        The request count is checked on every request instead (``WorkerState``).
        """
        if self.deadline is not None and time.monotonic() >= self.deadline:
            return "max worker lifetime reached"
        if self.max_memory:
            rss = process.rss_mib()
            if rss > self.max_memory:
                return f"max worker memory exceeded ({rss:.0f} MiB > {self.max_memory:.0f})"
        return None


def heartbeat_loop(worker: Worker, heartbeat: Heartbeat | None, interval: float) -> None:
    """Beat, then check recycling and the parent, every ``interval`` seconds, forever."""
    recycling = Recycling(worker.cfg)
    while True:
        if heartbeat is not None:
            heartbeat.beat(ready=True, activity=worker.activity())
        if worker.ppid and os.getppid() != worker.ppid:
            log.info("Parent changed, shutting down: %s", worker)
            worker.request_stop(graceful=True)
            return
        reason = recycling.reason()
        if reason is not None:
            log.info("Autorestarting worker (pid: %s): %s", worker.pid, reason)
            worker.request_stop(graceful=True)
            return
        gevent.sleep(interval)


def dump_stacks() -> str:
    """Every thread's and greenlet's stack, for the error log."""
    return "\n".join(gevent.util.format_run_info())


def install_abort_handler(on_abort: Callable[[], None]) -> None:
    """SIGABRT from the master (heartbeat timeout): dump stacks, run the hook, exit.

    A plain ``signal.signal`` handler, not gevent's: the hub is probably blocked, and a
    Python-level handler still runs between two bytecodes of the blocking code.
    """
    import signal

    def handler(signum: int, frame: object) -> None:
        log.critical("WORKER TIMEOUT: aborting (pid: %s); stacks follow\n%s",
                     os.getpid(), dump_stacks())
        try:
            on_abort()
        finally:
            logging.shutdown()
            os._exit(1)

    signal.signal(signal.SIGABRT, handler)


def start_block_monitor(threshold: float) -> None:
    """Log the stack of code that keeps the hub from running for ``threshold`` seconds.

    A timer in the hub stamps the time every quarter of ``threshold``; a monitor thread (a
    real OS thread) checks the stamp as often. A stamp older than ``threshold`` means the hub
    could not run its timers for that long. It is reported when the same greenlet (the same
    bottom frame) was running at this check and the one before: code that has not yielded,
    rather than a loop iteration made long by many greenlets that each run briefly. The
    monitor takes that code's stack from the hub's thread
    (``sys._current_frames``) and hands it to the hub to be logged once it runs again:
    logging from the monitor thread would take locks that, after patching, belong to the
    hub. One report per blocked stretch.

    gevent's own monitor traces every greenlet switch (``greenlet.settrace``), about 1.5 µs
    per request of a WSGI worker, and its report walks every greenlet from the monitor
    thread; the timer costs a callback every ``threshold / 4`` seconds.
    """
    if threshold <= 0:
        return
    hub = gevent.get_hub()
    period = threshold / 4
    stamp = [time.monotonic()]

    def tick() -> None:  # in the hub
        stamp[0] = time.monotonic()

    timer = hub.loop.timer(period, period, ref=False)  # does not keep the loop alive
    timer.start(tick)
    _BlockMonitor(hub, threshold, period, stamp).start()


class _BlockMonitor:
    """The monitor thread's side: compare the hub's stamp with the clock, report once."""

    def __init__(self, hub: Any, threshold: float, period: float, stamp: list[float]) -> None:
        self.hub, self.threshold, self.period, self.stamp = hub, threshold, period, stamp
        self.pending = False  # a report is on its way to the log: the same stretch, no second
        self.last_root: int | None = None  # id() of the bottom frame seen at the last check

    def start(self) -> None:
        from gevent.monkey import get_original

        get_original("_thread", "start_new_thread")(self._run, ())

    def _run(self) -> None:  # in the monitor thread: no logging, no gevent blocking calls
        from gevent.monkey import get_original

        sleep: Callable[[float], None] = get_original("time", "sleep")
        hub = self.hub
        while hub.loop is not None and not hub.dead:
            sleep(self.period)
            if self.pending or time.monotonic() - self.stamp[0] <= self.threshold:
                self.last_root = None
                continue
            frame = sys._current_frames().get(hub.thread_ident)
            if not self._same_greenlet(frame):
                continue
            stack = "".join(traceback.format_stack(frame)) if frame is not None \
                else "(unknown)"
            self.pending = True
            loop = hub.loop
            if loop is not None:  # None once the hub is destroyed
                loop.run_callback_threadsafe(self._write, stack)

    def _same_greenlet(self, frame: Any) -> bool:
        """Whether ``frame`` belongs to the greenlet that ran at the last check too."""
        root = frame
        while root is not None and root.f_back is not None:
            root = root.f_back  # a greenlet's frames end at its own bottom frame
        seen, self.last_root = self.last_root, id(root)
        return root is not None and seen == id(root)

    def _write(self, stack: str) -> None:  # in the hub
        self.pending = False
        log.warning("The event loop was blocked for more than %.2f s (pid: %s); the "
                    "blocking code:\n%s", self.threshold, os.getpid(), stack)
