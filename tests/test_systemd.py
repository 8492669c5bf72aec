"""systemd integration, with real processes: the readiness message and socket activation."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from test_cli import APPS, child_env, stop

from greenserve import systemd


def _start(args: list[str], *, env: dict[str, str], fd3: socket.socket | None = None,
           listen_pid: bool = False) -> subprocess.Popen[str]:
    """greenserve in a child; ``fd3`` becomes its fd 3, and ``listen_pid`` sets LISTEN_PID to
    the child's own pid (what systemd does), through a shell that execs it."""
    command = [sys.executable, "-m", "greenserve", *args]
    if listen_pid:
        command = ["sh", "-c", 'LISTEN_PID=$$ exec "$@"', "sh", *command]
    return subprocess.Popen(
        command, cwd=APPS, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        pass_fds=(3,) if fd3 is not None else (),
        preexec_fn=(lambda: os.dup2(fd3.fileno(), 3)) if fd3 is not None else None,
    )


def _get(connect: tuple[str, int] | str) -> tuple[int, bytes]:
    if isinstance(connect, str):
        sock = socket.socket(socket.AF_UNIX)
    else:
        sock = socket.create_connection(connect, timeout=20)
    with sock:
        sock.settimeout(20)
        if isinstance(connect, str):
            sock.connect(connect)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
def test_master_tells_systemd_it_is_ready(tmp_path: Path, abstract: bool) -> None:
    name = f"@greenserve-test-{os.getpid()}" if abstract else str(tmp_path / "notify")
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind("\0" + name[1:] if abstract else name)
    receiver.settimeout(30)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = _start(["-b", f"127.0.0.1:{port}", "cfgapp_basic"],
                  env=child_env(NOTIFY_SOCKET=name))
    try:
        message = receiver.recv(4096)
        answer = _get(("127.0.0.1", port))  # listening by the time it says so
    finally:
        stderr = stop(proc)
        receiver.close()
    assert message == b"READY=1\nSTATUS=Gunicorn arbiter booted", stderr
    assert answer == (200, b"cfgapp_basic\n")


def test_socket_activation_serves_the_socket_systemd_passed() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    # --bind is ignored when systemd passes sockets (a path that cannot be bound proves it).
    proc = _start(["-b", "unix:/nonexistent/dir/g.sock", "cfgapp_basic"],
                  env=child_env(LISTEN_FDS="1"), fd3=listener, listen_pid=True)
    listener.close()
    try:
        answer = _get(("127.0.0.1", port))
    finally:
        stderr = stop(proc)
    assert answer == (200, b"cfgapp_basic\n"), stderr
    assert f"Listening at: http://127.0.0.1:{port}" in stderr


@pytest.mark.parametrize("how", ["LISTEN_FDS", "fd://3"])
def test_a_unix_socket_passed_in_is_left_in_place(tmp_path: Path, how: str) -> None:
    # The documented socket-activation set-up: a restart must not remove systemd's path.
    path = str(tmp_path / "activated.sock")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen()
    if how == "fd://3":
        proc = _start(["-b", "fd://3", "cfgapp_basic"], env=child_env(), fd3=listener)
    else:
        proc = _start(["cfgapp_basic"], env=child_env(LISTEN_FDS="1"), fd3=listener,
                      listen_pid=True)
    listener.close()
    try:
        answer = _get(path)
    finally:
        stderr = stop(proc)
    assert answer == (200, b"cfgapp_basic\n"), stderr
    assert os.path.exists(path)  # systemd's socket: not ours to remove


def test_sockets_meant_for_another_process_are_ignored(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LISTEN_FDS", "2")
    monkeypatch.setenv("LISTEN_PID", str(os.getpid() + 1))
    assert systemd.listen_fds() == []
    assert "LISTEN_FDS" not in os.environ  # removed either way: workers must not see them
    monkeypatch.setenv("LISTEN_FDS", "2")
    monkeypatch.setenv("LISTEN_PID", str(os.getpid()))
    assert systemd.listen_fds() == [3, 4]
    assert "LISTEN_PID" not in os.environ


def test_no_notify_socket_sends_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    import logging

    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert systemd.notify(systemd.READY, logging.getLogger("test")) is False
    monkeypatch.setenv("NOTIFY_SOCKET", "/nonexistent/notify")
    assert systemd.notify(systemd.READY, logging.getLogger("test")) is False  # logged, no raise
