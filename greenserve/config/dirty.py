"""Dirty Arbiters settings and hooks (gunicorn 25's, see ``greenserve/dirty/``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from .hooks import Hook, _hook
from .spec import at_least, checked, each, setting, to_int, to_str_tuple


def _dirty_spec(item: str) -> None:
    from greenserve.dirty.app import parse_spec  # pure string parsing

    parse_spec(item)


@dataclass(frozen=True, kw_only=True)
class DirtySettings:
    """Dirty Arbiters."""

    SECTION: ClassVar[str] = "Dirty Arbiters"

    dirty_apps: tuple[str, ...] = setting(
        "--dirty-app", kind="append", metavar="STRING", default=(), default_doc="[]",
        convert=checked(to_str_tuple, each(_dirty_spec)),
        help="A dirty app to run in the dirty workers: module:Class or module:Class:N.",
        desc="""\
A class (a `DirtyApp` subclass: `greenserve.dirty.DirtyApp` or `gunicorn.dirty.DirtyApp`)
whose `init()` loads something slow or large once, a model say, and whose public methods
request code calls by name: `get_dirty_client().execute("module:Class", "predict", x)`.
`:N` loads it in at most N dirty workers (for an app too large for every one); without it
the class's `workers` attribute decides, else every dirty worker loads it. Repeat the flag
for several apps. Nothing runs unless `--dirty-workers` is above 0.""",
    )
    dirty_workers: int = setting(
        "--dirty-workers", metavar="INT", default=0, convert=checked(to_int, at_least(0)),
        help="How many dirty worker processes to run (0: none).",
        desc="""\
The master starts a dirty arbiter, which keeps this many dirty workers running (at least
the largest `:N` of `--dirty-app`), replaces one that dies, and adds or removes one on
`TTIN`/`TTOU` sent to the dirty arbiter's PID.""",
    )
    dirty_timeout: int = setting(
        "--dirty-timeout", metavar="INT", default=300, convert=checked(to_int, at_least(0)),
        help="Seconds a dirty call may take before the caller gets DirtyTimeoutError.",
        desc="""\
Counted by the dirty arbiter for each answer (each chunk of a streamed one). 0 means no
limit. The client's own `timeout` (30 s by default in `get_dirty_client()`) also applies.
It is also the dirty workers' heartbeat timeout, as in gunicorn: a worker beats twice per
timeout from its main loop (calls run in threads, so only a stuck process falls silent); one
silent for longer is logged as `DIRTY WORKER TIMEOUT (pid:N)`, sent ABRT, then KILL a second
later, and replaced. A worker's apps must load within this time.""",
    )
    dirty_threads: int = setting(
        "--dirty-threads", metavar="INT", default=1, convert=checked(to_int, at_least(1)),
        help="How many calls each dirty worker runs at once, in threads.",
        desc="""\
Real threads: the apps' actions must be thread-safe above 1. (gunicorn queues the calls of
one dirty worker one after another whatever this says; greenserve runs them at once.)""",
    )
    dirty_graceful_timeout: int = setting(
        "--dirty-graceful-timeout", metavar="INT", default=30,
        convert=checked(to_int, at_least(0)),
        help="Seconds the dirty workers get to finish when the server stops.",
        desc="After that they are killed.",
    )


def on_dirty_starting(arbiter: Any) -> None:
    """Does nothing."""


def dirty_post_fork(arbiter: Any, worker: Any) -> None:
    """Does nothing."""


def dirty_worker_init(worker: Any) -> None:
    """Does nothing."""


def dirty_worker_exit(arbiter: Any, worker: Any) -> None:
    """Does nothing."""


@dataclass(frozen=True, kw_only=True)
class DirtyHookSettings:
    """Dirty Arbiter Hooks."""

    SECTION: ClassVar[str] = "Dirty Arbiter Hooks"

    on_dirty_starting: Hook = _hook(
        "arbiter", on_dirty_starting,
        help="called in the dirty arbiter as it starts, before its workers.",
        when="Runs in the dirty arbiter's process, before it listens or forks a worker.",
    )
    dirty_post_fork: Hook = _hook(
        "arbiter, worker", dirty_post_fork,
        help="called in the dirty arbiter just after it forked a dirty worker.",
        when="""\
Runs in the dirty arbiter (the parent, as in gunicorn), with the new worker's `pid` set
and its apps not loaded yet.""",
    )
    dirty_worker_init: Hook = _hook(
        "worker", dirty_worker_init,
        help="called in a dirty worker once its apps are loaded.",
        when="Runs in the dirty worker after every app's `init()`, before it takes calls.",
    )
    dirty_worker_exit: Hook = _hook(
        "arbiter, worker", dirty_worker_exit,
        help="called in the dirty arbiter after a dirty worker exited.",
        when="Runs in the dirty arbiter once it has reaped the worker, whatever the reason.",
    )
