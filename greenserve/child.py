"""What a freshly forked worker does before it serves: title, privileges, patch, app.

The order is the point: privileges are dropped first, then gevent patches the process,
then the ``post_patch`` hook runs, and only then is the application imported (unless
``--preload`` loaded it in the master, which then patched before loading).
"""

from __future__ import annotations

import logging
import socket
import sys
import traceback
from typing import TYPE_CHECKING

from . import process

if TYPE_CHECKING:
    from .arbiter import Arbiter, WorkerProcess

log = logging.getLogger("greenserve.error")


def run_worker(arbiter: Arbiter, info: WorkerProcess) -> int:
    """Boot and run one worker in the child process; returns its exit code."""
    from .arbiter import APP_LOAD_ERROR

    cfg = arbiter.cfg
    process.set_title(f"greenserve: worker [{arbiter.proc_name}]")
    uid, gid = process.resolve_user(cfg.user), process.resolve_group(cfg.group)
    from . import _patch

    _patch.patch()
    arbiter.hook("post_patch", info)
    if cfg.spew:
        process.spew()
    # greenserve's own modules load with the master's rights (the interpreter may live where
    # the worker user cannot read, e.g. under /root); the app loads with the worker's.
    from . import health as _health  # noqa: F401
    from . import worker as _worker  # noqa: F401
    from .app import loading as _loading  # noqa: F401

    process.drop_privileges(uid, gid, initgroups=cfg.initgroups)
    app = arbiter.app
    reload_files: tuple[str, ...] = ()
    if app is None:
        from .app.loading import AppLoadError, load_app

        try:
            app = load_app(cfg)
        except AppLoadError as exc:
            if exc.user_error is not None:
                err = exc.user_error
                traceback.print_exception(type(err), err, err.__traceback__, file=sys.stderr)
            log.error("%s", exc)
            error = exc.user_error
            if not (cfg.reload and isinstance(error, SyntaxError) and error.filename):
                return APP_LOAD_ERROR
            # --reload: serve the error and wait for the file to be fixed (as gunicorn).
            from .autoreload import syntax_error_app

            app, reload_files = syntax_error_app(error), (error.filename,)
    from .worker import Worker

    worker = Worker(cfg, app, _listeners(arbiter), heartbeat=info.heartbeat, age=info.age,
                    ppid=info.ppid, reload_files=reload_files)
    worker.on_ready = lambda: _ready(arbiter, worker, info)
    return worker.run()


def _listeners(arbiter: Arbiter) -> list[socket.socket]:
    """The shared listeners, plus, with ``--reuse-port``, this worker's own twins.

    The worker keeps accepting on the shared sockets too: connections the kernel queued on
    the master's socket are never stranded.
    """
    from .sockets import reuse_port_twin

    listeners = list(arbiter.LISTENERS)
    if arbiter.cfg.reuse_port:
        for sock in arbiter.LISTENERS:
            twin = reuse_port_twin(sock, arbiter.cfg.backlog)
            if twin is not None:
                listeners.append(twin)
    return listeners


def _ready(arbiter: Arbiter, worker: object, info: WorkerProcess) -> None:
    info.booted = True
    info.heartbeat.beat(ready=True)
    arbiter.hook("post_worker_init", worker)
