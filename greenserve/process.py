"""Process chores shared by the master and the workers: titles, pidfile, privileges, daemon.

Pure standard library, so the master can use it without importing gevent.
"""

from __future__ import annotations

import gc
import grp
import logging
import os
import pwd
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger("greenserve.error")


def set_title(title: str) -> None:
    """Set the process title (``ps``/``top``) when the optional setproctitle is installed."""
    try:
        from setproctitle import setproctitle
    except ImportError:
        return
    setproctitle(title)


def resolve_user(user: str | None) -> int | None:
    """A uid from a user name or number; None when unset."""
    if user is None:
        return None
    if user.isdigit():
        return int(user)
    try:
        return pwd.getpwnam(user).pw_uid
    except KeyError:
        raise ValueError(f"no such user: {user!r}") from None


def resolve_group(group: str | None) -> int | None:
    """A gid from a group name or number; None when unset."""
    if group is None:
        return None
    if group.isdigit():
        return int(group)
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise ValueError(f"no such group: {group!r}") from None


def drop_privileges(uid: int | None, gid: int | None, *, initgroups: bool) -> None:
    """Switch the current process to ``gid``/``uid`` (group first, while still allowed)."""
    if gid is not None and gid != os.getegid():
        if initgroups and uid is not None:
            os.initgroups(pwd.getpwuid(uid).pw_name, gid)
        os.setgid(gid)
    if uid is not None and uid != os.geteuid():
        os.setuid(uid)


class Pidfile:
    """The master's pidfile: written at start, renamed on re-exec, removed at exit."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def create(self, pid: int) -> None:
        """Write ``pid``; refuse when another live process owns the file."""
        if self.path.exists():
            try:
                other = int(self.path.read_text().strip() or "0")
            except ValueError:
                other = 0
            if other and other != pid and _alive(other):
                raise RuntimeError(f"already running on PID {other} (or pid file '{self.path}' "
                                   "is stale)")
        tmp = self.path.with_name(self.path.name + f".{pid}.tmp")
        tmp.write_text(f"{pid}\n")
        tmp.replace(self.path)

    def rename(self, path: str) -> None:
        """Move the file (USR2: the old master's becomes ``.oldbin``)."""
        if self.path.exists():
            self.path.replace(path)
        self.path = Path(path)

    def unlink(self, pid: int) -> None:
        """Remove the file if it still holds ``pid``."""
        try:
            if int(self.path.read_text().strip() or "0") == pid:
                self.path.unlink()
        except (OSError, ValueError):
            pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reaped() -> Iterator[tuple[int, int]]:
    """(pid, wait status) of each child that has exited, without blocking."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if not pid:
            return
        yield pid, status


def daemonize(*, keep_stdio: bool) -> None:
    """Detach from the terminal: fork, new session, fork again, stdio to /dev/null."""
    if os.fork():
        os._exit(0)
    os.setsid()
    if os.fork():
        os._exit(0)
    if keep_stdio:
        return
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115 - fds 1/2 stay open
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115


#: the stop signals (TERM, INT, QUIT) that came while the worker booted, in order: the
#: worker obeys them once its own handlers are set (:func:`reset_signals`)
early_stops: list[int] = []


def _remember_stop(signum: int, frame: Any) -> None:
    early_stops.append(signum)


def reset_signals() -> None:
    """Default dispositions in a freshly forked worker (the master's handlers do not apply).

    A stop signal is remembered instead, until the worker sets its handlers: the master's
    SIGTERM to a worker still loading the app stops it gracefully once it has booted (as
    gunicorn's worker), instead of killing it.
    """
    for sig in (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGTTIN,
                signal.SIGTTOU, signal.SIGWINCH, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
        signal.signal(sig, _remember_stop)


def rss_mib() -> float:
    """This process's resident set size in MiB (Linux ``/proc``; 0 when unavailable)."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)



#: CPython's collection thresholds up to 3.13; 3.14's incremental collector has others, and is
#: left alone
_CPYTHON_GC_THRESHOLD = (700, 10, 10)


def tune_gc(gen0: int) -> None:
    """Raise the youngest generation's collection threshold to ``gen0`` (0: leave it).

    Only when the thresholds are still CPython's defaults: an app that tuned them itself
    (at import) keeps its choice.
    """
    threshold = gc.get_threshold()
    if gen0 and threshold == _CPYTHON_GC_THRESHOLD:
        gc.set_threshold(gen0, *threshold[1:])


def spew() -> None:
    """``--spew``: print every line this process executes from now on (gunicorn's debug
    aid): ``module:line: source``, on stdout, in this thread and threads started later."""
    import linecache
    import threading
    from types import FrameType

    def trace(frame: FrameType, event: str, arg: Any) -> Any:
        if event == "line":
            name = frame.f_globals.get("__name__", "?")
            filename = frame.f_code.co_filename
            line = linecache.getline(filename, frame.f_lineno).rstrip()
            sys.stdout.write(f"{name}:{frame.f_lineno}: {line}\n")
        return trace

    threading.settrace(trace)
    sys.settrace(trace)
