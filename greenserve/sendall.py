"""Sending a whole buffer on a gevent socket without gevent's per-call costs."""

from __future__ import annotations

import socket
from typing import Any

import gevent


def send_all(sock: Any, direct: socket.socket | None, data: bytes | memoryview,
             timeout: float | None, timeout_exc: type[BaseException] = TimeoutError) -> None:
    """Send all of ``data``; ``timeout_exc`` when the rest waits more than ``timeout``.

    One non-blocking send on ``direct``, the OS-level socket under gevent's (None under
    TLS), comes first: the kernel usually takes it all, and then neither gevent's
    ``sendall`` (a ``getsockopt`` per call) nor a ``gevent.Timeout`` is needed. Only a full
    socket buffer waits, for the rest: a slow reader still slows its sender down.
    """
    sent = 0
    if direct is not None:
        try:
            sent = direct.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        if sent == len(data):
            return
    with gevent.Timeout(timeout, timeout_exc):
        sock.sendall(memoryview(data)[sent:] if sent else data)
