"""Debugging settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .spec import setting, to_bool, to_str, to_str_tuple


@dataclass(frozen=True, kw_only=True)
class DebuggingSettings:
    """Debugging."""

    SECTION: ClassVar[str] = "Debugging"

    check_config: bool = setting(
        "--check-config", kind="switch", default=False, convert=to_bool,
        help="Check the configuration and that the app loads, then exit.",
        desc="""\
Exits 0 when the settings are valid and the application imports and resolves to a callable;
otherwise exits non-zero with a one-line error (4 when the app fails to load).""",
    )
    reload: bool = setting(
        "--reload", kind="switch", default=False, convert=to_bool,
        help="Restart workers when code changes (development).",
        desc="""\
Each worker checks, once a second, the files of every module it has imported and the
`--reload-extra-file` files; when one changes it logs `Worker reloading: FILE modified` and
exits, and the master starts a new worker, which imports the code again. If the app fails
to import with a `SyntaxError`, the worker serves a 500 response with the traceback and waits
for that file to change instead of failing to boot. With `--preload` the code lives in the
master and a new worker gets the same copy: restart the server instead.""",
    )
    reload_engine: str = setting(
        "--reload-engine", metavar="STRING", default="auto", choices=("auto", "poll", "inotify"),
        convert=to_str,
        help="How --reload notices changes.",
        desc="""\
Accepted for gunicorn compatibility: greenserve checks modification times (`poll`) whatever
the engine, so a change is seen within a second either way and no inotify package is
needed.""",
    )
    reload_extra_files: tuple[str, ...] = setting(
        "--reload-extra-file", kind="append", metavar="FILES", default=(),
        convert=to_str_tuple, default_doc="[]",
        help="Also watch these files (glob patterns, ** included) with --reload.",
        desc="""\
Templates or config files the code does not import. Patterns are expanded at every check:
a file created later is watched from then on (its creation alone restarts nothing).""",
    )
    spew: bool = setting(
        "--spew", kind="switch", default=False, convert=to_bool,
        help="Print every line each worker executes (debugging; very slow).",
        desc="Installs a trace function in each worker, as gunicorn's `--spew` does.",
    )
    print_config: bool = setting(
        "--print-config", kind="switch", default=False, convert=to_bool,
        help="Print the resolved configuration, then exit.",
        desc="Prints every setting after merging all sources, one per line, and exits 0.",
    )
