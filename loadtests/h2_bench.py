#!/usr/bin/env python3
"""HTTP/2 (h2c) on greenserve vs gunicorn 27's gevent worker, side by side with h2load.

``.venv/bin/python loadtests/h2_bench.py [--duration 4] [--rounds 4] [--conns 16]
[--streams 10] [--path /10k] [--servers greenserve,gunicorn,greenserve-asgi]`` (needs h2load
from nghttp2 — Debian's ``nghttp2-client`` — and gunicorn 25+ with ``h2``). One worker per
server, on CPU 0; h2load on CPU 1. Each round runs every server once, in an order rotated
between rounds. Prints the median req/s, the worker's CPU time per request (the steadier
figure on a shared machine) and greenserve's ratio to each other server, round by round.
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

from benchlib.procs import (
    CLIENT_CPU,
    SERVER_CPU,
    can_pin,
    free_port,
    pin_prefix,
    spawn,
    stop,
    stop_all,
)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable
_H2C = ["--http-protocols", "h2,h1", "--log-level", "warning"]
SERVERS = {
    "greenserve": [PY, "-m", "greenserve", "-w", "1", "-b", "127.0.0.1:{port}", *_H2C,
                   "--http2-cleartext", "prior-knowledge", "bench_app:app"],
    "greenserve-asgi": [PY, "-m", "greenserve", "-w", "1", "-b", "127.0.0.1:{port}", *_H2C,
                        "--http2-cleartext", "prior-knowledge", "--asgi-lifespan", "off",
                        "asgi_bench_app:app"],
    "gunicorn": [PY, "-m", "gunicorn", "-k", "gevent", "-w", "1", "-b", "127.0.0.1:{port}",
                 *_H2C, "--http2-cleartext", "prior-knowledge", "bench_app:app"],
}


def _pin(cpu: int) -> list[str]:
    return pin_prefix(cpu, can_pin()[0])


def _start(name: str, port: int) -> tuple[subprocess.Popen[bytes], int]:
    """The server, and its worker's PID (the master's only child)."""
    argv = [a.format(port=port) for a in SERVERS[name]]
    env = {**os.environ, "PYTHONPATH": f"{HERE}{os.pathsep}{ROOT}"}
    proc = spawn(_pin(SERVER_CPU) + argv, cwd=HERE, env=env, stdout=subprocess.DEVNULL,
                 stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True,
                                  text=True).stdout.split()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        except OSError:
            time.sleep(0.1)
            continue
        if children:
            return proc, int(children[0])
        time.sleep(0.1)
    stop(proc)
    raise RuntimeError(f"{name} did not start")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _h2load(port: int, args: argparse.Namespace, seconds: float) -> tuple[float, int, str]:
    out = subprocess.run(
        _pin(CLIENT_CPU) + ["h2load", "-c", str(args.conns), "-m", str(args.streams), "-D",
                   f"{seconds:g}", f"http://127.0.0.1:{port}{args.path}"],
        capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"finished in [\d.]+s, ([\d.]+) req/s", out).group(1))  # type: ignore[union-attr]
    done = int(re.search(r"(\d+) succeeded", out).group(1))  # type: ignore[union-attr]
    codes = re.search(r"status codes: (.*)", out)
    return rps, done, codes.group(1) if codes else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=4)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--conns", type=int, default=16)
    parser.add_argument("--streams", type=int, default=10, help="h2load -m")
    parser.add_argument("--path", default="/10k")
    parser.add_argument("--servers", default="greenserve,gunicorn")
    args = parser.parse_args()
    if shutil.which("h2load") is None:
        sys.exit("h2load is needed: apt-get install nghttp2-client")
    names = args.servers.split(",")
    ports = {name: free_port() for name in names}
    started: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    try:
        for name in names:
            started[name] = _start(name, ports[name])
        for name in names:  # warm-up
            _h2load(ports[name], args, 1)
        for round_ in range(args.rounds):
            for name in names[round_ % len(names):] + names[:round_ % len(names)]:
                pid = started[name][1]
                before = _cpu_seconds(pid)
                rps, done, codes = _h2load(ports[name], args, args.duration)
                cpu_us = (_cpu_seconds(pid) - before) / max(done, 1) * 1e6
                runs[name].append((rps, cpu_us))
                print(f"round {round_ + 1} {name:<16}{rps:>9.0f} req/s {cpu_us:7.1f} us CPU"
                      f"  [{codes}]", flush=True)
    finally:
        stop_all()
    print(f"\n{args.path}, h2load -c {args.conns} -m {args.streams}, median of {args.rounds}"
          f" rounds x {args.duration:g} s, one worker")
    for name in names:
        rps = statistics.median(r for r, _ in runs[name])
        cpu = statistics.median(c for _, c in runs[name])
        print(f"{name:<18}{rps:>9.0f} req/s {cpu:7.1f} us CPU per request")
    base = names[0]
    for other in names[1:]:
        ratios = [a[0] / b[0] for a, b in zip(runs[base], runs[other], strict=True)]
        each = ", ".join(f"{r:.2f}" for r in ratios)
        print(f"{base}/{other}: median {statistics.median(ratios):.2f} ({each})")


if __name__ == "__main__":
    main()
