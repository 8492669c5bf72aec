"""Bind specs and listening sockets, on real sockets."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from greenserve.config import Config
from greenserve.sockets import (
    BindError,
    FDAddress,
    TCPAddress,
    UnixAddress,
    bind_all,
    bind_one,
    close,
    describe,
    parse_bind,
)


@pytest.mark.parametrize(("spec", "expected"), [
    ("127.0.0.1:8000", TCPAddress("127.0.0.1", 8000, "inet")),
    ("127.0.0.1", TCPAddress("127.0.0.1", 8000, "inet")),
    ("LocalHost:0", TCPAddress("localhost", 0, "inet")),
    (":9000", TCPAddress("", 9000, "inet")),
    ("0.0.0.0:80", TCPAddress("0.0.0.0", 80, "inet")),
    ("tcp://10.0.0.1:81", TCPAddress("10.0.0.1", 81, "inet")),
    ("[::1]:8000", TCPAddress("::1", 8000, "inet6")),
    ("[::]", TCPAddress("::", 8000, "inet6")),
    ("[FE80::1%eth0]:1", TCPAddress("fe80::1%eth0", 1, "inet6")),
    ("unix:/run/app.sock", UnixAddress("/run/app.sock")),
    ("unix:///run/app.sock", UnixAddress("/run/app.sock")),
    ("unix:rel.sock", UnixAddress("rel.sock")),
    ("fd://3", FDAddress(3)),
])
def test_parse_bind(spec: str, expected: object) -> None:
    assert parse_bind(spec) == expected


@pytest.mark.parametrize(("spec", "message"), [
    ("host:port", "'port' is not a valid port number"),
    ("host:", "'' is not a valid port number"),
    ("host:70000", "'70000' is not a valid port number"),
    ("::1", "write IPv6 addresses in brackets"),
    ("[::1", "malformed bracketed address"),
    ("[::1]x", "malformed bracketed address"),
    ("[nothost]:80", "'nothost' is not an IPv6 address"),
    ("unix:", "missing unix socket path"),
    ("unix:/" + "x" * 200, "longer than 107 bytes"),
    ("fd://", "is not a valid file descriptor"),
    ("fd://-1", "is not a valid file descriptor"),
])
def test_parse_bind_rejects(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=".*") as info:
        parse_bind(spec)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_str_round_trips() -> None:
    for spec in ("127.0.0.1:80", "[::1]:80", "unix:/x", "fd://4"):
        assert str(parse_bind(spec)) == spec


@pytest.fixture
def listeners() -> Iterator[list[socket.socket]]:
    opened: list[socket.socket] = []
    yield opened
    for sock in opened:
        close(sock, unlink=sock.family == socket.AF_UNIX)


def _bind(cfg: Config, opened: list[socket.socket]) -> list[socket.socket]:
    socks = bind_all(cfg)
    opened.extend(socks)
    return socks


def test_tcp_port_zero(listeners: list[socket.socket]) -> None:
    (sock,) = _bind(Config(bind=("127.0.0.1:0",)), listeners)
    host, port = sock.getsockname()
    assert host == "127.0.0.1" and port > 0
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
    assert not sock.get_inheritable()
    assert describe(sock) == f"http://127.0.0.1:{port}"
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass  # the kernel completes the handshake against the backlog


def test_all_interfaces_and_reuse_port(listeners: list[socket.socket]) -> None:
    (sock,) = _bind(Config(bind=(":0",), reuse_port=True), listeners)
    assert sock.getsockname()[0] == "0.0.0.0"
    if hasattr(socket, "SO_REUSEPORT"):
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)


@pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6")
def test_ipv6_is_v6only(listeners: list[socket.socket]) -> None:
    try:
        (sock,) = _bind(Config(bind=("[::1]:0",)), listeners)
    except BindError as exc:
        pytest.skip(f"IPv6 loopback unavailable: {exc}")
    assert sock.family == socket.AF_INET6
    assert sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)
    assert describe(sock) == f"http://[::1]:{sock.getsockname()[1]}"


def test_unix_socket_and_stale_file(tmp_path: Path, listeners: list[socket.socket]) -> None:
    path = str(tmp_path / "s.sock")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)
    stale.close()  # the file stays behind, as after a crash
    (sock,) = _bind(Config(bind=(f"unix:{path}",)), listeners)
    assert describe(sock) == f"unix:{path}"
    with pytest.raises(BindError, match=r"^cannot bind unix:.*Address already in use$"):
        bind_all(Config(bind=(f"unix:{path}",)), delay=0.01)  # a live socket is not stolen
    assert os.path.exists(path)


def test_unix_path_that_is_not_a_socket(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_text("keep me")
    with pytest.raises(BindError, match="exists and is not a socket"):
        bind_all(Config(bind=(f"unix:{path}",)))
    assert path.read_text() == "keep me"


def test_fd_bind_adopts_an_open_socket(listeners: list[socket.socket]) -> None:
    original = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    original.bind(("127.0.0.1", 0))
    fd = original.detach()
    (sock,) = _bind(Config(bind=(f"fd://{fd}",)), listeners)
    assert sock.fileno() == fd and sock.family == socket.AF_INET
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)


def test_fd_that_is_not_a_socket(tmp_path: Path) -> None:
    with open(tmp_path / "f", "w") as fh:
        with pytest.raises(BindError, match=rf"^cannot bind fd://{fh.fileno()}: "):
            bind_all(Config(bind=(f"fd://{fh.fileno()}",)))
        os.fstat(fh.fileno())  # still open: a failed adoption does not close the fd


def test_address_in_use_is_one_line_and_closes_earlier_listeners(tmp_path: Path) -> None:
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    path = tmp_path / "first.sock"
    try:
        with pytest.raises(BindError) as info:
            bind_all(Config(bind=(f"unix:{path}", f"127.0.0.1:{port}")), attempts=1)
    finally:
        busy.close()
    assert str(info.value) == (
        f"cannot bind 127.0.0.1:{port}: [Errno 98] Address already in use"
    )
    assert not path.exists()  # the unix listener bound first was closed and removed


def test_bind_one_directly() -> None:
    sock = bind_one(TCPAddress("127.0.0.1", 0, "inet"), backlog=1, reuse_port=False)
    try:
        assert describe(sock).startswith("http://127.0.0.1:")
    finally:
        sock.close()


def _busy_port() -> socket.socket:
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    return busy


def test_an_address_in_use_is_tried_again_until_it_is_free(
        listeners: list[socket.socket], caplog: pytest.LogCaptureFixture) -> None:
    # A restart whose old process still holds the port for a moment (gunicorn: 5 tries,
    # a second apart, "Connection in use: ..." each time).
    busy = _busy_port()
    port = busy.getsockname()[1]
    threading.Timer(0.5, busy.close).start()
    with caplog.at_level(logging.DEBUG, logger="greenserve.error"):
        socks = bind_all(Config(bind=(f"127.0.0.1:{port}",)), attempts=20, delay=0.1)
    listeners.extend(socks)
    assert socks[0].getsockname() == ("127.0.0.1", port)
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert 2 <= len(errors) < 20
    assert set(errors) == {f"Connection in use: 127.0.0.1:{port}"}
    assert "Retrying in 0.1 seconds." in caplog.messages


def test_an_address_still_in_use_fails_after_the_last_try(
        caplog: pytest.LogCaptureFixture) -> None:
    busy = _busy_port()
    port = busy.getsockname()[1]
    started = time.monotonic()
    try:
        with caplog.at_level(logging.ERROR, logger="greenserve.error"):
            with pytest.raises(BindError, match=r"Address already in use$"):
                bind_all(Config(bind=(f"127.0.0.1:{port}",)), attempts=3, delay=0.1)
    finally:
        busy.close()
    assert 0.2 <= time.monotonic() - started < 2
    assert caplog.messages == [f"Connection in use: 127.0.0.1:{port}"] * 2


def test_other_bind_errors_are_not_tried_again(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    started = time.monotonic()
    with pytest.raises(BindError, match="exists and is not a socket"):
        bind_all(Config(bind=(f"unix:{tmp_path / 'file'}",)), delay=5)
    assert time.monotonic() - started < 1
