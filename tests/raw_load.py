"""Many simultaneous raw HTTP/1.1 requests, each on its own connection, read with a selector."""

from __future__ import annotations

import selectors
import socket
import time


def open_requests(host: str, port: int, paths: list[str]) -> list[socket.socket]:
    """One connection per path, each with a ``Connection: close`` GET already sent."""
    socks = []
    for path in paths:
        sock = socket.create_connection((host, port), timeout=30)
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                     "Connection: close\r\n\r\n".encode())
        socks.append(sock)
    return socks


def read_all(socks: list[socket.socket], timeout: float) -> list[bytes]:
    """Everything each socket receives until the server closes it (or ``timeout``)."""
    sel = selectors.DefaultSelector()
    data = {sock: b"" for sock in socks}
    for sock in socks:
        sock.setblocking(False)
        sel.register(sock, selectors.EVENT_READ)
    deadline, open_count = time.monotonic() + timeout, len(socks)
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
    return [data[sock] for sock in socks]
