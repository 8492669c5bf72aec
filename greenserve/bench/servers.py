"""Start the servers to measure, wait until they answer HTTP, stop them afterwards.

A server started here binds 127.0.0.1 only. greenserve and gunicorn-style commands get
``-b 127.0.0.1:0`` and are read for their ``Listening at: http://...`` line (the system
picks the port, so nothing can take it between choosing and binding). A command that needs
its address spelled differently uses the ``{host}``/``{port}``/``{bind}``/``{app}``
placeholders instead; it then gets a free port chosen here, and is waited for by connecting.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

HOST = "127.0.0.1"
_LISTENING = re.compile(r"Listening at: (http://\S+)")
_PLACEHOLDER = re.compile(r"\{(app|host|port|bind)\}")


class BenchError(Exception):
    """Something went wrong at run time (a server did not start, a URL does not answer)."""


@dataclass
class Server:
    """A server process started by the bench, its URL once it listens, and its log file."""

    label: str
    command: list[str]
    proc: subprocess.Popen[bytes]
    log_path: Path
    log: IO[bytes]
    port: int | None
    url: str = ""


def greenserve_command(app: str, server_args: list[str]) -> list[str]:
    """greenserve, from this interpreter, with the app on 127.0.0.1 and a system-chosen port."""
    return [sys.executable, "-m", "greenserve", "-b", f"{HOST}:0", *server_args, app]


def peer_command(words: list[str], app: str,
                 server_args: list[str]) -> tuple[list[str], int | None]:
    """The ``--compare`` command to run, and the port it was given (None: it reports it)."""
    port: int | None = None
    if any(_PLACEHOLDER.search(word) for word in words):
        port = free_port()
        values = {"app": app, "host": HOST, "port": str(port), "bind": f"{HOST}:{port}"}
        command = [_PLACEHOLDER.sub(lambda m: values[m.group(1)], word) for word in words]
    else:
        command = [*words, "-b", f"{HOST}:0", *server_args, app]
    return [_resolve(command[0]), *command[1:]], port


def _resolve(program: str) -> str:
    """``gunicorn`` → its path, also when it sits next to this interpreter (an inactive venv)."""
    found = shutil.which(program)
    if found:
        return found
    sibling = Path(sys.executable).parent / program
    if os.sep not in program and sibling.is_file():
        return str(sibling)
    raise BenchError(f"--compare: command not found: {program}")


def label_for(command: list[str], taken: set[str]) -> str:
    """A short name for a server command (``gunicorn``, ``uvicorn``), unique among ``taken``."""
    name = Path(command[0]).name
    if re.fullmatch(r"python[\d.]*", name) and command[1:2] == ["-m"] and len(command) > 2:
        name = command[2]
    label, n = name, 2
    while label in taken:
        label, n = f"{name}-{n}", n + 1
    return label


def free_port() -> int:
    """A port that was free a moment ago (only for commands that cannot bind port 0)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def start(label: str, command: list[str], port: int | None, log_path: Path) -> Server:
    """Start ``command`` in its own process group with its output going to ``log_path``."""
    log = log_path.open("wb")
    try:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    except OSError as exc:
        log.close()
        raise BenchError(f"cannot start {label}: {exc}") from None
    return Server(label, command, proc, log_path, log, port)


def wait_listening(server: Server, timeout: float) -> str:
    """Block until ``server`` listens; its base URL. Raises BenchError if it exits or hangs."""
    deadline = time.monotonic() + timeout
    while not server.url:
        if server.proc.poll() is not None:
            raise BenchError(f"{server.label} exited with code {server.proc.returncode} "
                             f"before listening: {last_line(server.log_path)}")
        if time.monotonic() > deadline:
            raise BenchError(f"{server.label} did not listen within {timeout:g}s "
                             f"(log: {server.log_path})")
        server.url = _listening_url(server)
        if not server.url:
            time.sleep(0.05)
    return server.url


def _listening_url(server: Server) -> str:
    if server.port is not None:
        try:
            socket.create_connection((HOST, server.port), timeout=1).close()
        except OSError:
            return ""
        return f"http://{HOST}:{server.port}"
    match = _LISTENING.search(server.log_path.read_text("utf-8", "replace"))
    return match.group(1) if match else ""


def wait_answering(url: str, path: str, timeout: float, server: Server | None = None) -> None:
    """GET ``url + path`` until any HTTP response comes back (workers may still be loading).

    Raises BenchError with the last connection error after ``timeout`` seconds, or as soon
    as ``server`` exits (its app failed to load, say).
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            probe(url, path)
            return
        except (OSError, http.client.HTTPException) as exc:
            if server is not None and server.proc.poll() is not None:
                raise BenchError(f"{server.label} exited with code {server.proc.returncode}: "
                                 f"{last_line(server.log_path)}") from None
            if time.monotonic() > deadline:
                raise BenchError(f"cannot reach {url}: {exc or type(exc).__name__}") from None
            time.sleep(0.1)


def probe(url: str, path: str) -> int:
    """One GET of ``path`` on ``url``; the status code."""
    parts = urlsplit(url)
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        # Like Locust's FastHttpUser, which does not verify certificates either: this only
        # asks whether the server answers (a test server often has a self-signed one).
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection(parts.hostname or HOST, parts.port, timeout=5,
                                           context=context)
    else:
        conn = http.client.HTTPConnection(parts.hostname or HOST, parts.port, timeout=5)
    try:
        conn.request("GET", (parts.path.rstrip("/") or "") + path)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def stop(server: Server) -> None:
    """SIGINT (a quick shutdown for greenserve and gunicorn), then SIGKILL to what is left.

    The server runs in a process group of its own, so the SIGKILL reaches workers that
    outlived their master and nothing else.
    """
    try:
        if server.proc.poll() is None:
            server.proc.send_signal(signal.SIGINT)
            try:
                server.proc.wait(15)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(server.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # the whole group is gone: the usual case
        server.proc.wait(5)
    finally:
        server.log.close()


def last_line(path: Path) -> str:
    """The first error line of a log file, else its last line, for one-line messages."""
    try:
        lines = [line.strip() for line in path.read_text("utf-8", "replace").splitlines()]
    except OSError:
        return "(no log)"
    errors = [line for line in lines if "[ERROR]" in line or line.startswith("Error")]
    lines = [line for line in lines if line]
    return errors[0] if errors else lines[-1] if lines else "(no output)"
