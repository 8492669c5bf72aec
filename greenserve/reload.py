"""SIGHUP: reload the configuration and roll the workers without dropping a request.

New workers start first; the old ones are told to stop (gracefully) only once every new
one accepts. If the new workers cannot boot (a syntax error in a deploy), the old ones keep
serving and the failure is logged, instead of gunicorn's exit.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from . import logs

if TYPE_CHECKING:
    from .arbiter import Arbiter, WorkerProcess

log = logging.getLogger("greenserve.error")
BOOT_TIMEOUT = 60.0


def reload(arbiter: Arbiter) -> None:
    """Handle HUP for ``arbiter``."""
    log.info("Hang up: %s", arbiter.master_name)
    _reload_config(arbiter)
    arbiter.hook("on_reload", arbiter)
    old = [w for w in arbiter.WORKERS.values() if not w.retiring]
    new = [arbiter.spawn_worker() for _ in range(arbiter.num_workers)]
    if _wait_until_booted(arbiter, new):
        for worker in old:
            arbiter.retire(worker)
        log.info("Reload complete: %d new workers, %d retiring", len(new), len(old))
        return
    log.error("Reload failed: the new workers did not boot; the old workers keep serving")
    for worker in new:
        if worker.alive:
            arbiter.retire(worker)


def _reload_config(arbiter: Arbiter) -> None:
    if arbiter.reload_config is None:
        return
    from .config import ConfigError

    try:
        cfg = arbiter.reload_config()
    except ConfigError as exc:
        log.error("Reload: %s; keeping the current configuration", exc)
        return
    from .logconfig import LogConfigError

    try:
        logs.setup(cfg)
    except LogConfigError as exc:
        logs.setup(arbiter.cfg)
        log.error("Reload: %s; keeping the current configuration", exc)
        return
    if cfg.bind != arbiter.cfg.bind:
        log.warning("Reload: bind addresses changed; they take effect after a restart")
    arbiter.cfg = cfg
    arbiter.num_workers = cfg.workers


def _wait_until_booted(arbiter: Arbiter, new: list[WorkerProcess]) -> bool:
    deadline = time.monotonic() + BOOT_TIMEOUT
    while time.monotonic() < deadline:
        arbiter.reap()
        if any(not w.alive for w in new):
            return False
        if all(w.booted for w in new):
            return True
        arbiter.pause(0.05)
    return False
