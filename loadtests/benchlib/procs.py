"""Child processes of the benchmark: started in their own session, all stopped at the end."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
from typing import Any

HOST = "127.0.0.1"
SERVER_CPU, CLIENT_CPU = 0, 1

_children: list[subprocess.Popen[bytes]] = []


def spawn(argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    """Start a child in its own session (so a terminal Ctrl-C reaches only us) and track it."""
    proc = subprocess.Popen(argv, start_new_session=True, **kwargs)
    _children.append(proc)
    return proc


def forget(proc: subprocess.Popen[bytes]) -> None:
    """Stop tracking a child that has ended by itself (wrk)."""
    if proc in _children:
        _children.remove(proc)


def stop(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """Stop a child we started and everything in its process group: INT, then KILL."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGINT)  # fast shutdown for every server, and for wrk
            proc.wait(timeout=grace)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # a worker its master left behind
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()
    forget(proc)


def stop_all() -> None:
    """Stop every child still running, newest first; a second Ctrl-C cannot interrupt it."""
    old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
    old_term = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        while _children:
            stop(_children[-1])
    finally:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)


def interrupt(signum: int, frame: object) -> None:
    """SIGTERM handler: behave like Ctrl-C so that ``finally`` blocks stop the children."""
    raise KeyboardInterrupt(f"signal {signum}")


def pin_prefix(cpu: int, enabled: bool) -> list[str]:
    return ["taskset", "-c", str(cpu)] if enabled else []


def can_pin() -> tuple[bool, str]:
    """Whether server and wrk can be pinned to their CPUs, and a note saying how."""
    if shutil.which("taskset") is None or not hasattr(os, "sched_getaffinity"):
        return False, "taskset not found: server and wrk are not pinned"
    allowed = os.sched_getaffinity(0)
    if not {SERVER_CPU, CLIENT_CPU} <= allowed:
        return False, f"CPUs {sorted(allowed)} only: server and wrk are not pinned"
    return True, f"server on CPU {SERVER_CPU}, wrk on CPU {CLIENT_CPU} (taskset)"


def free_port() -> int:
    """A port nobody listens on now (the servers are told it: not all of them log theirs)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port
