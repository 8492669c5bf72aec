"""Finding, running and reading wrk."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field

from benchlib.procs import CLIENT_CPU, forget, pin_prefix, spawn

WRK_HINT = ("wrk, the load generator, is not installed and could not be installed here.\n"
            "Install it (Debian/Ubuntu: `sudo apt-get install wrk`; macOS: `brew install wrk`)"
            " and run the benchmark again. Nothing was measured.")
#: wrk's per-request timeout; a slower response counts as a "timeout" socket error
TIMEOUT = "2s"


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
SOCKET_ERRORS = ("connect", "read", "write", "timeout")


@dataclass
class WrkResult:
    """One wrk run: throughput, latency percentiles, and what went wrong."""

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
        result.socket_errors = dict(zip(SOCKET_ERRORS, map(int, sock.groups()), strict=True))
    if non2xx := _NON2XX.search(out):
        result.non2xx = int(non2xx.group(1))
    return result


def run_wrk(wrk: str, url: str, conns: int, seconds: int, threads: int, pin: bool) -> str:
    """Run wrk once on the client CPU and return its report."""
    argv = [wrk, f"-t{threads}", f"-c{conns}", f"-d{seconds}s", "--latency",
            "--timeout", TIMEOUT, url]
    proc = spawn(pin_prefix(CLIENT_CPU, pin) + argv, stdin=subprocess.DEVNULL,
                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out, _ = proc.communicate(timeout=seconds + 60)
    forget(proc)
    text = out.decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{text}")
    return text
