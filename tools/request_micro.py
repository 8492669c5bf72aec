"""Pure-Python cost of one keep-alive request through greenserve (not a test).

    .venv/bin/python tools/request_micro.py [--app bench_app:app] [--path /hello]
        [--requests 60000] [--rounds 9] [--parser auto] [--profile FILE]

Runs the real request path (``HTTPConnection`` with the worker's parser, adapter and
writer, settings from the defaults; for an ASGI app the worker's event loop runs, and a
request the app answers without waiting is served in its first step, as in a worker)
over a socket stub that hands out the same GET for every read and takes every write
whole, so no system call, hub switch or client is involved: what is left is greenserve's
own Python per request plus the app's. Prints the minimum and the median µs per request
over the rounds. Run it pinned to one CPU
(``taskset -c 0``); for an A/B, run a copy of ``greenserve/`` first on ``PYTHONPATH``
(``git archive REV greenserve | tar -x -C DIR``), alternating. ``--profile FILE`` writes a
cProfile of one more round (its numbers are inflated by the profiler; the ranking holds).

This is the figure to watch when trimming the hot path: on this machine a real request at
500 connections costs two to three times as much (system calls, the hub, the client's
wake-ups), and that part moves with the host's load; this one moves by a few percent.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import cProfile  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "loadtests"))

from greenserve import config  # noqa: E402
from greenserve.app.loading import import_app  # noqa: E402
from greenserve.app.runtime import make_runtime  # noqa: E402
from greenserve.connection import HTTPConnection  # noqa: E402
from greenserve.streams import ConnectionInfo  # noqa: E402
from greenserve.worker import WorkerState  # noqa: E402


class _OSSocket:
    """The OS-level socket under gevent's: the same request for each read, ``left`` times."""

    def __init__(self, request: bytes, left: int) -> None:
        self.request = request
        self.left = left
        self.writes = 0
        self.conn: Any = None

    def recv(self, size: int) -> bytes:
        if self.left <= 0:
            return b""
        self.left -= 1
        # The keep-alive wait is a hub round trip in a server; here the next request is
        # always there, and the connection's own flag for that says so (set, not patched:
        # a compiled HTTPConnection takes no new methods).
        self.conn._early = 1
        return self.request

    def send(self, data: bytes) -> int:
        self.writes += 1
        return len(data)


class _Socket:
    """What HTTPConnection uses of a gevent socket."""

    timeout: float | None = None

    def __init__(self, request: bytes, count: int) -> None:
        self._sock = _OSSocket(request, count)

    def fileno(self) -> int:
        return -1

    def settimeout(self, timeout: float | None) -> None:
        self.timeout = timeout

    def recv(self, size: int) -> bytes:
        return self._sock.recv(size)

    def send(self, data: bytes) -> int:
        return self._sock.send(data)

    def shutdown(self, how: int) -> None:
        pass

    def close(self) -> None:
        pass


def one_round(state: WorkerState, handler: Any, request: bytes, count: int) -> float:
    """Serve ``count`` keep-alive requests on one connection; µs per request."""
    sock = _Socket(request, count)
    info = ConnectionInfo(client=("127.0.0.1", 40000), server=("127.0.0.1", 8000))
    conn = HTTPConnection(sock, info, state)  # type: ignore[arg-type]
    sock._sock.conn = conn
    started = time.perf_counter()
    conn.serve(handler)
    elapsed = time.perf_counter() - started
    if sock._sock.writes < count:
        raise SystemExit(f"only {sock._sock.writes} of {count} requests were answered")
    return elapsed / count * 1e6


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--app", default="bench_app:app",
                   help="a WSGI or ASGI app in loadtests/ (asgi_bench_app:app is the twin)")
    p.add_argument("--path", default="/hello")
    p.add_argument("--requests", type=int, default=60000, help="per round")
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--parser", default="auto", help="--http-parser")
    p.add_argument("--profile", help="write a cProfile of one more round to this file")
    opts = p.parse_args()
    cfg = config.load(["--http-parser", opts.parser, "--asgi-lifespan", "off"], {})
    state = WorkerState(cfg)
    runtime = make_runtime(import_app(opts.app), state)
    runtime.startup(lambda: True, 1.0)  # ASGI: the worker's event loop
    handler = runtime.handler
    request = f"GET {opts.path} HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n".encode()
    one_round(state, handler, request, 2000)  # warm the caches (heads, keys, parser)
    results = sorted(one_round(state, handler, request, opts.requests)
                     for _ in range(opts.rounds))
    import greenserve

    print(f"{opts.app} {opts.path}: min {results[0]:.2f} µs, median "
          f"{statistics.median(results):.2f} µs per request ({greenserve.__file__})")
    if opts.profile:
        cProfile.runctx("one_round(state, handler, request, opts.requests)", globals(),
                        locals(), opts.profile)


if __name__ == "__main__":
    main()
