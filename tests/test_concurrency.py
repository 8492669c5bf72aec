"""The point of the product: one worker, many concurrent blocking requests."""

from __future__ import annotations

import selectors
import socket
import time

import requests

from conftest import RawClient


def _open_requests(host: str, port: int, n: int, path: str) -> list[socket.socket]:
    socks = []
    for _ in range(n):
        sock = socket.create_connection((host, port), timeout=30)
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        socks.append(sock)
    return socks


def _read_all(socks: list[socket.socket], timeout: float) -> list[bytes]:
    sel = selectors.DefaultSelector()
    data = {sock: b"" for sock in socks}
    for sock in socks:
        sock.setblocking(False)
        sel.register(sock, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    open_count = len(socks)
    while open_count and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=1):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            chunk = sock.recv(65536)
            data[sock] += chunk
            if not chunk:
                sel.unregister(sock)
                open_count -= 1
    sel.close()
    for sock in socks:
        sock.close()
    return list(data.values())


def test_500_sleeping_requests_complete_concurrently(serve) -> None:
    server = serve("wsgi_apps:routes")
    started = time.monotonic()
    socks = _open_requests(server.host, server.port, 500, "/sleep?s=1")
    # While they all sleep, a quick request is answered at once.
    quick_started = time.monotonic()
    client = RawClient(server.connect())
    client.send(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    assert client.response()[2] == b"hello"
    quick = time.monotonic() - quick_started
    responses = _read_all(socks, timeout=60)
    elapsed = time.monotonic() - started
    ok = sum(1 for r in responses if r.startswith(b"HTTP/1.1 200") and r.endswith(b"slept"))
    assert ok == 500
    # Serially this is 500 s; concurrently it is about one. Generous bound, not a timing test.
    assert elapsed < 30, elapsed
    assert quick < 0.9, quick


def test_worker_connections_bounds_concurrency(serve) -> None:
    server = serve("--worker-connections", "5", "wsgi_apps:routes")
    started = time.monotonic()
    socks = _open_requests(server.host, server.port, 10, "/sleep?s=1")
    responses = _read_all(socks, timeout=30)
    elapsed = time.monotonic() - started
    assert all(r.endswith(b"slept") for r in responses)
    # Only 5 at a time: two rounds of one second each. Extra clients wait in the backlog.
    assert elapsed >= 1.9, elapsed
    assert requests.get(server.url + "/hello").text == "hello"
