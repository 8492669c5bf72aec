"""Shared fixtures: run the real server in a subprocess on port 0 and talk to it."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import greenserve

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
#: where the greenserve under test comes from: the checkout, or build/compiled (``make
#: unit-compiled``); the servers the tests start get it first on their PYTHONPATH
PACKAGE_ROOT = Path(greenserve.__file__).resolve().parents[1]
_LISTEN = re.compile(r"Listening at: (http://\S+|unix:\S+)")


class ServerProcess:
    """A ``python -m greenserve`` child; ``url``/``port`` once it listens, logs captured."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        full_env = dict(os.environ)
        full_env["PYTHONPATH"] = os.pathsep.join([str(TESTS / "apps"), str(PACKAGE_ROOT)])
        for name in ("GUNICORN_CMD_ARGS", "NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID"):
            full_env.pop(name, None)  # (systemd's would reach a test server run under it)
        full_env.update(env or {})
        self.args = args
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "greenserve", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=full_env,
            cwd=str(TESTS / "apps"),
        )
        self.sockets: list[socket.socket] = []
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._listening = threading.Event()
        self.url = ""
        self._readers = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, self.stdout), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr, self.stderr), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _pump(self, pipe: object, sink: list[str]) -> None:
        for raw in iter(pipe.readline, b""):  # type: ignore[attr-defined]
            line = raw.decode("utf-8", "replace")
            sink.append(line)
            match = _LISTEN.search(line)
            if match and not self.url:
                self.url = match.group(1)
                self._listening.set()

    def wait_listening(self, timeout: float = 20.0) -> ServerProcess:
        deadline = time.monotonic() + timeout
        while not self._listening.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                time.sleep(0.2)
                raise RuntimeError(
                    f"server did not start (rc={self.proc.poll()}):\n{self.logs()}"
                )
        return self

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def host(self) -> str:
        return self.url.split("//", 1)[1].rsplit(":", 1)[0].strip("[]")

    def connect(self, timeout: float = 10.0) -> socket.socket:
        """A raw TCP connection to the server (closed when the server fixture ends)."""
        sock = socket.create_connection((self.host, self.port), timeout=timeout)
        self.sockets.append(sock)
        return sock

    def logs(self) -> str:
        return "".join(self.stderr) + "".join(self.stdout)

    def has_logged(self, text: str, timeout: float = 10.0) -> bool:
        """Whether ``text`` shows up in the logs within ``timeout`` seconds.

        The worker writes a log line and the pipe readers pick it up on their own threads, so
        a line about something the client just saw may arrive a moment later: poll for it.
        """
        deadline = time.monotonic() + timeout
        while text not in self.logs():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 30.0) -> int:
        rc = self.proc.wait(timeout)
        for reader in self._readers:
            reader.join(2)
        return rc

    def stop(self) -> None:
        for sock in self.sockets:
            sock.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for reader in self._readers:
            reader.join(5)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


@pytest.fixture
def serve() -> Iterator[object]:
    """Factory: ``serve("module:app", "--flag", ...)`` starts a server on 127.0.0.1:0."""
    started: list[ServerProcess] = []

    def start(*args: str, bind: str = "127.0.0.1:0", env: dict[str, str] | None = None,
              wait: bool = True) -> ServerProcess:
        # One worker unless a test asks for more: most tests reason about one process.
        argv = ["-w", "1", *(["-b", bind] if bind else []), *args]
        server = ServerProcess(argv, env)
        started.append(server)
        return server.wait_listening() if wait else server

    yield start
    for server in started:
        server.stop()


def recv_all(sock: socket.socket, timeout: float = 10.0) -> bytes:
    """Read until the server closes the connection."""
    sock.settimeout(timeout)
    chunks = []
    while True:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


class RawClient:
    """A raw-socket HTTP/1 client that reads responses one by one from a shared buffer."""

    def __init__(self, sock: socket.socket, timeout: float = 10.0) -> None:
        self.sock = sock
        self.sock.settimeout(timeout)
        self.buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _more(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError(f"connection closed; buffered {self.buf!r}")
        self.buf += data

    def _until(self, marker: bytes) -> bytes:
        while marker not in self.buf:
            self._more()
        item, _, self.buf = self.buf.partition(marker)
        return item

    def _exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._more()
        item, self.buf = self.buf[:n], self.buf[n:]
        return item

    def response(self, head_only: bool = False) -> tuple[int, dict[str, str], bytes]:
        """(status, lower-cased headers, body) of the next response; 1xx are returned too."""
        lines = self._until(b"\r\n\r\n").decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            key = name.strip().lower()
            headers[key] = headers[key] + "," + value.strip() if key in headers else value.strip()
        if head_only or status < 200 or status in (204, 304):
            return status, headers, b""
        if "content-length" in headers:
            return status, headers, self._exactly(int(headers["content-length"]))
        if headers.get("transfer-encoding") == "chunked":
            return status, headers, self._chunked()
        body = self.buf
        self.buf = b""
        return status, headers, body + recv_all(self.sock)

    def _chunked(self) -> bytes:
        body = b""
        while True:
            size = int(self._until(b"\r\n").split(b";")[0], 16)
            if size == 0:
                while self._until(b"\r\n"):
                    pass  # trailers
                return body
            body += self._exactly(size)
            assert self._exactly(2) == b"\r\n"

    def closed(self, timeout: float = 5.0) -> bool:
        """True when the server closes the connection without sending anything more."""
        self.sock.settimeout(timeout)
        try:
            return not self.buf and self.sock.recv(1) == b""
        except ConnectionResetError:
            return True


@pytest.fixture(params=["python", "fast"])
def http_parser(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run a sans-io test once per HTTP/1 implementation (``--http-parser`` names).

    The harness helpers (``corpus_harness.new_connection``, ``drive``, ``judge``) build
    connections of this kind while the test runs.
    """
    import corpus_harness

    if request.param == "fast":
        pytest.importorskip("httptools")
    corpus_harness.use_parser(request.param)
    yield request.param
    corpus_harness.use_parser("python")


@pytest.fixture
def udp_receiver() -> Iterator[socket.socket]:
    """A UDP socket on 127.0.0.1 (a StatsD or syslog server stand-in)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    yield sock
    sock.close()


def datagrams(sock: socket.socket, until: str, timeout: float = 10) -> list[str]:
    """The datagrams ``sock`` receives until one contains ``until`` (or the time is up)."""
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            lines.append(sock.recv(65536).decode())
        except TimeoutError:
            break
        if until in lines[-1]:
            break
    return lines


def file_text_with(path: Path, text: str, timeout: float = 10) -> str:
    """The file's text once it contains ``text`` (what it has when the time is up)."""
    deadline = time.monotonic() + timeout
    while True:
        content = path.read_text() if path.exists() else ""
        if text in content or time.monotonic() > deadline:
            return content
        time.sleep(0.05)
