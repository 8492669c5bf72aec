"""The master's control socket: gunicorn 25's, so ``gunicornc`` and ``greenserve ctl`` work.

A Unix stream socket (``--control-socket PATH``, mode ``--control-socket-mode``) in the
master. Each message is a 4-byte big-endian length and a JSON object; a request is
``{"id": 1, "command": "show workers", "args": []}`` and its answer ``{"id": 1, "status":
"ok", "data": {...}}`` or ``{"id": 1, "status": "error", "error": "..."}``. The commands are
gunicorn's: ``show all|workers|dirty|config|stats|listeners``, ``worker add [N]``,
``worker remove [N]``, ``worker kill PID``, ``reload`` (HUP), ``reopen`` (USR1),
``shutdown [graceful|quick]``, ``dirty add|remove [N]`` and ``help``.

The master stays single-threaded: the listener and its clients are in the ``select()`` the
master sleeps in (:meth:`~greenserve.arbiter.Arbiter.pause`), and a command runs between two
turns of its loop, where a signal's handler would. The sockets are closed in every worker
after the fork.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import socket
import stat
import struct
import time
from typing import TYPE_CHECKING, Any

from .control_commands import run_command

if TYPE_CHECKING:
    from .arbiter import Arbiter

log = logging.getLogger("greenserve.error")

_LENGTH = struct.Struct(">I")
MAX_MESSAGE = 16 * 1024 * 1024  # gunicorn's bound
MAX_CLIENTS = 16
SEND_TIMEOUT = 2.0  # seconds a client may take to read an answer (the master waits)
IDLE_TIMEOUT = 300.0  # a client silent this long is disconnected (gunicorn's 5 minutes)


def encode(message: dict[str, Any]) -> bytes:
    """One framed message."""
    payload = json.dumps(message).encode("utf-8")
    return _LENGTH.pack(len(payload)) + payload


class Framer:
    """Sans-io: bytes in, whole messages out."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes) -> list[Any]:
        """The messages ``data`` completes; ValueError when the stream is not one."""
        self.buf += data
        messages = []
        while len(self.buf) >= _LENGTH.size:
            (length,) = _LENGTH.unpack_from(self.buf)
            if length > MAX_MESSAGE:
                raise ValueError(f"message too large: {length} bytes")
            end = _LENGTH.size + length
            if len(self.buf) < end:
                break
            messages.append(json.loads(bytes(self.buf[_LENGTH.size : end]).decode("utf-8")))
            del self.buf[:end]
        return messages


def answer(arbiter: Arbiter, message: Any) -> dict[str, Any]:
    """The answer to one request message (errors are answers too)."""
    request_id = message.get("id", 0) if isinstance(message, dict) else 0
    if not isinstance(message, dict):
        return {"id": request_id, "status": "error", "error": "Invalid request"}
    try:
        parts = shlex.split(str(message.get("command", "")))
        parts += [str(arg) for arg in message.get("args") or ()]
        if not parts:
            raise ValueError("Empty command")
        return {"id": request_id, "status": "ok", "data": run_command(arbiter, parts)}
    except ValueError as exc:
        return {"id": request_id, "status": "error", "error": f"Invalid argument: {exc}"}
    except Exception as exc:
        log.exception("Control command failed: %r", message.get("command"))
        return {"id": request_id, "status": "error", "error": f"Command failed: {exc}"}


class ControlServer:
    """The control socket of one master."""

    def __init__(self, arbiter: Arbiter, path: str, mode: int) -> None:
        self.arbiter = arbiter
        self.path = path
        self.mode = mode
        self.listener: socket.socket | None = None
        #: fd -> (socket, its framer, when it last sent something)
        self.clients: dict[int, tuple[socket.socket, Framer, float]] = {}
        self._inode = 0

    def open(self) -> bool:
        """Bind the socket (a stale one at the path is replaced); False, logged, if not."""
        try:
            directory = os.path.dirname(self.path)
            if directory:
                os.makedirs(directory, mode=0o700, exist_ok=True)
            if os.path.exists(self.path) and stat.S_ISSOCK(os.stat(self.path).st_mode):
                os.unlink(self.path)
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(self.path)
            os.chmod(self.path, self.mode)
            listener.listen(MAX_CLIENTS)
            listener.setblocking(False)
        except OSError as exc:
            log.error("Control socket not created at %s: %s", self.path, exc)
            return False
        self.listener = listener
        self._inode = os.stat(self.path).st_ino
        log.info("Control socket listening at %s", self.path)
        return True

    def fds(self) -> list[int]:
        """What the master's ``select()`` watches for this socket."""
        if self.listener is None:
            return []
        return [self.listener.fileno(), *self.clients]

    def handle(self, ready: list[int]) -> None:
        """Accept, read and answer what ``select()`` found ready; drop idle clients."""
        for fd in ready:
            if self.listener is not None and fd == self.listener.fileno():
                self._accept()
            elif fd in self.clients:
                self._read(fd)
        idle = time.monotonic() - IDLE_TIMEOUT
        for fd in [fd for fd, (_, _, last) in self.clients.items() if last < idle]:
            self._drop(fd)

    def _accept(self) -> None:
        assert self.listener is not None
        try:
            sock, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError, ConnectionError):
            return
        if len(self.clients) >= MAX_CLIENTS:
            sock.close()
            return
        sock.settimeout(SEND_TIMEOUT)
        self.clients[sock.fileno()] = (sock, Framer(), time.monotonic())

    def _read(self, fd: int) -> None:
        sock, framer, _ = self.clients[fd]
        self.clients[fd] = (sock, framer, time.monotonic())
        try:
            data = sock.recv(65536)
            for message in framer.feed(data) if data else ():
                sock.sendall(encode(answer(self.arbiter, message)))
        except (OSError, ValueError) as exc:
            log.debug("control client dropped: %s", exc)
            data = b""
        if not data:
            self._drop(fd)

    def _drop(self, fd: int) -> None:
        sock, _, _ = self.clients.pop(fd)
        sock.close()

    def close_in_child(self) -> None:
        """After fork, in a worker: let go of the sockets, leave the path alone."""
        for fd in list(self.clients):
            self._drop(fd)
        if self.listener is not None:
            self.listener.close()
            self.listener = None

    def close(self) -> None:
        """Close everything and remove the path, unless another master replaced it."""
        self.close_in_child()
        try:
            if self._inode and os.stat(self.path).st_ino == self._inode:
                os.unlink(self.path)
        except OSError:
            pass
