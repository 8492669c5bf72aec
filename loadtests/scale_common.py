"""Shared by ``idle_conns.py`` and ``ws_broadcast.py``: servers, memory, and light clients.

Servers run ``scale_apps.py`` with one worker on 127.0.0.1, each in its own session so that
stopping it reaches its workers. The clients are asyncio protocols with no library in
between (a raw HTTP/1.1 keep-alive client and a raw RFC 6455 client that can offer
permessage-deflate), so that ten thousand of them fit in one process and cost it little CPU.
"""

from __future__ import annotations

import asyncio
import base64
import os
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable
DEFLATE_OFFER = "permessage-deflate; client_max_window_bits"

_GREENSERVE = [PY, "-m", "greenserve", "-w", "1", "--worker-connections", "{wc}",
               "--keep-alive", "300", "--graceful-timeout", "5", "-b", "127.0.0.1:{port}"]
_GUNICORN = [PY, "-m", "gunicorn", "-w", "1", "--worker-connections", "{wc}",
             "--keep-alive", "300", "--graceful-timeout", "5", "--no-control-socket",
             "-b", "127.0.0.1:{port}"]
_UVICORN = [PY, "-m", "uvicorn", "--loop", "asyncio", "--http", "httptools",
            "--lifespan", "off", "--no-access-log", "--log-level", "warning",
            "--timeout-keep-alive", "300", "--timeout-graceful-shutdown", "5",
            "--host", "127.0.0.1", "--port", "{port}"]
SERVERS: dict[str, list[str]] = {
    "greenserve-wsgi": [*_GREENSERVE, "--interface", "wsgi", "scale_apps:wsgi_app"],
    "greenserve-asgi": [*_GREENSERVE, "--interface", "asgi", "--asgi-lifespan", "off",
                        "scale_apps:asgi_app"],
    "gunicorn-gevent": [*_GUNICORN, "-k", "gevent", "scale_apps:wsgi_app"],
    "gunicorn-asgi": [*_GUNICORN, "-k", "asgi", "--asgi-lifespan", "off",
                      "scale_apps:asgi_app"],
    "uvicorn-websockets": [*_UVICORN, "--ws", "websockets", "scale_apps:asgi_app"],
    "uvicorn-wsproto": [*_UVICORN, "--ws", "wsproto", "scale_apps:asgi_app"],
}


def raise_fd_limit() -> int:
    """Soft fd limit up to the hard one (servers inherit it); returns the new soft limit."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def interrupt_on_signals() -> None:
    """Ctrl-C and SIGTERM (``timeout``, ``kill``) raise KeyboardInterrupt wherever the
    script is, so that every server gets stopped.

    A handler of our own also keeps ``asyncio.run`` from installing its SIGINT handler,
    which only cancels the main task: a cancellation that a ``wait_for`` can swallow.
    """

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)


def pin_self(cpu: int) -> bool:
    """Run this process (the clients) on one CPU when the machine has it."""
    if (os.cpu_count() or 1) <= cpu:
        return False
    os.sched_setaffinity(0, {cpu})
    return True


def loadavg() -> str:
    """The 1/5/15-minute load averages, as ``uptime`` prints them."""
    return "%.2f %.2f %.2f" % os.getloadavg()


def rss_bytes(pid: int) -> int:
    """VmRSS of a process, from ``/proc/<pid>/status``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


def free_port() -> int:
    """A port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    """One running server: its process (the master), the worker to measure, its port."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    worker_pid: int

    def stop(self) -> None:
        """SIGTERM to the server's session, then SIGKILL after 10 s."""
        if self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


def _wait_ready(proc: subprocess.Popen[bytes], port: int, name: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{name} did not start within 30 s")


def _worker_of(proc: subprocess.Popen[bytes], name: str) -> int:
    """The one process that serves: the master's only child, or uvicorn itself."""
    if name.startswith("uvicorn"):
        return proc.pid
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        children = _children(proc.pid)
        if len(children) == 1:
            return children[0]
        time.sleep(0.1)
    raise RuntimeError(f"{name}: expected one worker, found {_children(proc.pid)}")


@contextmanager
def running(name: str, extra: list[str], wc: int, cpu: int | None, log: Path) -> Iterator[Server]:
    """Start ``name`` (pinned to ``cpu`` with taskset), yield it, always stop it."""
    port = free_port()
    argv = [a.format(port=port, wc=wc) for a in SERVERS[name]]
    argv = argv[:-1] + extra + argv[-1:]
    if cpu is not None and shutil.which("taskset") and (os.cpu_count() or 1) > cpu:
        argv = ["taskset", "-c", str(cpu), *argv]
    env = {**os.environ, "PYTHONPATH": f"{HERE}{os.pathsep}{ROOT}"}
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, cwd=HERE, env=env, stdout=out, stderr=out,
                                start_new_session=True)
    server = Server(name, proc, port, proc.pid)
    try:
        _wait_ready(proc, port, name)
        server.worker_pid = _worker_of(proc, name)
        yield server
    finally:
        server.stop()


def supports_flag(name: str, flag: str) -> bool:
    """Whether the server's ``--help`` mentions ``flag`` (for settings still landing)."""
    module = SERVERS[name][2]
    out = subprocess.run([PY, "-m", module, "--help"], capture_output=True, text=True,
                         timeout=30, cwd=ROOT)
    return flag in out.stdout


class HTTPClient(asyncio.Protocol):
    """One keep-alive connection sending ``GET`` and reading Content-Length responses."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[bytes] | None = None
        self.body = b""  # of the last response
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0 or self.waiter is None or self.waiter.done():
            return
        head = bytes(self.buffer[:end]).lower()
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line.startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        if len(self.buffer) >= end + 4 + length:
            status = bytes(self.buffer[:end].split(b"\r\n", 1)[0])
            self.body = bytes(self.buffer[end + 4:end + 4 + length])
            del self.buffer[:end + 4 + length]
            self.waiter.set_result(status)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("closed"))
        if not self.closed.done():
            self.closed.set_result(None)

    async def get(self, path: str = "/hello") -> bytes:
        """Send one request and return the status line of the answer."""
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        return await self.waiter


class WSClient(asyncio.Protocol):
    """One WebSocket connection: the handshake, masked text frames out, frames counted in.

    Server messages are counted, not decoded (a compressed one is only recognised by RSV1);
    pings are answered so that servers which ping idle clients keep them.
    """

    def __init__(self, path: str, offer_deflate: bool) -> None:
        loop = asyncio.get_running_loop()
        self.path, self.offer_deflate = path, offer_deflate
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.upgraded = loop.create_future()  # result: permessage-deflate negotiated
        self.closed = loop.create_future()
        self.received = 0
        self.compressed = 0
        self.target = 0
        self.reached: asyncio.Future[None] | None = None
        self.last_at = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET {self.path} HTTP/1.1", "Host: 127.0.0.1", "Upgrade: websocket",
                 "Connection: Upgrade", f"Sec-WebSocket-Key: {key}",
                 "Sec-WebSocket-Version: 13"]
        if self.offer_deflate:
            lines.append(f"Sec-WebSocket-Extensions: {DEFLATE_OFFER}")
        transport.write(("\r\n".join(lines) + "\r\n\r\n").encode())

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.upgraded.done():
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).decode("latin-1").lower()
            del self.buffer[:end + 4]
            if not head.startswith("http/1.1 101"):
                self.upgraded.set_exception(ConnectionError(head.split("\r\n")[0]))
                return
            self.upgraded.set_result("permessage-deflate" in head)
        self._frames()

    def _frames(self) -> None:
        buf, pos = self.buffer, 0
        while len(buf) - pos >= 2:
            first, second = buf[pos], buf[pos + 1] & 0x7F
            start = pos + 2
            if second == 126:
                if len(buf) - start < 2:
                    break
                second, start = struct.unpack_from("!H", buf, start)[0], start + 2
            elif second == 127:
                if len(buf) - start < 8:
                    break
                second, start = struct.unpack_from("!Q", buf, start)[0], start + 8
            if len(buf) - start < second:
                break
            self._frame(first, bytes(buf[start:start + second]))
            pos = start + second
        del buf[:pos]

    def _frame(self, first: int, payload: bytes) -> None:
        opcode = first & 0x0F
        if opcode == 0x9:
            self.send(payload, opcode=0xA)
        elif opcode == 0x8:
            if self.transport is not None:
                self.transport.close()
        elif first & 0x80 and opcode in (0x0, 0x1, 0x2):  # the final frame of a message
            self.received += 1
            self.compressed += bool(first & 0x40)
            self.last_at = time.perf_counter()
            if self.reached is not None and self.received >= self.target:
                if not self.reached.done():
                    self.reached.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        for future in (self.upgraded, self.reached):
            if future is not None and not future.done():
                future.set_exception(ConnectionError("closed"))
        if not self.closed.done():
            self.closed.set_result(None)

    def send(self, payload: bytes, opcode: int = 0x1) -> None:
        """One masked, unfragmented, uncompressed frame."""
        if self.transport is None or self.transport.is_closing():
            return
        mask = os.urandom(4)
        size = len(payload)
        if size < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
        elif size < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
        masked = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
        self.transport.write(head + mask + masked)

    def expect(self, count: int) -> asyncio.Future[None]:
        """A future done once ``count`` messages in total have arrived."""
        self.target = count
        self.reached = asyncio.get_running_loop().create_future()
        if self.received >= count:
            self.reached.set_result(None)
        return self.reached

    async def echo(self, text: bytes = b"hi") -> None:
        """Send one message and wait for one more message back."""
        waiter = self.expect(self.received + 1)
        self.send(text)
        await waiter


async def connect_ws(port: int, path: str, offer_deflate: bool, source: str = "127.0.0.1",
                     timeout: float = 10.0) -> WSClient:
    """A connected, upgraded :class:`WSClient`."""
    loop = asyncio.get_running_loop()
    _transport, client = await asyncio.wait_for(loop.create_connection(
        lambda: WSClient(path, offer_deflate), "127.0.0.1", port,
        local_addr=(source, 0)), timeout)
    await asyncio.wait_for(asyncio.shield(client.upgraded), timeout)
    return client


async def connect_http(port: int, source: str = "127.0.0.1",
                       timeout: float = 10.0) -> HTTPClient:
    """A connected :class:`HTTPClient` that has not sent anything yet."""
    loop = asyncio.get_running_loop()
    _transport, client = await asyncio.wait_for(loop.create_connection(
        HTTPClient, "127.0.0.1", port, local_addr=(source, 0)), timeout)
    return client


def abort_all(clients: Sequence[WSClient | HTTPClient]) -> None:
    """Drop every client connection at once (RST), so no server waits on a close."""
    for client in clients:
        if client.transport is not None:
            client.transport.abort()
