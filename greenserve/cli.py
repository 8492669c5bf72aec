"""The ``greenserve`` command: configure, patch, load the app, bind, run.

The order matters and is the point of this module. Configuration is read before anything
that imports networking code; ``--env``/``--chdir`` are applied next; then gevent patches the
process; only then is the application imported, so it sees patched ``socket``, ``ssl`` and
``threading``. No setting is named here: the parser comes from ``greenserve.config``.

Exit codes follow gunicorn: 0 success, 1 start-up failure (e.g. cannot bind), 2 bad command
line or settings, 4 the application failed to load (gunicorn's APP_LOAD_ERROR).
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, NoReturn

from greenserve import config

if TYPE_CHECKING:
    from greenserve.app.mount import Mounts

EXIT_STARTUP_ERROR = 1
EXIT_USAGE = 2
EXIT_APP_LOAD_ERROR = 4


def main(argv: list[str] | None = None) -> None:
    """Run greenserve with ``argv`` (default ``sys.argv[1:]``); exits the process when done.

    ``greenserve bench ...`` (exactly ``bench`` first) is the load-testing harness instead
    of the server; an app module named ``bench`` is served as ``greenserve bench:application``.
    ``greenserve ctl ...`` sends a command to a master's control socket (:mod:`.ctl`).
    """
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["bench"]:
        # Before anything of the server is imported: the harness patches nothing.
        from greenserve.bench.cli import main as bench_main

        sys.exit(bench_main(args[1:]))
    if args[:1] == ["ctl"]:  # a command to a running master's control socket
        from greenserve.ctl import main as ctl_main

        sys.exit(ctl_main(args[1:]))
    from greenserve import _patch

    cfg, mode = _configure(args)
    # After the config file ran: what it imported is the user's early imports too.
    _patch.snapshot()
    if mode == "print":
        print(config.render(cfg))
        return
    _prepare(cfg)
    app = None
    if config.app_in_master(cfg):
        app = _load(cfg)
        if mode == "check":
            return
    else:
        _check_spec(cfg)
    sys.exit(_serve(cfg, app, args))


def _load(cfg: config.Config) -> Callable[..., Any] | Mounts:
    """Patch, then import the app here (``--check-config``, ``--preload``)."""
    from greenserve import _patch

    _patch.patch()  # before anything below can import the app or stdlib networking
    from greenserve.app.loading import AppLoadError, load_app

    try:
        return load_app(cfg)
    except AppLoadError as exc:
        _fail(str(exc), EXIT_APP_LOAD_ERROR, user_error=exc.user_error)


def _check_spec(cfg: config.Config) -> None:
    """Without --preload the workers import the app; a malformed spec is refused now."""
    from greenserve.app.loading import AppLoadError, check_app_spec

    try:
        check_app_spec(cfg)
    except AppLoadError as exc:
        _fail(str(exc), EXIT_APP_LOAD_ERROR)


def _configure(argv: list[str]) -> tuple[config.Config, config.RunMode]:
    try:
        cfg = config.load(argv, os.environ)
        return cfg, config.run_mode(cfg)
    except config.ConfigError as exc:
        if exc.usage:
            print(exc.usage, file=sys.stderr)
        _fail(str(exc), EXIT_USAGE, user_error=exc.user_error)


def _prepare(cfg: config.Config) -> None:
    """``--chdir``, ``--env`` and ``sys.path``; before patching, so env can configure gevent."""
    from greenserve.app.loading import prepare_process

    try:
        prepare_process(cfg)
    except OSError as exc:
        _fail(f"cannot prepare the process: {exc}", EXIT_STARTUP_ERROR)


def _reload(argv: list[str]) -> config.Config:
    """The settings again (SIGHUP), read from where greenserve started: relative paths in
    the command line (a config file, the app directory) mean what they meant at start."""
    from greenserve.app.loading import from_start_directory

    return from_start_directory(lambda: config.load(argv, os.environ))


def _serve(cfg: config.Config, app: Callable[..., Any] | Mounts | None, argv: list[str]) -> int:
    """Hand over to the master; it binds, forks the workers and supervises them."""
    from greenserve.arbiter import Arbiter
    from greenserve.sockets import BindError

    arbiter = Arbiter(cfg, argv=argv, app=app,
                      reload_config=lambda: _reload(argv))
    try:
        return arbiter.run()
    except BindError as exc:
        _fail(str(exc), EXIT_STARTUP_ERROR)
    except RuntimeError as exc:  # e.g. a live pidfile
        _fail(str(exc), EXIT_STARTUP_ERROR)


def _fail(message: str, code: int, *, user_error: BaseException | None = None) -> NoReturn:
    """Print the user's traceback when it is their bug, then one error line, and exit."""
    if user_error is not None:
        tb = _user_frames(user_error.__traceback__) or user_error.__traceback__
        traceback.print_exception(type(user_error), user_error, tb, file=sys.stderr)
    print(f"greenserve: error: {message}", file=sys.stderr, flush=True)
    sys.exit(code)


_INTERNAL = (
    os.path.dirname(os.path.abspath(__file__)),
    os.path.dirname(importlib.__file__),
    "<frozen importlib.",
)


def _user_frames(tb: TracebackType | None) -> TracebackType | None:
    """Skip the leading frames that are greenserve's or importlib's, not the user's."""
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_INTERNAL):
        tb = tb.tb_next
    return tb
