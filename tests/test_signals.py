"""Stopping the worker: SIGTERM drains, SIGINT/SIGQUIT stop fast."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import pytest
from master_helpers import wait_for

from conftest import RawClient, recv_all


def test_sigterm_finishes_in_flight_requests_and_closes_idle_ones(serve, tmp_path: Path) -> None:
    server = serve("wsgi_apps:routes")
    idle = RawClient(server.connect())
    idle.send(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    assert idle.response()[2] == b"hello"
    busy = server.connect()
    in_app = tmp_path / "started"
    busy.sendall(b"GET /sleep?s=1&started=%s HTTP/1.1\r\nHost: x\r\n\r\n" % bytes(in_app))
    wait_for(in_app.exists)  # the request is in the app
    started = time.monotonic()
    server.signal(signal.SIGTERM)
    assert idle.closed(timeout=5)  # the idle keep-alive connection is closed promptly
    data = recv_all(busy)
    assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"slept")
    assert b"Connection: close" in data  # the in-flight response ends the connection
    assert server.wait(15) == 0
    assert time.monotonic() - started < 10
    with pytest.raises(OSError):
        socket.create_connection((server.host, server.port), timeout=2).close()


def test_graceful_timeout_bounds_the_drain(serve) -> None:
    server = serve("--graceful-timeout", "1", "wsgi_apps:routes")
    busy = server.connect()
    busy.sendall(b"GET /sleep?s=30 HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.3)
    started = time.monotonic()
    server.signal(signal.SIGTERM)
    assert server.wait(15) == 0
    assert time.monotonic() - started < 5
    assert recv_all(busy) == b""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGQUIT])
def test_fast_stop(serve, sig: int) -> None:
    server = serve("wsgi_apps:routes")
    busy = server.connect()
    busy.sendall(b"GET /sleep?s=30 HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.3)
    started = time.monotonic()
    server.signal(sig)
    assert server.wait(15) == 0
    assert time.monotonic() - started < 3


# (each import ends well within the graceful timeout a stop gives the workers)
@pytest.mark.parametrize(("sig", "load_time"), [(signal.SIGTERM, 2.0), (signal.SIGQUIT, 0.5)])
def test_a_stop_while_the_worker_loads_the_app_is_obeyed_once_it_has_booted(
        serve, tmp_path: Path, sig: int, load_time: float) -> None:
    """The master's stop reaches a worker still importing the app (its handlers not set
    yet): the worker finishes booting, then stops as asked; no error is logged."""
    loading = tmp_path / "loading"
    (tmp_path / "slow_import.py").write_text(
        f"import time\nopen({str(loading)!r}, 'w').close()\ntime.sleep({load_time})\n\n\n"
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [])\n    return [b'']\n")
    server = serve("--chdir", str(tmp_path), "slow_import:app")
    wait_for(loading.exists)
    server.signal(sig)
    assert server.wait(15) == 0
    logs = server.logs()
    assert "Booting worker" in logs and "[ERROR]" not in logs, logs


def _block_worker(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A request whose app never yields to the hub: the worker cannot obey a signal (the
    connection stays open until the server fixture ends)."""
    started = tmp_path / "blocking"
    server.connect().sendall(
        b"GET /block?s=20&started=%s HTTP/1.1\r\nHost: x\r\n\r\n" % bytes(started))
    wait_for(started.exists)


def test_a_fast_stop_gives_a_blocked_worker_the_graceful_timeout(serve, tmp_path: Path) -> None:
    """As gunicorn: QUIT, then SIGKILL only once --graceful-timeout has passed."""
    server = serve("--graceful-timeout", "3", "master_apps:app")
    _block_worker(server, tmp_path)
    started = time.monotonic()
    server.signal(signal.SIGQUIT)
    assert server.wait(20) == 0
    assert 2.5 < time.monotonic() - started < 10
    assert server.has_logged("was sent SIGKILL"), server.logs()


def test_int_during_a_graceful_stop_makes_it_fast(serve, tmp_path: Path) -> None:
    """As gunicorn 27: a second, fast stop cuts the graceful timeout to 2 s."""
    server = serve("--graceful-timeout", "30", "master_apps:app")
    _block_worker(server, tmp_path)
    started = time.monotonic()
    server.signal(signal.SIGTERM)
    time.sleep(0.5)
    server.signal(signal.SIGINT)
    assert server.wait(20) == 0
    assert time.monotonic() - started < 10
    assert server.has_logged("Quick shutdown requested"), server.logs()
