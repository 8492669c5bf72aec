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
