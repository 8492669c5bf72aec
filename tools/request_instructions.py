"""Instructions per request through greenserve, counted by valgrind (not a test).

    .venv/bin/python tools/request_instructions.py [--app bench_app:app] [--tree DIR]
        [--small 2000] [--large 6000] [--repeats 1]

Runs ``tools/request_micro.py`` (the socket stub: no system calls, no client) under
``valgrind --tool=callgrind`` twice, with ``--small`` and ``--large`` requests, and prints
the difference of the two instruction totals divided by the difference of the request
counts: the user-space instructions of one keep-alive request, without the start-up.
``--tree DIR`` puts a greenserve tree first on ``PYTHONPATH`` (``build/compiled`` after
``make compiled``). ``PYTHONHASHSEED`` is fixed, so one build gives the same count to a few
instructions run after run, whatever else the machine is doing; two builds of the same code
can still differ by a few hundred (addresses change hashing and allocation).

This is the figure for an A/B on a shared machine, where requests/s move by 15 % between
runs. It is not time: on some hosts a path that runs 10 % more instructions takes 30 % more
time (cache misses; docs/asgi-benchmarks.md). Needs valgrind; each run takes about a minute.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def instructions(app: str, requests: int, tree: str | None) -> int:
    """The instruction total of one request_micro.py run of ``requests`` requests."""
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    if tree:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [tree, env.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/out",
             sys.executable, str(ROOT / "tools" / "request_micro.py"), "--app", app,
             "--requests", str(requests), "--rounds", "1"],
            env=env, capture_output=True, text=True, check=False)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"valgrind run failed:\n{done.stdout}\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--app", default="bench_app:app",
                   help="a WSGI or ASGI app in loadtests/ (asgi_bench_app:app is the twin)")
    p.add_argument("--tree", help="a greenserve tree to import first (e.g. build/compiled)")
    p.add_argument("--small", type=int, default=2000)
    p.add_argument("--large", type=int, default=6000)
    p.add_argument("--repeats", type=int, default=1)
    opts = p.parse_args()
    if opts.large <= opts.small:
        raise SystemExit("--large must be more than --small")
    tree = str(Path(opts.tree).resolve()) if opts.tree else None
    for _ in range(opts.repeats):
        small = instructions(opts.app, opts.small, tree)
        large = instructions(opts.app, opts.large, tree)
        per = (large - small) / (opts.large - opts.small)
        print(f"{opts.app} ({opts.tree or 'checkout'}): {per:,.0f} instructions per request")


if __name__ == "__main__":
    main()
