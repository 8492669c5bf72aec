"""The point of the product: one worker, many concurrent blocking requests."""

from __future__ import annotations

import time

import requests
from raw_load import open_requests, read_all

from conftest import RawClient


def test_500_sleeping_requests_complete_concurrently(serve) -> None:
    server = serve("wsgi_apps:routes")
    started = time.monotonic()
    socks = open_requests(server.host, server.port, ["/sleep?s=1"] * 500)
    # While they all sleep, a quick request is answered at once.
    quick_started = time.monotonic()
    client = RawClient(server.connect())
    client.send(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    assert client.response()[2] == b"hello"
    quick = time.monotonic() - quick_started
    responses = read_all(socks, timeout=60)
    elapsed = time.monotonic() - started
    ok = sum(1 for r in responses if r.startswith(b"HTTP/1.1 200") and r.endswith(b"slept"))
    assert ok == 500
    # Serially this is 500 s; concurrently it is about one. Generous bound, not a timing test.
    assert elapsed < 30, elapsed
    assert quick < 0.9, quick


def test_worker_connections_bounds_concurrency(serve) -> None:
    server = serve("--worker-connections", "5", "wsgi_apps:routes")
    started = time.monotonic()
    socks = open_requests(server.host, server.port, ["/sleep?s=1"] * 10)
    responses = read_all(socks, timeout=30)
    elapsed = time.monotonic() - started
    assert all(r.endswith(b"slept") for r in responses)
    # Only 5 at a time: two rounds of one second each. Extra clients wait in the backlog.
    assert elapsed >= 1.9, elapsed
    assert requests.get(server.url + "/hello").text == "hello"
