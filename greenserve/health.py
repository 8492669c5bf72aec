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
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import gevent
import gevent.events
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

    gevent's monitor thread does the detecting. Its report is handed back to the hub to be
    logged once the hub runs again: logging from the monitor thread would take locks that,
    after patching, belong to the hub.
    """
    if threshold <= 0:
        return
    from gevent import config

    config.monitor_thread = True
    config.max_blocking_time = threshold
    config.print_blocking_reports = False  # we log instead, once, through our logger
    hub = gevent.get_hub()
    with warnings.catch_warnings():
        # Without psutil gevent warns that it cannot watch memory; we only use the blocking
        # detector (--max-worker-memory reads /proc itself).
        warnings.simplefilter("ignore", RuntimeWarning)  # gevent's MonitorWarning
        hub.start_periodic_monitoring_thread()
    _replace_blocking_check(hub, threshold)


def _replace_blocking_check(hub: Any, threshold: float) -> None:
    """Report only the blocking stack, once per blocked stretch.

    gevent's own report also lists every greenlet (``format_run_info``), from the monitor
    thread, holding the GIL: with a thousand WebSocket greenlets that cost 11-15 % of a
    broadcast's CPU and thousands of log lines per report. The stack of the code that holds
    the hub is what the user needs.
    """
    monitor = hub.periodic_monitoring_thread
    tracer = getattr(monitor, "_greenlet_tracer", None)
    entries = getattr(monitor, "_monitoring_functions", None)
    if tracer is None or not entries:  # another gevent: keep its report, through our log
        gevent.events.subscribers.append(_log_gevent_report(hub))
        return
    pending = [False]  # a report is on its way to the log: the same stretch, no second one

    def write(stack: str) -> None:
        pending[0] = False
        log.warning("The event loop was blocked for more than %.2f s (pid: %s); the "
                    "blocking code:\n%s", threshold, os.getpid(), stack)

    def check(hub: Any) -> None:  # runs in the monitor thread
        blocked = tracer.did_block_hub(hub)
        if not blocked or pending[0]:
            return
        frame = sys._current_frames().get(hub.thread_ident)
        stack = "".join(traceback.format_stack(frame)) if frame is not None else "(unknown)"
        pending[0] = True
        hub.loop.run_callback_threadsafe(write, stack)

    entries[0].function = check


def _log_gevent_report(hub: Any) -> Callable[[object], None]:
    def write(blocking_time: float, lines: str) -> None:
        log.warning("The event loop was blocked for more than %.2f s (pid: %s); the "
                    "blocking code:\n%s", blocking_time, os.getpid(), lines)

    def report(event: object) -> None:
        if isinstance(event, gevent.events.EventLoopBlocked):
            lines = "\n".join(str(line) for line in event.info)
            hub.loop.run_callback_threadsafe(write, event.blocking_time, lines)

    return report
