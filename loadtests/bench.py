#!/usr/bin/env python3
"""greenserve vs ``gunicorn -k gevent``: same app, one worker each, measured with wrk.

``make bench`` (installs the ``bench`` extra), or ``.venv/bin/python loadtests/bench.py
[--quick] [--duration 8] [--servers greenserve,gunicorn]``. Both servers run side by side on
127.0.0.1 (server pinned to CPU 0, wrk to CPU 1); each (server, endpoint, concurrency) cell
gets a warm-up, then a measured run; the grid is repeated with the servers' order reversed
every other repeat, and a cell reports its best repeat by requests/s (``--pick median``).
Runs disturbed by other processes (``CpuWatch``) are re-run once and only count when no
undisturbed run exists. Prints a table, writes ``loadtests/results/latest.json``, and stops
every process it started, also on Ctrl-C or SIGTERM. See loadtests/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import bench_app

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
HOST = "127.0.0.1"
SERVER_CPU, CLIENT_CPU = 0, 1
#: (path, concurrent connections) of every cell, for each server
CELLS: list[tuple[str, int]] = [("/hello", 50), ("/10k", 50), ("/10k", 256), ("/sleep10ms", 256)]
KNOWN_SERVERS = ("greenserve", "gunicorn", "greenserve-h11")
START_TIMEOUT = 30.0
#: a run during which other processes used more than this share of one CPU is "disturbed"
DISTURBED = 0.10
#: the machine counts as quiet, before a run, below this share of one CPU used by others
QUIET = 0.05
#: settings both servers are given; the gevent worker and no access log are the defaults
COMMON = ["-w", "1", "--worker-connections", "1000", "--keep-alive", "75"]
WRK_HINT = ("wrk, the load generator, is not installed and could not be installed here.\n"
            "Install it (Debian/Ubuntu: `sudo apt-get install wrk`; macOS: `brew install wrk`)"
            " and run the benchmark again. Nothing was measured.")

_children: list[subprocess.Popen[bytes]] = []


# -- processes ----------------------------------------------------------------------------------
def _spawn(argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    """Start a child in its own session (so a terminal Ctrl-C reaches only us) and track it."""
    proc = subprocess.Popen(argv, start_new_session=True, **kwargs)
    _children.append(proc)
    return proc


def _stop(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """Stop a child we started and everything in its process group: INT, then KILL."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGINT)  # fast shutdown for both servers, and for wrk
            proc.wait(timeout=grace)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # gunicorn's worker, if its master left it behind
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def stop_all() -> None:
    """Stop every child still running, newest first; a second Ctrl-C cannot interrupt it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while _children:
        _stop(_children.pop())


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pin_prefix(cpu: int, enabled: bool) -> list[str]:
    return ["taskset", "-c", str(cpu)] if enabled else []


def can_pin() -> tuple[bool, str]:
    if shutil.which("taskset") is None or not hasattr(os, "sched_getaffinity"):
        return False, "taskset not found: server and wrk are not pinned"
    allowed = os.sched_getaffinity(0)
    if not {SERVER_CPU, CLIENT_CPU} <= allowed:
        return False, f"CPUs {sorted(allowed)} only: server and wrk are not pinned"
    return True, f"server on CPU {SERVER_CPU}, wrk on CPU {CLIENT_CPU} (taskset)"


# -- servers ------------------------------------------------------------------------------------
def server_argv(name: str) -> list[str]:
    bind = ["-b", f"{HOST}:0"]  # the kernel picks the port; both servers log the real one
    if name == "greenserve":  # its default parser: httptools when installed, else h11
        return [sys.executable, "-m", "greenserve", *COMMON, *bind, "bench_app:app"]
    if name == "greenserve-h11":  # the pure-Python parser, whatever is installed
        return [sys.executable, "-m", "greenserve", *COMMON, "--http-parser", "python", *bind,
                "bench_app:app"]
    # --no-control-socket: gunicorn 24+ otherwise creates ~/.gunicorn/gunicorn.ctl
    return [sys.executable, "-m", "gunicorn", "-k", "gevent", *COMMON, "--no-control-socket",
            *bind, "bench_app:app"]


@dataclass
class Server:
    name: str
    argv: list[str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    port: int = 0

    def start(self, pin: bool) -> None:
        env = {k: v for k, v in os.environ.items()
               if k not in ("GUNICORN_CMD_ARGS", "GREENSERVE_CMD_ARGS", "WEB_CONCURRENCY")}
        env["PYTHONPATH"] = str(HERE)  # bench_app; cwd is loadtests/, which has no config file
        with self.log_path.open("wb") as log:
            self.proc = _spawn(pin_prefix(SERVER_CPU, pin) + self.argv, cwd=HERE, env=env,
                               stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        self.port = self._wait_listening()

    def _wait_listening(self) -> int:
        assert self.proc is not None
        pattern = re.compile(rf"Listening at: http://{re.escape(HOST)}:(\d+)")
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            found = pattern.search(self.log_path.read_text(errors="replace"))
            if found:
                return int(found.group(1))
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not start; its log ({self.log_path}):\n"
                           + self.log_path.read_text(errors="replace")[-3000:])

    def url(self, path: str) -> str:
        return f"http://{HOST}:{self.port}{path}"

    def check(self) -> None:
        """Every endpoint answers 200 with the right body size, from the right server."""
        for path, size in bench_app.EXPECTED_SIZES.items():
            with urllib.request.urlopen(self.url(path), timeout=10) as resp:
                body = resp.read()
                server = resp.headers.get("Server", "")
                length = resp.headers.get("Content-Length")
            if resp.status != 200 or len(body) != size or length != str(size):
                raise RuntimeError(f"{self.name} {path}: status {resp.status}, "
                                   f"{len(body)} bytes, Content-Length {length}")
            if not server.startswith(self.name.split("-")[0]):
                raise RuntimeError(f"{self.name} {path}: answered by {server!r}")


# -- wrk ----------------------------------------------------------------------------------------
def ensure_wrk() -> str:
    """The path of wrk; installs the Debian package when missing and we are root."""
    path = shutil.which("wrk")
    if path:
        return path
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        print("wrk not found: installing it with `apt-get install -y wrk`", flush=True)
        install = ["apt-get", "install", "-y", "-q", "wrk"]
        if subprocess.run(install, env=env, stdin=subprocess.DEVNULL).returncode != 0:
            print("retrying after `apt-get update`", flush=True)
            subprocess.run(["apt-get", "update", "-q"], env=env, stdin=subprocess.DEVNULL)
            subprocess.run(install, env=env, stdin=subprocess.DEVNULL)
        path = shutil.which("wrk")
        if path:
            return path
    sys.exit(WRK_HINT)


def wrk_version(wrk: str) -> str:
    out = subprocess.run([wrk, "-v"], capture_output=True, text=True).stdout
    return out.splitlines()[0].split(" Copyright")[0].strip() if out else "unknown"


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.M)
_PCT = re.compile(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.M)
_REQS = re.compile(r"^\s+(\d+) requests in ([\d.]+)(us|ms|s|m|h), ([\d.]+)(\w+) read", re.M)
_SOCK = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_NON2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p75_ms: float
    p90_ms: float
    p99_ms: float
    requests: int
    non2xx: int = 0
    socket_errors: dict[str, int] = field(default_factory=dict)

    @property
    def errors(self) -> int:
        return self.non2xx + sum(self.socket_errors.values())


def parse_wrk(out: str) -> WrkResult:
    """Read wrk's ``--latency`` report (raises ValueError when it is not one)."""
    rps, reqs = _RPS.search(out), _REQS.search(out)
    pcts = {int(p): float(v) * _UNITS[u] for p, v, u in _PCT.findall(out)}
    if rps is None or reqs is None or set(pcts) != {50, 75, 90, 99}:
        raise ValueError(f"unexpected wrk output:\n{out}")
    result = WrkResult(rps=float(rps.group(1)), p50_ms=pcts[50], p75_ms=pcts[75],
                       p90_ms=pcts[90], p99_ms=pcts[99], requests=int(reqs.group(1)))
    if sock := _SOCK.search(out):
        names = ("connect", "read", "write", "timeout")
        result.socket_errors = dict(zip(names, map(int, sock.groups()), strict=True))
    if non2xx := _NON2XX.search(out):
        result.non2xx = int(non2xx.group(1))
    return result


def run_wrk(wrk: str, url: str, conns: int, seconds: int, opts: argparse.Namespace) -> str:
    argv = [wrk, f"-t{opts.wrk_threads}", f"-c{conns}", f"-d{seconds}s", "--latency",
            "--timeout", "2s", url]
    proc = _spawn(pin_prefix(CLIENT_CPU, opts.pin) + argv, stdin=subprocess.DEVNULL,
                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out, _ = proc.communicate(timeout=seconds + 60)
    _children.remove(proc)
    text = out.decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{text}")
    return text


# -- other load on the machine ------------------------------------------------------------------
HZ = os.sysconf("SC_CLK_TCK")


def _busy_ticks() -> int:
    """CPU time (user + nice + system) spent by everything on the machine, in ticks."""
    with open("/proc/stat") as f:
        fields = f.readline().split()
    return int(fields[1]) + int(fields[2]) + int(fields[3])


def _group_ticks(pgids: set[int]) -> dict[int, int]:
    """CPU time of the live processes in each of these process groups (ours), in ticks."""
    total = dict.fromkeys(pgids, 0)
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                stat = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(stat[2]) in total:
            total[int(stat[2])] += int(stat[11]) + int(stat[12])  # utime + stime
    return total


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class CpuWatch:
    """CPU used during a run by each server, and by processes that are not ours.

    A server's own CPU time per request is a cost measure that other load barely moves. The
    machine has two CPUs, both busy during a run (server and wrk), so anything else that runs
    (a test suite, a build) takes CPU from them and lowers that run's requests/s: its share
    is the machine's busy time minus the servers' and wrk's own (kernel network work done in
    softirq context is left out on both sides), as a fraction of one CPU.
    """

    def __init__(self, servers: list[Server]) -> None:
        self.pgids = {s.proc.pid for s in servers if s.proc is not None}
        self.enabled = Path("/proc/stat").exists()  # Linux only; elsewhere nothing is measured

    def start(self) -> None:
        if not self.enabled:
            return
        self._t = time.monotonic()
        self._busy, self._ours = _busy_ticks(), _group_ticks(self.pgids)
        self._kids = _children_cpu()

    def stop(self) -> tuple[float, dict[int, float]]:
        """(others' share of one CPU, CPU seconds of each server) since ``start()``."""
        if not self.enabled:
            return 0.0, {}
        elapsed = time.monotonic() - self._t
        busy = (_busy_ticks() - self._busy) / HZ
        now = _group_ticks(self.pgids)
        servers = {g: (now[g] - self._ours[g]) / HZ for g in self.pgids}
        ours = sum(servers.values()) + _children_cpu() - self._kids  # wrk, once reaped
        share = max(0.0, busy - ours) / elapsed if elapsed > 0 else 0.0
        return share, servers

    def wait_quiet(self, budget: float, probe: float = 0.5) -> float:
        """Wait, up to ``budget`` seconds, until the machine is quiet; returns the time spent."""
        started = time.monotonic()
        announced = False
        while True:
            self.start()
            time.sleep(probe)
            spent = time.monotonic() - started
            if self.stop()[0] < QUIET or spent >= budget:
                return spent
            if not announced:
                print("(machine busy, waiting)", end=" ", flush=True)
                announced = True


# -- the grid -----------------------------------------------------------------------------------
def cell_key(path: str, conns: int) -> str:
    return f"{path} c={conns}"


@dataclass
class Budget:
    """Seconds the whole benchmark may add, waiting for a quiet machine and re-running."""

    left: float

    def spend(self, seconds: float) -> None:
        self.left = max(0.0, self.left - seconds)


def measure(servers: list[Server], wrk: str, opts: argparse.Namespace) -> dict[str, Any]:
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        cell_key(*c): {s.name: [] for s in servers} for c in CELLS}
    total = len(CELLS) * len(servers) * opts.repeats
    load, budget = CpuWatch(servers), Budget(opts.max_extra)
    done = 0
    for repeat in range(opts.repeats):
        order = servers if repeat % 2 == 0 else servers[::-1]
        for path, conns in CELLS:
            for server in order:
                done += 1
                print(f"[{done}/{total}] repeat {repeat + 1} {server.name:<10} {path:<10} "
                      f"c={conns:<3}", end=" ... ", flush=True)
                record = run_cell(server, path, conns, wrk, opts, load, budget)
                record |= {"repeat": repeat + 1, "position": order.index(server) + 1}
                runs[cell_key(path, conns)][server.name].append(record)
    return runs


def run_cell(
    server: Server, path: str, conns: int, wrk: str, opts: argparse.Namespace,
    load: CpuWatch, budget: Budget,
) -> dict[str, Any]:
    """Warm up, then measure one cell; re-run it once if other processes disturbed it."""
    attempts: list[dict[str, Any]] = []
    while True:
        budget.spend(load.wait_quiet(budget.left))
        attempts.append(measure_once(server, path, conns, wrk, opts, load))
        run_time = opts.warmup + opts.duration
        if not attempts[-1]["disturbed"] or len(attempts) > 1 or budget.left < run_time:
            break
        print(f"{'':>38} re-run ...", end=" ", flush=True)
        budget.spend(run_time)
    kept = min(attempts, key=lambda r: r["other_cpu"])  # the least disturbed attempt
    return kept | {"attempts": len(attempts),
                   "other_cpu_attempts": [r["other_cpu"] for r in attempts]}


def measure_once(
    server: Server, path: str, conns: int, wrk: str, opts: argparse.Namespace, load: CpuWatch
) -> dict[str, Any]:
    assert server.proc is not None
    url = server.url(path)
    if opts.warmup:
        run_wrk(wrk, url, conns, opts.warmup, opts)
    load.start()
    out = run_wrk(wrk, url, conns, opts.duration, opts)
    other, cpu = load.stop()
    result = parse_wrk(out)
    server_cpu = cpu.get(server.proc.pid, 0.0)
    cpu_us = server_cpu / max(result.requests, 1) * 1e6
    disturbed = other > DISTURBED
    print(f"{result.rps:7.0f} req/s  p99 {result.p99_ms:6.1f} ms  {cpu_us:4.0f} us CPU/req  "
          f"errors {result.errors}  other load {other:4.0%}"
          f"{'  DISTURBED' if disturbed else ''}", flush=True)
    return {**asdict(result), "errors": result.errors, "cpu_us_per_request": round(cpu_us, 1),
            "server_cpu_s": round(server_cpu, 2), "other_cpu": round(other, 3),
            "disturbed": disturbed, "wrk_output": out}


METRICS = ("rps", "p50_ms", "p99_ms", "cpu_us_per_request")


def pick(records: list[dict[str, Any]], how: str) -> dict[str, Any]:
    """The cell's reported numbers: the best run by req/s, or the median of each metric.

    Runs that other processes disturbed are left out when at least one run was not.
    """
    errors = sum(r["errors"] for r in records)  # all measured runs, not only the picked one
    records = [r for r in records if not r["disturbed"]] or records
    if how == "best":
        best = max(records, key=lambda r: r["rps"])
        return {m: best[m] for m in METRICS} | {
            "errors": errors, "repeat": best["repeat"], "disturbed": best["disturbed"]}
    return {m: statistics.median(r[m] for r in records) for m in METRICS} | {
        "errors": errors, "disturbed": any(r["disturbed"] for r in records)}


def summarise(runs: dict[str, Any], names: list[str], how: str) -> list[dict[str, Any]]:
    rows = []
    for path, conns in CELLS:
        key = cell_key(path, conns)
        row: dict[str, Any] = {"endpoint": path, "connections": conns,
                               "servers": {n: pick(runs[key][n], how) for n in names}}
        base = row["servers"].get("gunicorn", {}).get("rps")
        row["vs_gunicorn"] = {n: round(row["servers"][n]["rps"] / base, 3)
                              for n in names if n != "gunicorn" and base}
        rows.append(row)
    return rows


def render_table(rows: list[dict[str, Any]], names: list[str]) -> str:
    ratios = list(rows[0]["vs_gunicorn"]) if rows else []
    head = ["endpoint", "conns", *(f"{n} req/s" for n in names)]
    head += [f"{n}/gunicorn" for n in ratios]
    head += [f"{n} p50 / p99 ms" for n in names]
    head += ["server CPU µs/req " + " / ".join(names)]
    head += ["errors " + " / ".join(names)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = row["servers"]
        out = [f"`{row['endpoint']}`", str(row["connections"])]
        out += [f"{cells[n]['rps']:,.0f}{' †' if cells[n]['disturbed'] else ''}" for n in names]
        out += [f"**{row['vs_gunicorn'][n]:.2f}**" for n in ratios]
        out += [f"{cells[n]['p50_ms']:.2f} / {cells[n]['p99_ms']:.2f}" for n in names]
        out += [" / ".join(f"{cells[n]['cpu_us_per_request']:.0f}" for n in names)]
        out += [" / ".join(str(cells[n]["errors"]) for n in names)]
        lines.append("| " + " | ".join(out) + " |")
    return "\n".join(lines)


# -- environment --------------------------------------------------------------------------------
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def git_revision() -> str:
    """The checkout's commit, with ``+dirty`` when the work tree has uncommitted changes."""
    try:
        argv = ["git", "-C", str(HERE.parent), "describe", "--always", "--dirty=+dirty"]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() or "unknown"


def environment(wrk: str, pin_note: str) -> dict[str, Any]:
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "versions": {d: version(d) for d in
                     ("greenserve", "gunicorn", "gevent", "greenlet", "h11", "httptools")},
        "greenserve_revision": git_revision(),
        "wrk": wrk_version(wrk),
        "pinning": pin_note,
    }


# -- main ---------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=int, default=8, help="seconds measured per cell [8]")
    p.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per cell [2]")
    p.add_argument("--repeats", type=int, default=2, help="repeats of the whole grid [2]")
    p.add_argument("--quick", action="store_true",
                   help="a smoke run: 2 s per cell, 1 s warm-up, one repeat")
    p.add_argument("--servers", default="greenserve,gunicorn",
                   help="comma-separated, from: greenserve, gunicorn, greenserve-h11 "
                   "(greenserve with --http-parser python) [greenserve,gunicorn]")
    p.add_argument("--pick", choices=("best", "median"), default="best",
                   help="how a cell's repeats are reduced to one number [best]")
    p.add_argument("--max-extra", type=float, default=60,
                   help="seconds the run may add to wait for a quiet machine and re-run "
                   "disturbed cells [60]")
    p.add_argument("--wrk-threads", type=int, default=1, help="wrk threads [1: wrk has 1 CPU]")
    p.add_argument("--no-pin", dest="pin", action="store_false", help="do not use taskset")
    p.add_argument("--output", type=Path, default=RESULTS / "latest.json")
    opts = p.parse_args(argv)
    if opts.quick:
        opts.duration, opts.warmup, opts.repeats = 2, 1, 1
    opts.names = [n.strip() for n in opts.servers.split(",") if n.strip()]
    unknown = set(opts.names) - set(KNOWN_SERVERS)
    if unknown or not opts.names or len(set(opts.names)) != len(opts.names):
        p.error(f"--servers: a list of distinct names from {', '.join(KNOWN_SERVERS)}")
    if opts.duration < 1 or opts.warmup < 0 or opts.repeats < 1:
        p.error("--duration and --repeats must be at least 1, --warmup at least 0")
    return opts


def prepare(opts: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """Check the servers are installed, find wrk, decide pinning; (wrk, environment)."""
    for name in {n.split("-")[0] for n in opts.names}:
        if version(name) == "not installed":
            sys.exit(f"{name} is not installed in {sys.prefix}: run `make bench`, which "
                     "installs the bench extra (`pip install -e '.[bench]'`)")
    wrk = ensure_wrk()
    pinnable, pin_note = can_pin()
    opts.pin = opts.pin and pinnable
    if not opts.pin and pinnable:
        pin_note = "pinning disabled (--no-pin)"
    env = environment(wrk, pin_note)
    estimate = len(CELLS) * len(opts.names) * opts.repeats * (opts.warmup + opts.duration)
    print(f"{env['date']}  {env['cpu']} x{env['cpus']}  Python {env['python']}  {env['wrk']}")
    print("  ".join(f"{k} {v}" for k, v in env["versions"].items())
          + f"  (greenserve checkout {env['greenserve_revision']})")
    print(f"{pin_note}; about {estimate // 60} min {estimate % 60} s of load\n", flush=True)
    return wrk, env


def report(opts: argparse.Namespace, command: str, env: dict[str, Any],
           servers: list[Server], runs: dict[str, Any]) -> None:
    """Print the table and write the JSON report."""
    rows = summarise(runs, opts.names, opts.pick)
    table = render_table(rows, opts.names)
    print(f"\n{command}\n{opts.duration} s per cell after {opts.warmup} s warm-up, "
          f"{opts.repeats} repeat(s), {opts.pick} repeat by req/s; errors summed over repeats\n")
    print(table)
    if "†" in table:
        print(f"\n† other processes used over {DISTURBED:.0%} of a CPU during that run, even "
              "after a re-run: the number is low")
    data = {"command": command, "environment": env,
            "settings": {k: v for k, v in vars(opts).items() if k != "output"}
            | {"servers_argv": {s.name: s.argv for s in servers}},
            "table_markdown": table, "cells": rows, "runs": runs}
    opts.output.parent.mkdir(parents=True, exist_ok=True)
    opts.output.write_text(json.dumps(data, indent=2, default=str) + "\n")
    print(f"\nwrote {opts.output}")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    opts = parse_args(args)
    wrk, env = prepare(opts)
    RESULTS.mkdir(exist_ok=True)
    old_int = signal.signal(signal.SIGINT, _interrupt)
    old_term = signal.signal(signal.SIGTERM, _interrupt)
    try:
        servers = [Server(n, server_argv(n), RESULTS / f"{n}.log") for n in opts.names]
        for server in servers:
            server.start(opts.pin)
            server.check()
            print(f"{server.name}: {shlex.join(server.argv)}  (port {server.port})")
        print(flush=True)
        runs = measure(servers, wrk, opts)
    except KeyboardInterrupt:
        print("\ninterrupted: stopping the servers, nothing written", file=sys.stderr)
        return 130
    finally:
        stop_all()
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)
    report(opts, shlex.join(["python", "loadtests/bench.py", *args]), env, servers, runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
