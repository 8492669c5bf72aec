"""SIGUSR2: exec a new master that inherits the listening sockets (binary upgrade).

The old master keeps running with its workers; its pidfile becomes ``FILE.oldbin`` and the
new master writes ``FILE``. Then, as with gunicorn: ``TERM`` the old master to finish the
upgrade, or ``HUP`` it and ``TERM`` the new one to roll back. The sockets are passed as
inherited file descriptors listed in ``GUNICORN_FD``, the variable gunicorn uses.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING

from .app.loading import START_CWD

if TYPE_CHECKING:
    from .arbiter import Arbiter

log = logging.getLogger("greenserve.error")


def reexec(arbiter: Arbiter) -> None:
    """Fork and exec a new master; in the child this never returns."""
    if arbiter.reexec_pid:
        log.warning("USR2 signal ignored. Child exists.")
        return
    parent = os.environ.get("GUNICORN_PID", "")
    if parent.isdigit() and int(parent) == os.getppid():
        log.warning("USR2 signal ignored. Parent exists.")
        return
    master_pid = os.getpid()
    pid = os.fork()
    if pid:
        arbiter.reexec_pid = pid
        arbiter.master_name = "Old Master"
        if arbiter.pidfile is not None and arbiter.cfg.pidfile:
            arbiter.pidfile.rename(arbiter.cfg.pidfile + ".oldbin")
        return
    _exec_new_master(arbiter, master_pid)


def _exec_new_master(arbiter: Arbiter, master_pid: int) -> None:
    try:
        arbiter.hook("pre_exec", arbiter)
        fds = [sock.fileno() for sock in arbiter.LISTENERS]
        for fd in fds:
            os.set_inheritable(fd, True)
        env = dict(os.environ)
        env["GUNICORN_PID"] = str(master_pid)
        env["GUNICORN_FD"] = ",".join(str(fd) for fd in fds)
        os.chdir(START_CWD)  # where this process started: relative paths in argv hold
        os.execve(sys.executable, [sys.executable, "-m", "greenserve", *arbiter.argv], env)
    except BaseException:
        log.exception("Re-exec failed")
    finally:
        os._exit(1)
