"""A Locust plugin that ``greenserve bench`` loads next to every locustfile.

Locust's CSV files are rewritten once a second and not at the end, so they can miss the
last second of a run. When Locust quits, this writes the final statistics and failures to
``--bench-output PREFIX`` + ``_final.json``, the file the report is made from. Run by
Locust only (it imports ``locust``); it defines no ``User``, so it changes no load.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from locust import events
from locust.env import Environment
from locust.runners import WorkerRunner

_environments: list[Environment] = []


def _add_option(parser: Any, **_kwargs: Any) -> None:
    parser.add_argument("--bench-output", default="", help="greenserve bench: output prefix")


def _remember(environment: Environment, **_kwargs: Any) -> None:
    _environments.append(environment)


def _write_final(**_kwargs: Any) -> None:
    """On quit, in the process that holds the totals (not in a ``--processes`` worker)."""
    for environment in _environments:
        prefix = getattr(environment.parsed_options, "bench_output", "")
        if not prefix or environment.runner is None:
            continue
        if isinstance(environment.runner, WorkerRunner):
            continue
        stats = environment.runner.stats
        final = {"entries": stats.serialize_stats(),
                 "errors": list(stats.serialize_errors().values())}
        Path(prefix + "_final.json").write_text(json.dumps(final, indent=1), encoding="utf-8")


# Registered without the decorators: they are untyped, and mypy is strict here.
events.init_command_line_parser.add_listener(_add_option)  # type: ignore[no-untyped-call]
events.init.add_listener(_remember)  # type: ignore[no-untyped-call]
events.quit.add_listener(_write_final)  # type: ignore[no-untyped-call]
