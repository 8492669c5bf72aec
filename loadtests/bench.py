#!/usr/bin/env python3
"""greenserve and its peers on the same apps, one worker each, measured with wrk.

``make bench`` (installs the ``bench`` extra), or ``.venv/bin/python loadtests/bench.py
[--quick] [--suites wsgi,asgi] [--only greenserve,gunicorn,10k-c64]``. Two tables: the WSGI
one of issue 7 (gunicorn -k gevent, gevent pywsgi, waitress, uvicorn on the ASGI twin,
granian, greenserve with each parser) and the ASGI one of issue 5 (greenserve's ASGI bridge,
uvicorn h11 and httptools, gunicorn -k asgi). For each row, its servers are started on
127.0.0.1 (server pinned to CPU 0, wrk to CPU 1); each (row, server) cell gets a warm-up,
then a measured run; the repeats rotate the servers' order, and a cell reports the median
of its repeats. A server that is not installed gets "not installed" in its cells. Runs
disturbed by other processes are re-run once. Prints the tables with the ratios, writes
``loadtests/results/latest.json``, and stops every process it started, also on Ctrl-C or
SIGTERM. See loadtests/README.md.
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
from pathlib import Path
from typing import Any

from benchlib.load import DISTURBED, Budget
from benchlib.procs import can_pin, interrupt, stop_all
from benchlib.report import environment, load_average, suite_report
from benchlib.rows import SUITES
from benchlib.runner import Settings, run_suite, selected
from benchlib.servers import SERVERS
from benchlib.wrk import ensure_wrk

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=int, default=10, help="seconds measured per run [10]")
    p.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per run [2]")
    p.add_argument("--repeats", type=int, default=3, help="runs per cell [3]")
    p.add_argument("--quick", action="store_true",
                   help="a smoke run: 3 s per cell, 1 s warm-up, one repeat")
    p.add_argument("--suites", default="wsgi,asgi", help="tables to run: wsgi, asgi [both]")
    p.add_argument("--only", default="",
                   help="comma-separated server names and/or row keys to keep (see --list)")
    p.add_argument("--list", action="store_true", help="print the servers and rows, and exit")
    p.add_argument("--pick", choices=("median", "best"), default="median",
                   help="how a cell's repeats are reduced to one number [median]")
    p.add_argument("--max-extra", type=float, default=120,
                   help="seconds the run may add to wait for a quiet machine and re-run "
                   "disturbed cells [120]")
    p.add_argument("--wrk-threads", type=int, default=1, help="wrk threads [1: wrk has 1 CPU]")
    p.add_argument("--no-pin", dest="pin", action="store_false", help="do not use taskset")
    p.add_argument("--output", type=Path, default=RESULTS / "latest.json")
    opts = p.parse_args(argv)
    if opts.quick:
        opts.duration, opts.warmup, opts.repeats = 3, 1, 1
    opts.suite_names = [s.strip() for s in opts.suites.split(",") if s.strip()]
    if not opts.suite_names or set(opts.suite_names) - set(SUITES):
        p.error(f"--suites: names from {', '.join(SUITES)}")
    opts.only_set = {n.strip() for n in opts.only.split(",") if n.strip()}
    known = set(SERVERS) | {r.key for s in SUITES.values() for r in s.rows}
    if opts.only_set - known:
        p.error(f"--only: unknown {', '.join(sorted(opts.only_set - known))} (see --list)")
    if opts.duration < 1 or opts.warmup < 0 or opts.repeats < 1:
        p.error("--duration and --repeats must be at least 1, --warmup at least 0")
    return opts


def list_everything() -> None:
    for suite in SUITES.values():
        print(f"{suite.name}: {suite.title}")
        for row in suite.rows:
            print(f"  row {row.key:<16} {row.label} ({row.path}, apps {row.apps})")
        for name in suite.servers:
            print(f"  server {name:<18} {shlex.join(SERVERS[name].argv)}")


def settings(opts: argparse.Namespace, pin: bool) -> Settings:
    return Settings(duration=opts.duration, warmup=opts.warmup, repeats=opts.repeats,
                    pick=opts.pick, max_extra=opts.max_extra, wrk_threads=opts.wrk_threads,
                    pin=pin, only=opts.only_set, logs=RESULTS)


def prepare(opts: argparse.Namespace) -> tuple[str, Settings, dict[str, Any]]:
    """Find wrk, decide pinning, print the environment; (wrk, settings, environment)."""
    wrk = ensure_wrk()
    pinnable, pin_note = can_pin()
    if not opts.pin and pinnable:
        pin_note = "pinning disabled (--no-pin)"
    env = environment(wrk, pin_note, HERE.parent)
    cells = sum(len(rows) * len(names) for rows, names in
                (selected(SUITES[s], opts.only_set) for s in opts.suite_names))
    estimate = cells * opts.repeats * (opts.warmup + opts.duration)
    print(f"{env['date']}  {env['cpu']} x{env['cpus']}  Python {env['python']}  {env['wrk']}")
    print("  ".join(f"{k} {v}" for k, v in env["versions"].items()))
    print(f"greenserve checkout {env['greenserve_revision']}; load average "
          f"{env['load_average_before']}")
    print(f"{pin_note}; {cells} cells, about {estimate // 60} min {estimate % 60} s of load",
          flush=True)
    return wrk, settings(opts, opts.pin and pinnable), env


def report(opts: argparse.Namespace, command: str, env: dict[str, Any],
           suites: dict[str, dict[str, Any]]) -> None:
    """Print the tables and write the JSON report."""
    env["load_average_after"] = load_average()
    print(f"\n{command}\n{env['date']}, greenserve {env['greenserve_revision']}; "
          f"{opts.duration} s per run after {opts.warmup} s warm-up, {opts.pick} of "
          f"{opts.repeats} run(s); load average before {env['load_average_before']}, "
          f"after {env['load_average_after']}")
    for suite in suites.values():
        print(f"\n### {suite['title']}\n\n{suite['markdown']}")
    if any("†" in s["markdown"] for s in suites.values()):
        print(f"\n† every run of that cell had other processes using over {DISTURBED:.0%} "
              "of a CPU, even after a re-run: the number is low")
    data = {"command": command, "environment": env,
            "settings": {k: v for k, v in vars(opts).items() if k != "output"},
            "suites": suites}
    opts.output.parent.mkdir(parents=True, exist_ok=True)
    opts.output.write_text(json.dumps(data, indent=2, default=str) + "\n")
    print(f"\nwrote {opts.output}")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    opts = parse_args(args)
    if opts.list:
        list_everything()
        return 0
    wrk, conf, env = prepare(opts)
    RESULTS.mkdir(exist_ok=True)
    old_term = signal.signal(signal.SIGTERM, interrupt)
    budget = Budget(opts.max_extra)
    suites: dict[str, dict[str, Any]] = {}
    try:
        for name in opts.suite_names:
            results = run_suite(SUITES[name], wrk, conf, budget)
            suites[name] = suite_report(SUITES[name], results, opts.pick, opts.only_set)
    except KeyboardInterrupt:
        print("\ninterrupted: stopping the servers, nothing written", file=sys.stderr)
        return 130
    finally:
        stop_all()
        signal.signal(signal.SIGTERM, old_term)
    report(opts, shlex.join(["python", "loadtests/bench.py", *args]), env, suites)
    return 0


if __name__ == "__main__":
    sys.exit(main())
