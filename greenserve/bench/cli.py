"""``greenserve bench``: start the server(s), load each with Locust, write the report.

Exit codes: 0 the runs finished and no request failed; 1 a run could not be done (a server
did not start, the URL does not answer, Locust failed) or some requests failed (the report
is written all the same); 2 a bad command line or Locust is not installed.
"""

from __future__ import annotations

import importlib.util
import signal
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from greenserve.bench import options, plots, report, runner, servers
from greenserve.bench.options import BenchOptions, UsageError
from greenserve.bench.results import RunResult
from greenserve.bench.servers import BenchError

EXIT_FAILED = 1
EXIT_USAGE = 2
INSTALL_HINT = "greenserve bench needs Locust: pip install 'greenserve[bench]'"


def main(argv: list[str]) -> int:
    """Run ``greenserve bench`` with ``argv`` (the words after ``bench``); the exit code."""
    # SIGTERM stops the bench like Ctrl-C does: the servers it started are stopped too.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        opts = options.parse(argv)
        if importlib.util.find_spec("locust") is None:
            raise UsageError(INSTALL_HINT)
        return _bench(opts, argv)
    except UsageError as exc:
        _error(f"{exc} (see greenserve bench --help)")
        return EXIT_USAGE
    except BenchError as exc:
        _error(str(exc))
        return EXIT_FAILED
    except KeyboardInterrupt:
        _error("interrupted")
        return 130


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _error(message: str) -> None:
    print(f"greenserve bench: error: {message}", file=sys.stderr, flush=True)


def _say(message: str) -> None:
    print(f"greenserve bench: {message}", file=sys.stderr, flush=True)


def _bench(opts: BenchOptions, argv: list[str]) -> int:
    with _workdir(opts.report) as out_dir, tempfile.TemporaryDirectory() as shim_dir:
        shims = Path(shim_dir)
        locustfiles = [opts.locustfile or runner.builtin_locustfile(shims),
                       runner.collector_file(shims)]
        runs = _run_all(opts, out_dir, locustfiles)
        print(report.markdown_table(report.summary_table(runs)))
        if len(runs) > 1:
            print("\n" + report.markdown_table(report.comparison_table(runs)))
        if any(run.failures for run in runs):
            print("\n" + report.markdown_table(report.failure_table(runs)))
        if opts.report is not None:
            _write_report(opts, argv, runs, out_dir)
    failed = sum(run.total.failures for run in runs)
    if failed:
        _error(f"{failed:,} requests failed")
        return EXIT_FAILED
    return 0


@contextmanager
def _workdir(report_dir: Path | None) -> Iterator[Path]:
    """The report directory (created), or a temporary one for Locust's files."""
    if report_dir is not None:
        try:
            report_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"--report: cannot create {report_dir}: {exc}") from None
        yield report_dir
        return
    with tempfile.TemporaryDirectory(prefix="greenserve-bench-") as tmp:
        yield Path(tmp)


def _run_all(opts: BenchOptions, out_dir: Path, locustfiles: list[Path]) -> list[RunResult]:
    """One run per target: the URL, or greenserve and then each ``--compare`` server."""
    first_path = opts.paths[0][0] if opts.paths else "/"
    if opts.url is not None:
        servers.wait_answering(opts.url, first_path, timeout=0)  # it should be up already
        return [_load(opts, _url_label(opts.url), opts.url, out_dir, locustfiles)]
    assert opts.app is not None  # options.parse guarantees one of url/app
    greenserve = servers.greenserve_command(opts.app, opts.server_args)
    targets: list[tuple[str, list[str], int | None]] = [("greenserve", greenserve, None)]
    if opts.compare is not None:
        command, port = servers.peer_command(opts.compare, opts.app, opts.server_args)
        targets.append((servers.label_for(command, {"greenserve"}), command, port))
    runs = []
    for label, command, port in targets:
        server = servers.start(label, command, port, out_dir / f"{label}_server.log")
        try:
            url = servers.wait_listening(server, opts.start_timeout)
            if _tls(opts.server_args):  # the log line says http:// for a TLS socket too
                url = url.replace("http://", "https://", 1)
            servers.wait_answering(url, first_path, opts.start_timeout, server)
            runs.append(_load(opts, label, url, out_dir, locustfiles))
        finally:
            servers.stop(server)
        runs[-1].files.append(server.log_path)
    return runs


def _tls(server_args: list[str]) -> bool:
    """Whether ``--server-args`` turn TLS on (gunicorn's ``--certfile``)."""
    return any(arg == "--certfile" or arg.startswith("--certfile=") for arg in server_args)


def _load(opts: BenchOptions, label: str, url: str, out_dir: Path,
          locustfiles: list[Path]) -> RunResult:
    _say(f"{label} at {url}: {opts.users} users for {opts.run_time}")
    run = runner.run_locust(opts, label, url, out_dir, locustfiles)
    _say(f"{label}: {run.total.requests:,} requests, {run.total.failures:,} failed, "
         f"{run.total.rps:,.1f} req/s")
    return run


def _url_label(url: str) -> str:
    """``http://127.0.0.1:8000`` → ``127.0.0.1_8000``: a name usable in file names."""
    host = url.split("//", 1)[-1].split("/", 1)[0]
    return "".join(c if c.isalnum() or c in ".-" else "_" for c in host) or "target"


def _write_report(opts: BenchOptions, argv: list[str], runs: list[RunResult],
                  out_dir: Path) -> None:
    drawn = plots.draw(runs, out_dir) if plots.available() else None
    blocks = report.build(opts, argv, runs, drawn, out_dir)
    md, _page = report.write(out_dir, blocks)
    _say(f"report written to {md} and report.html" + ("" if drawn else f" ({report.NO_PLOTS})"))
