"""CPU cost of one WSGI request in the worker, and where it goes (not a test).

    .venv/bin/python tools/request_profile.py [--servers greenserve,gunicorn] [--path /10k]
        [--conns 50] [--duration 8] [--warmup 2] [--repeats 1] [--profile SECONDS]
        [--app bench_app:app]

Starts each server with one worker on ``loadtests/bench_app.py`` (or the WSGI app ``--app``
names, e.g. ``flask_bench_app:app`` with ``--path /hello``; pinned to CPU 0, wrk to
CPU 1, as ``loadtests/bench.py`` does), loads it with wrk and prints, for each run, the
requests/s, the worker process group's CPU µs per request (steadier than requests/s on a
shared machine) and the load average, so A/B runs made back to back can be compared.
``--profile SECONDS`` also records the greenserve worker with py-spy (``bench`` extra) for
that long during an extra run and prints the functions with the most self time, and the
share of samples under each greenserve function (inclusive).

Server names: ``greenserve``, ``greenserve-h11`` (``--http-parser python``),
``greenserve-asgi`` (``loadtests/asgi_bench_app.py``, the ASGI twin, lifespan off),
``uvicorn-httptools`` and ``uvicorn-h11`` (the ASGI twin; CPU is the whole process), ``gunicorn``,
``floor`` (``tools/floor_server.py``: no parsing, no checks, the app and gevent only; its CPU
per request is a lower bound for any gevent server on that app);
``greenserve@DIR`` takes the greenserve package from ``DIR`` (an A/B baseline, e.g.
``git archive HEAD greenserve | tar -x -C DIR``); ``greenserve+--opt=value`` adds options.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOADTESTS = ROOT / "loadtests"
COMMON = ["-w", "1", "--worker-connections", "1000", "--keep-alive", "75", "-b", "127.0.0.1:0"]
HZ = os.sysconf("SC_CLK_TCK")


def server_argv(name: str, wsgi_app: str) -> list[str]:
    if name.startswith("greenserve"):
        # greenserve[-h11|-asgi][@DIR][+--opt=value...]: the parser or the ASGI twin of the
        # app, the tree, extra options
        options = name.split("+")[1:]
        app = wsgi_app
        if name.startswith("greenserve-h11"):
            options = ["--http-parser", "python", *options]
        elif name.startswith("greenserve-asgi"):
            options, app = ["--asgi-lifespan", "off", *options], "asgi_bench_app:app"
        return [sys.executable, "-m", "greenserve", *COMMON, *options, app]
    if name == "floor":  # the floor of any gevent server for this app (tools/floor_server.py)
        return [sys.executable, str(ROOT / "tools" / "floor_server.py"), wsgi_app]
    if name.startswith("uvicorn"):  # uvicorn-httptools, uvicorn-h11: the ASGI twin
        return [sys.executable, "-m", "uvicorn", "--http", name.partition("-")[2] or "httptools",
                "--loop", "asyncio", "--lifespan", "off", "--no-access-log",
                "--log-level", "info", "--port", "0", "asgi_bench_app:app"]
    return [sys.executable, "-m", "gunicorn", "-k", "gevent", *COMMON, "--no-control-socket",
            wsgi_app]


def start(name: str, log: Path, wsgi_app: str) -> tuple[subprocess.Popen[bytes], int]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("GUNICORN_CMD_ARGS", "GREENSERVE_CMD_ARGS", "WEB_CONCURRENCY")}
    # "greenserve@DIR" runs the greenserve package found in DIR (an A/B baseline: e.g.
    # ``git archive HEAD greenserve | tar -x -C DIR``).
    _, _, tree = name.split("+")[0].partition("@")
    tree = str(Path(tree).resolve()) if tree else ""  # (the server runs in loadtests/)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [tree, str(LOADTESTS)]))
    with log.open("wb") as out:
        proc = subprocess.Popen(["taskset", "-c", "0", *server_argv(name, wsgi_app)], cwd=LOADTESTS,
                                env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = re.search(rb"(?:Listening at: |running on )http://127\.0\.0\.1:(\d+)",
                          log.read_bytes())
        if found:
            return proc, int(found.group(1))
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    stop(proc)
    raise SystemExit(f"{name} did not start:\n{log.read_text(errors='replace')}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _proc_stats() -> Iterator[tuple[int, list[str]]]:
    """(pid, the /proc/PID/stat fields after the command name) of every live process."""
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(f"/proc/{entry.name}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # gone meanwhile
            yield int(entry.name), stat


def group_ticks(pgid: int) -> int:
    """CPU ticks (utime + stime) of the live processes of process group ``pgid``."""
    return sum(int(stat[11]) + int(stat[12]) for _, stat in _proc_stats()
               if int(stat[2]) == pgid)


def worker_pid(master: int) -> int:
    for pid, stat in _proc_stats():
        if int(stat[1]) == master:
            return pid
    raise RuntimeError("no worker process found")


def wrk(port: int, path: str, conns: int, seconds: float) -> tuple[float, int]:
    out = subprocess.run(
        ["taskset", "-c", "1", "wrk", "-t1", f"-c{conns}", f"-d{int(seconds)}s",
         f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    reqs = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    if "Non-2xx" in out or "Socket errors" in out:
        print("  wrk reported errors:\n" + out)
    return rps, reqs


def measure(name: str, pgid: int, port: int, opts: argparse.Namespace) -> tuple[float, float]:
    if opts.warmup:
        wrk(port, opts.path, opts.conns, opts.warmup)
    before = group_ticks(pgid)
    rps, reqs = wrk(port, opts.path, opts.conns, opts.duration)
    cpu_us = (group_ticks(pgid) - before) / HZ / reqs * 1e6
    load = os.getloadavg()
    print(f"{name:<15} {opts.path} c={opts.conns}: {rps:8.0f} req/s  {cpu_us:5.1f} µs CPU/req"
          f"  load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)
    return rps, cpu_us


def profile(pid: int, port: int, opts: argparse.Namespace) -> None:
    raw = Path(tempfile.mkdtemp()) / "profile.txt"
    load = subprocess.Popen(
        ["taskset", "-c", "1", "wrk", "-t1", f"-c{opts.conns}", f"-d{opts.profile + 4}s",
         f"http://127.0.0.1:{port}{opts.path}"], stdout=subprocess.DEVNULL)
    time.sleep(2)
    subprocess.run(["taskset", "-c", "1", str(Path(sys.executable).parent / "py-spy"),
                    "record", "-r", "200", "-d", str(opts.profile), "-f", "raw", "-o",
                    str(raw), "--pid", str(pid)], check=True, capture_output=True)
    load.wait()
    print(f"\nraw py-spy samples: {raw}")
    report(raw)


def report(raw: Path) -> None:
    """Self and inclusive shares of the main thread's samples, by function."""
    own: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if "_BlockMonitor._run" in stack or "gevent/threadpool.py" in stack:
            continue  # the blocked-hub monitor thread and threadpool: idle, not the worker
        n = int(count)
        total += n
        names = [re.sub(r":\d+\)$", ")", f) for f in frames]
        own[names[-1]] += n
        for fn in set(names):
            incl[fn] += n
    print(f"\n{total} samples of the main thread; top self time:")
    for fn, n in own.most_common(25):
        print(f"  {n / total:6.1%}  {fn}")
    print("\ninclusive (greenserve and gevent socket functions):")
    for fn, n in incl.most_common(200):
        if "greenserve/" in fn or "gevent/_socket" in fn or "bench_app" in fn:
            print(f"  {n / total:6.1%}  {fn}")


def paired_ratios(results: dict[str, list[tuple[float, float]]], names: list[str]) -> None:
    """Each server's req/s over the first server's, repeat by repeat (runs made next to each
    other see the same host), and their median: issue 5's ASGI/WSGI ratio is read here."""
    if len(names) < 2 or len(results[names[0]]) < 1:
        return
    first = [rps for rps, _ in results[names[0]]]
    for name in names[1:]:
        ratios = [rps / base for (rps, _), base in zip(results[name], first, strict=True)]
        print(f"{name} / {names[0]} req/s, each repeat: "
              f"{', '.join(f'{r:.2f}' for r in ratios)}; median {statistics.median(ratios):.2f}")


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM/SIGHUP (a timeout, a closed terminal) act like Ctrl-C: ``finally`` stops the
    servers, which run in their own sessions and would otherwise outlive this script."""
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> None:
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--servers", default="greenserve,gunicorn",
                   help="from greenserve, greenserve-h11, greenserve-asgi, uvicorn-httptools, "
                   "uvicorn-h11, gunicorn; NAME@DIR takes greenserve "
                   "from DIR; greenserve+--opt=value adds options")
    p.add_argument("--path", default="/10k")
    p.add_argument("--app", default="bench_app:app",
                   help="the WSGI app in loadtests/ (greenserve, gunicorn)")
    p.add_argument("--conns", type=int, default=50)
    p.add_argument("--duration", type=int, default=8)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--profile", type=int, default=0, help="py-spy seconds (greenserve)")
    p.add_argument("--profile-server", default="",
                   help="which greenserve server to profile (default: the first named)")
    opts = p.parse_args()
    names = opts.servers.split(",")
    servers = {}
    try:
        for name in names:
            log = Path(tempfile.mkdtemp()) / "server.log"
            servers[name] = start(name, log, opts.app)
        results: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
        for repeat in range(opts.repeats):
            for name in names if repeat % 2 == 0 else names[::-1]:
                proc, port = servers[name]
                results[name].append(measure(name, proc.pid, port, opts))
        paired_ratios(results, names)
        if "gunicorn" in results and len(names) > 1:
            base = max(r for r, _ in results["gunicorn"])
            for name in names:
                if name != "gunicorn":
                    best = max(r for r, _ in results[name])
                    cpu = min(c for _, c in results[name])
                    print(f"{name}/gunicorn best req/s ratio {best / base:.2f}; best CPU "
                          f"{cpu:.1f} vs {min(c for _, c in results['gunicorn']):.1f} µs/req")
        if opts.profile:
            name = opts.profile_server or next(n for n in names if n.startswith("greenserve"))
            proc, port = servers[name]
            profile(worker_pid(proc.pid), port, opts)
    finally:
        for proc, _ in servers.values():
            stop(proc)


if __name__ == "__main__":
    main()
