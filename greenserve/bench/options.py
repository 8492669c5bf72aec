"""The ``greenserve bench`` command line: parsed and checked before anything starts.

Option names follow Locust's own (``-u/--users``, ``-r/--spawn-rate``, ``-t/--run-time``,
``-f/--locustfile``, ``-H/--host`` as an alias of ``--url``) so that a Locust user reads
them without a manual. Every mistake becomes a :class:`UsageError` with a one-line message.
"""

from __future__ import annotations

import argparse
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

#: Locust's time strings: ``20``, ``20s``, ``1m30s``, ``1h``
_RUN_TIME = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?$")
_PATH_WEIGHT = re.compile(r"^(.*):(\d+)$")


class UsageError(Exception):
    """A bad command line; the message is one line, shown after ``greenserve bench: error:``."""


@dataclass(frozen=True)
class BenchOptions:
    """What to load, how hard, for how long, and where the report goes."""

    url: str | None
    app: str | None
    server_args: list[str]
    compare: list[str] | None
    users: int
    spawn_rate: float
    run_time: str
    run_seconds: int
    #: empty: not given (the built-in user GETs ``/``; a ``-f`` locustfile is not told)
    paths: list[tuple[str, int]]
    locustfile: Path | None
    report: Path | None
    processes: int
    start_timeout: float


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``greenserve bench`` (the docs tests read its flags)."""
    parser = _Parser(
        prog="greenserve bench",
        description="Load-test greenserve or any HTTP server with Locust and write a report.",
    )
    target = parser.add_argument_group("target (one of --url or --app)")
    target.add_argument("--url", "-H", "--host", dest="url", metavar="URL",
                        help="an HTTP server that is already running, e.g. http://127.0.0.1:8000")
    target.add_argument("--app", metavar="MODULE:APP",
                        help="start greenserve with this app on 127.0.0.1 (port chosen by the "
                             "system) and stop it afterwards")
    target.add_argument("--server-args", default="", metavar="ARGS",
                        help='extra server flags, one shell-quoted string, e.g. "-w 1 '
                             '--worker-connections 1000"; given to --compare too')
    target.add_argument("--compare", metavar="COMMAND",
                        help='with --app: also run this server with the same app and load, '
                             'e.g. "gunicorn -k gevent"; see the docs for {app}, {host}, {port}')
    target.add_argument("--start-timeout", type=float, default=30.0, metavar="S",
                        help="seconds a started server has to answer (default: 30)")
    load = parser.add_argument_group("load")
    load.add_argument("-u", "--users", type=int, default=10, metavar="N",
                      help="concurrent users, each with one connection (default: 10)")
    load.add_argument("-r", "--spawn-rate", type=float, default=None, metavar="N",
                      help="users started per second (default: all within one second)")
    load.add_argument("-t", "--run-time", default="20s", metavar="TIME",
                      help="duration of each run: 20s, 1m30s, ... (default: 20s)")
    load.add_argument("--paths", default=None, metavar="PATHS",
                      help="comma-separated paths to GET, each with an optional :WEIGHT, "
                           "e.g. /,/hello:3 (default: /); passed on to a -f locustfile "
                           "that imports greenserve.bench.locustfile")
    load.add_argument("-f", "--locustfile", type=Path, default=None, metavar="FILE",
                      help="your own locustfile instead of the built-in user")
    load.add_argument("--processes", type=int, default=1, metavar="N",
                      help="Locust worker processes (Locust's --processes; default: 1)")
    parser.add_argument("--report", type=Path, default=None, metavar="DIR",
                        help="write report.md, report.html, plots and Locust's CSVs here")
    return parser


def parse(argv: list[str]) -> BenchOptions:
    """Parse and check ``argv`` (the words after ``bench``); raises :class:`UsageError`."""
    ns = build_parser().parse_args(argv)
    _check_target(ns)
    if ns.users < 1:
        raise UsageError("--users must be at least 1")
    if ns.processes < 1:
        raise UsageError("--processes must be at least 1")
    spawn_rate = float(ns.users) if ns.spawn_rate is None else ns.spawn_rate
    if spawn_rate <= 0:
        raise UsageError("--spawn-rate must be above 0")
    if ns.locustfile is not None and not ns.locustfile.is_file():
        raise UsageError(f"locustfile not found: {ns.locustfile}")
    return BenchOptions(
        url=ns.url.rstrip("/") if ns.url else None,
        app=ns.app,
        server_args=_split(ns.server_args, "--server-args"),
        compare=_split(ns.compare, "--compare") if ns.compare is not None else None,
        users=ns.users,
        spawn_rate=spawn_rate,
        run_time=ns.run_time,
        run_seconds=run_seconds(ns.run_time),
        paths=parse_paths(ns.paths) if ns.paths is not None else [],
        locustfile=ns.locustfile.resolve() if ns.locustfile else None,
        report=ns.report,
        processes=ns.processes,
        start_timeout=ns.start_timeout,
    )


def _check_target(ns: argparse.Namespace) -> None:
    if (ns.url is None) == (ns.app is None):
        raise UsageError("give exactly one of --url URL or --app MODULE:APP")
    if ns.url is not None:
        parts = urlsplit(ns.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(f"--url must be an http:// or https:// URL, not {ns.url!r}")
        if ns.compare is not None or ns.server_args:
            raise UsageError("--compare and --server-args need --app (a server to start)")
    if any(arg in ("-b", "--bind") or arg.startswith(("--bind=", "-b=")) for arg in
           _split(ns.server_args, "--server-args")):
        raise UsageError("--server-args: leave out -b/--bind, the bench binds 127.0.0.1 itself")
    if ns.compare is not None and not ns.compare.strip():
        raise UsageError("--compare needs a command, e.g. --compare 'gunicorn -k gevent'")


def _split(text: str, flag: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError as exc:
        raise UsageError(f"{flag}: {exc}") from None


def run_seconds(text: str) -> int:
    """Seconds in a Locust time string (``20``, ``20s``, ``1m30s``, ``1h``)."""
    match = _RUN_TIME.match(text.strip())
    if not text.strip() or match is None:
        raise UsageError(f"--run-time must look like 20s, 2m or 1m30s, not {text!r}")
    hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if total < 1:
        raise UsageError("--run-time must be at least 1s")
    return total


def parse_paths(text: str) -> list[tuple[str, int]]:
    """``/,/hello:3`` → ``[("/", 1), ("/hello", 3)]``; each path must start with ``/``."""
    paths = []
    for item in (part.strip() for part in text.split(",")):
        match = _PATH_WEIGHT.match(item)
        path, weight = (match.group(1), int(match.group(2))) if match else (item, 1)
        if not path.startswith("/"):
            raise UsageError(f"--paths: each path must start with '/', not {item!r}")
        if weight < 1:
            raise UsageError(f"--paths: a weight must be at least 1, not {item!r}")
        paths.append((path, weight))
    return paths
