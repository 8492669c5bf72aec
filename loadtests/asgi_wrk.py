#!/usr/bin/env python3
"""ASGI hello on greenserve vs uvicorn, and greenserve's own WSGI hello, side by side with wrk.

``.venv/bin/python loadtests/asgi_wrk.py [--duration 5] [--rounds 3] [--conns 1,50,500]
[--path /hello]`` (needs wrk and ``pip install uvicorn``). One worker per server, server on
CPU 0 and wrk on CPU 1 (taskset). Every round runs each (server, concurrency) cell once, in
an order rotated between rounds so background load hits every server alike; a cell reports
the median of its rounds. Prints req/s and p50/p99 latency.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable
SERVERS = {
    "greenserve-wsgi": [PY, "-m", "greenserve", "-w", "1", "--worker-connections", "2000",
                        "-b", "127.0.0.1:{port}", "bench_app:app"],
    "greenserve-asgi": [PY, "-m", "greenserve", "-w", "1", "--worker-connections", "2000",
                        "--asgi-lifespan", "off", "-b", "127.0.0.1:{port}",
                        "asgi_bench_app:app"],
    "uvicorn-h11": [PY, "-m", "uvicorn", "--http", "h11", "--loop", "asyncio",
                    "--lifespan", "off", "--no-access-log", "--log-level", "warning",
                    "--port", "{port}", "asgi_bench_app:app"],
    "uvicorn-httptools": [PY, "-m", "uvicorn", "--http", "httptools", "--loop", "asyncio",
                          "--lifespan", "off", "--no-access-log", "--log-level", "warning",
                          "--port", "{port}", "asgi_bench_app:app"],
}
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _pin(cpu: int) -> list[str]:
    return ["taskset", "-c", str(cpu)] if shutil.which("taskset") and os.cpu_count() else []


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start(name: str, port: int) -> subprocess.Popen[bytes]:
    argv = [a.format(port=port) for a in SERVERS[name]]
    env = {**os.environ, "PYTHONPATH": f"{HERE}{os.pathsep}{ROOT}"}
    proc = subprocess.Popen(_pin(0) + argv, cwd=HERE, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{name} did not start")


def _wrk(port: int, conns: int, seconds: float, path: str) -> tuple[float, float, float]:
    threads = min(conns, 2)
    out = subprocess.run(
        _pin(1) + ["wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds:g}s", "--latency",
                   f"http://127.0.0.1:{port}{path}"],
        capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def pct(label: str) -> float:
        match = re.search(rf"{label}\s+([\d.]+)(us|ms|s)\b", out)
        return float(match.group(1)) * _UNITS[match.group(2)] if match else float("nan")

    if "Non-2xx" in out or "Socket errors" in out:
        print(f"  warning: errors at c={conns}:", out.splitlines()[-3:], file=sys.stderr)
    return rps, pct("50%"), pct("99%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--conns", default="1,50,500")
    parser.add_argument("--path", default="/hello")
    parser.add_argument("--servers", default=",".join(SERVERS))
    args = parser.parse_args()
    names = args.servers.split(",")
    conns = [int(c) for c in args.conns.split(",")]
    ports = {name: _free_port() for name in names}
    procs = {name: _start(name, ports[name]) for name in names}
    cells: dict[tuple[str, int], list[tuple[float, float, float]]] = {}
    try:
        for name in names:  # warm-up
            _wrk(ports[name], 50, 1, args.path)
        for round_ in range(args.rounds):
            order = names[round_ % len(names):] + names[:round_ % len(names)]
            for c in conns:
                for name in order:
                    cells.setdefault((name, c), []).append(
                        _wrk(ports[name], c, args.duration, args.path))
    finally:
        for proc in procs.values():
            proc.terminate()
            proc.wait(10)
    print(f"{args.path}, median of {args.rounds} rounds x {args.duration:g} s, one worker")
    print(f"{'server':<20}{'conns':>6}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}")
    for name in names:
        for c in conns:
            runs = cells[(name, c)]
            rps = statistics.median(r[0] for r in runs)
            p50 = statistics.median(r[1] for r in runs)
            p99 = statistics.median(r[2] for r in runs)
            print(f"{name:<20}{c:>6}{rps:>10.0f}{p50:>9.2f}{p99:>9.2f}")
    _print_paired(names, conns, cells)


def _print_paired(names: list[str], conns: list[int],
                  cells: dict[tuple[str, int], list[tuple[float, float, float]]]) -> None:
    """greenserve-asgi's req/s over each other server's, round by round (the two cells of a
    round run seconds apart, so a host whose speed drifts moves both alike)."""
    if "greenserve-asgi" not in names:
        return
    for other in (n for n in names if n != "greenserve-asgi"):
        for c in conns:
            ratios = [a[0] / b[0] for a, b in zip(cells[("greenserve-asgi", c)],
                                                  cells[(other, c)], strict=True)]
            each = ", ".join(f"{r:.2f}" for r in ratios)
            print(f"greenserve-asgi/{other} c{c}: median {statistics.median(ratios):.2f} "
                  f"of the rounds ({each})")


if __name__ == "__main__":
    main()
