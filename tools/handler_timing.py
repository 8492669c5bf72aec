"""A config file that logs how long the worker spends in each request's handler (not a test).

    greenserve -c tools/handler_timing.py -w 1 ... APP

Every ``GREENSERVE_TIMING_INTERVAL`` seconds (3) the worker writes one line to stderr:
``timing: _run_handler=21.6 send_now=11.2 ...``, the mean wall-clock µs per call of
``HTTPConnection._run_handler`` (the adapter, the app and the response write of one
request) and of the socket writes, over the calls since the last line. A request that
finishes without yielding to the hub (a hello app, an ASGI app done in its first step)
runs in one stretch, so for those the figure is CPU time that excludes the hub, parsing and
switching. It adds two clock reads per call; compare variants with it on in both.
"""

import os
import sys
import time
from collections.abc import Callable
from typing import Any

_INTERVAL = float(os.environ.get("GREENSERVE_TIMING_INTERVAL", "3"))


def _timed(owner: type, name: str, totals: dict[str, list[float]]) -> None:
    original: Callable[..., Any] = getattr(owner, name)
    total = totals[name] = [0.0, 0.0]
    clock = time.perf_counter

    def timed(*args: Any, **kwargs: Any) -> Any:
        started = clock()
        try:
            return original(*args, **kwargs)
        finally:
            total[0] += clock() - started
            total[1] += 1

    setattr(owner, name, timed)


def post_worker_init(worker: Any) -> None:
    import gevent

    from greenserve.connection import HTTPConnection

    totals: dict[str, list[float]] = {}
    for name in ("_run_handler", "write", "send_now"):
        _timed(HTTPConnection, name, totals)

    def report() -> None:
        while True:
            gevent.sleep(_INTERVAL)
            cells = [f"{name}={spent / calls * 1e6:.2f}"
                     for name, (spent, calls) in totals.items() if calls]
            if cells:
                sys.stderr.write("timing: " + " ".join(cells) + "\n")
            for total in totals.values():
                total[0] = total[1] = 0.0

    gevent.spawn(report)
