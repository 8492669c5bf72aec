"""Micro-benchmark of the sans-io HTTP/1 connections (not a test).

    .venv/bin/python tools/parser_bench.py [--rounds 7] [--number 3000] [--profile python]

For each implementation (``python`` = H11Connection, ``fast`` = HttptoolsConnection, when
httptools is installed) it reports microseconds per request for:

* ``single``: one browser-like GET head fed in one ``receive_data``, its Request and
  EndOfMessage pulled, a 10 KB Content-Length response produced (head, body, end), and
  ``start_next_cycle``: what the worker does for one keep-alive request;
* ``pipelined``: the same for a burst of 16 such heads fed in one ``receive_data``.

The figure is the process CPU time (steadier than wall time on a shared machine) of the best
of ``--rounds`` rounds of ``--number`` requests. ``--profile NAME`` prints a cProfile of the
single case instead.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from greenserve.protocol.events import (  # noqa: E402
    Data,
    EndOfMessage,
    Request,
    Response,
)
from greenserve.protocol.policy import Limits  # noqa: E402

HEAD = (
    b"GET /articles/2024/greenserve-benchmarks?page=2&sort=new HTTP/1.1\r\n"
    b"Host: www.example.com\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n"
    b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    b"Accept-Language: en-US,en;q=0.5\r\n"
    b"Accept-Encoding: gzip, deflate, br, zstd\r\n"
    b"Referer: https://www.example.com/articles/2024\r\n"
    b"Connection: keep-alive\r\n"
    b"Cookie: session=8f14e45fceea167a5a36dedd4bea2543; theme=dark; lang=en\r\n"
    b"Upgrade-Insecure-Requests: 1\r\n"
    b"Sec-Fetch-Dest: document\r\n"
    b"Sec-Fetch-Mode: navigate\r\n"
    b"Sec-Fetch-Site: same-origin\r\n"
    b"Priority: u=0, i\r\n"
    b"\r\n"
)
BODY = b"x" * 10240
RESPONSE_HEADERS = [
    (b"Content-Type", b"text/html; charset=utf-8"),
    (b"Content-Length", b"%d" % len(BODY)),
    (b"Date", b"Tue, 15 Oct 2024 12:00:00 GMT"),
    (b"Server", b"greenserve/0.1.0"),
]
BURST = 16


def implementations() -> dict[str, type]:
    """The connection classes to measure, by ``--http-parser`` name."""
    from greenserve.protocol.h1 import H11Connection

    found: dict[str, type] = {"python": H11Connection}
    try:
        from greenserve.protocol.h1_fast import HttptoolsConnection
    except ImportError:
        print("httptools not installed: measuring the python parser only")
    else:
        found["fast"] = HttptoolsConnection
    return found


def serve_one(conn: object) -> int:
    """Pull one request's events and produce its response; the bytes produced."""
    request = conn.next_event()  # type: ignore[attr-defined]
    assert isinstance(request, Request), request
    end = conn.next_event()  # type: ignore[attr-defined]
    assert isinstance(end, EndOfMessage), end
    out = conn.send(Response(200, RESPONSE_HEADERS))  # type: ignore[attr-defined]
    out += conn.send(Data(BODY))  # type: ignore[attr-defined]
    out += conn.send(EndOfMessage())  # type: ignore[attr-defined]
    conn.start_next_cycle()  # type: ignore[attr-defined]
    return len(out)


def single(cls: type, number: int) -> None:
    conn = cls(Limits())
    for _ in range(number):
        conn.receive_data(HEAD)
        serve_one(conn)


def pipelined(cls: type, number: int) -> None:
    conn = cls(Limits())
    burst = HEAD * BURST
    for _ in range(number // BURST):
        conn.receive_data(burst)
        for _ in range(BURST):
            serve_one(conn)


def best_us(run: Callable[[type, int], None], cls: type, number: int, rounds: int) -> float:
    """Best CPU time per request over ``rounds`` runs, in microseconds."""
    run(cls, min(number, 200))  # warm up
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        run(cls, number)
        best = min(best, time.process_time() - started)
    return best / number * 1e6


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--number", type=int, default=3200)
    parser.add_argument("--profile", metavar="NAME", help="cProfile one implementation")
    args = parser.parse_args(argv)
    impls = implementations()
    if args.profile:
        profiler = cProfile.Profile()
        profiler.runcall(single, impls[args.profile], args.number)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        return 0
    print(f"{'parser':<8} {'single µs/req':>14} {'pipelined µs/req':>17}")
    for name, cls in impls.items():
        one = best_us(single, cls, args.number, args.rounds)
        burst = best_us(pipelined, cls, args.number, args.rounds)
        print(f"{name:<8} {one:>14.2f} {burst:>17.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
