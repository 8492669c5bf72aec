"""systemd integration, as gunicorn has it: socket activation and the readiness message.

- Socket activation: systemd passes listening sockets as fds 3, 4, ... and says how many in
  ``LISTEN_FDS``, for the process ``LISTEN_PID`` names. The master serves them instead of
  binding ``--bind`` (:func:`listen_fds`).
- ``Type=notify`` units: once its workers are starting, the master sends ``READY=1`` with
  gunicorn's status line to ``NOTIFY_SOCKET`` (:func:`notify`).
"""

from __future__ import annotations

import logging
import os

#: the first fd systemd passes (sd_listen_fds(3))
LISTEN_FDS_START = 3
#: what the master sends when it is up (gunicorn's message, word for word but the name)
READY = "READY=1\nSTATUS=Gunicorn arbiter booted"


def listen_fds(*, unset_environment: bool = True) -> list[int]:
    """The fds systemd passed to this process ([] when none, or when they were meant for
    another process). The variables are removed so that workers and re-exec'd masters do
    not take them for theirs."""
    try:
        count = int(os.environ.get("LISTEN_FDS", "0"))
        meant_for = int(os.environ.get("LISTEN_PID", "0"))
    except ValueError:
        return []
    if unset_environment:
        for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
            os.environ.pop(name, None)
    if meant_for != os.getpid() or count <= 0:
        return []
    return list(range(LISTEN_FDS_START, LISTEN_FDS_START + count))


def notify(state: str, log: logging.Logger) -> bool:
    """Send ``state`` to systemd's ``NOTIFY_SOCKET``; False when there is none or it failed
    (logged at debug level: a unit that is not ``Type=notify`` never sets it)."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    import socket

    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError:
        log.debug("Exception while invoking sd_notify()", exc_info=True)
        return False
    return True
