"""Run ``locust --headless`` against one URL, in a child process, and read its CSV files.

A child process rather than Locust's Python API: Locust monkey-patches with gevent when it
is imported and expects to own its process (signals, logging, ``--processes`` forks), and
the bench process also starts and stops servers. The child is this interpreter
(``python -m locust``), so it is the Locust of the environment greenserve runs in.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from greenserve.bench.options import BenchOptions
from greenserve.bench.results import RunResult, read_run
from greenserve.bench.servers import BenchError, last_line

#: the shim given to Locust for the built-in user: it exposes exactly one User class
_USER_SHIM = ('"""Written by greenserve bench."""\n'
              'from greenserve.bench.locustfile import PathsUser  # noqa: F401\n')
#: the shim that loads the collector (imported by name: Locust puts a locustfile's folder
#: on sys.path, and greenserve/bench/ holds modules with common names)
_COLLECTOR_SHIM = ('"""Written by greenserve bench."""\n'
                   'import greenserve.bench.collector  # noqa: F401\n')
#: seconds Locust gets on top of --run-time to start, ramp down and write its files
_GRACE = 60


def builtin_locustfile(shim_dir: Path) -> Path:
    """A locustfile that runs :class:`greenserve.bench.locustfile.PathsUser`."""
    path = shim_dir / "greenserve_bench_user.py"
    path.write_text(_USER_SHIM, encoding="utf-8")
    return path


def collector_file(shim_dir: Path) -> Path:
    """The file that loads :mod:`greenserve.bench.collector` into Locust."""
    path = shim_dir / "greenserve_bench_collector.py"
    path.write_text(_COLLECTOR_SHIM, encoding="utf-8")
    return path


def locust_command(opts: BenchOptions, url: str, locustfiles: list[Path],
                   prefix: Path) -> list[str]:
    """The ``python -m locust`` command line of one run."""
    command = [
        sys.executable, "-m", "locust", "-f", ",".join(map(str, locustfiles)), "--headless",
        "-H", url, "-u", str(opts.users), "-r", f"{opts.spawn_rate:g}", "-t", opts.run_time,
        "--csv", str(prefix), "--csv-full-history", "--bench-output", str(prefix),
        "--html", str(prefix.with_name(prefix.name + "_locust.html")),
        "--only-summary", "--stop-timeout", "5",
        # failed requests are in the report; a non-zero exit means Locust itself failed
        "--exit-code-on-error", "0",
    ]
    if opts.processes > 1:
        command += ["--processes", str(opts.processes)]
    if opts.paths or opts.locustfile is None:
        command += ["--paths", ",".join(f"{p}:{w}" for p, w in opts.paths or [("/", 1)])]
    return command


def run_locust(opts: BenchOptions, label: str, url: str, workdir: Path,
               locustfiles: list[Path]) -> RunResult:
    """Load ``url`` for ``--run-time`` and return what Locust measured.

    Locust's own output goes to ``LABEL_locust.log`` in ``workdir``; its last line is the
    error message when Locust fails.
    """
    prefix = workdir / label
    log_path = workdir / f"{label}_locust.log"
    command = locust_command(opts, url, locustfiles, prefix)
    with log_path.open("wb") as log:
        try:
            proc = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=log,
                                  stderr=subprocess.STDOUT,
                                  timeout=opts.run_seconds + _GRACE, check=False)
        except subprocess.TimeoutExpired:
            raise BenchError(f"locust did not finish within {opts.run_seconds + _GRACE}s "
                             f"(log: {log_path})") from None
    if proc.returncode != 0:
        raise BenchError(f"locust failed (exit {proc.returncode}): {last_line(log_path)}")
    try:
        result = read_run(label, url, prefix)
    except (OSError, ValueError, KeyError) as exc:
        raise BenchError(f"cannot read Locust's results: {exc}") from None
    result.files += sorted(workdir.glob(f"{label}_locust.*"))
    return result
