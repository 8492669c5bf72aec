"""Real ASGI frameworks through a real server: Starlette, FastAPI (with loop-bound lifespan
resources under 500 concurrent requests) and client disconnects mid-stream.

The frameworks are imported only by the server processes, never by the tests.
"""

from __future__ import annotations

import importlib.util
import json
import socket
import time
from typing import Any

import pytest
import requests
from raw_load import open_requests, read_all

from conftest import ServerProcess


def _require(*names: str) -> None:
    """Skip unless installed, without importing them here (their warnings stay out)."""
    missing = [name for name in names if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)}")


def _events(server: ServerProcess, wanted: str, timeout: float = 10.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        events = [e for e in requests.get(server.url + "/events", timeout=10).json()
                  if e["event"] == wanted]
        if events or time.monotonic() > deadline:
            return events
        time.sleep(0.1)


def concurrent_gets(server: ServerProcess, paths: list[str], timeout: float = 60) -> list[bytes]:
    """Open one connection per path at once, send every request, read every response."""
    return read_all(open_requests(server.host, server.port, paths), timeout)


def _body(response: bytes) -> Any:
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), response[:300]
    return json.loads(body)


# -- Starlette -----------------------------------------------------------------------------------
@pytest.fixture
def starlette(serve) -> ServerProcess:  # type: ignore[no-untyped-def]
    _require("starlette")
    server: ServerProcess = serve("asgi_starlette:app", "--root-path", "/app")
    return server


def test_starlette_routes(starlette: ServerProcess) -> None:
    assert requests.get(starlette.url + "/", timeout=10).text == "hello from starlette"
    greet = requests.get(starlette.url + "/greet/ann?q=1", timeout=10).json()
    assert greet == {"name": "ann", "q": "1", "root_path": "/app",
                     "url": f"{starlette.url}/app/greet/ann?q=1"}
    assert requests.get(starlette.url + "/missing", timeout=10).status_code == 404
    upload = requests.post(starlette.url + "/upload", data=b"x" * 300_000, timeout=10).json()
    assert upload == {"length": 300_000, "head": "x" * 10}


def test_starlette_streaming_is_not_buffered(starlette: ServerProcess) -> None:
    with requests.get(starlette.url + "/stream?n=5&delay=0.1", stream=True, timeout=10) as resp:
        arrivals = []
        started = time.monotonic()
        for line in resp.iter_lines():
            arrivals.append(time.monotonic() - started)
            assert line.startswith(b"chunk ")
    assert len(arrivals) == 5
    assert arrivals[-1] - arrivals[0] > 0.3  # one by one, 100 ms apart: not buffered


def test_starlette_background_task_runs_after_the_response(starlette: ServerProcess) -> None:
    assert requests.get(starlette.url + "/background?tag=b1", timeout=10).json() == {
        "queued": True}
    events = _events(starlette, "background")
    assert [e["tag"] for e in events] == ["b1"]


def test_starlette_lifespan_state_is_loop_bound_and_shared(starlette: ServerProcess) -> None:
    results = [_body(r) for r in concurrent_gets(starlette, ["/state"] * 50)]
    assert all(r["same_loop"] for r in results)
    assert len({r["started"] for r in results}) == 1


def test_starlette_file_response_uses_pathsend(starlette: ServerProcess) -> None:
    from pathlib import Path

    resp = requests.get(starlette.url + "/file", timeout=10)
    source = Path(__file__).parent / "apps" / "asgi_starlette.py"
    assert resp.content == source.read_bytes()
    sent = [e["types"] for e in _events(starlette, "file sent")]
    assert sent[-1] == ["http.response.start", "http.response.pathsend"]


def test_disconnect_mid_stream_cancels_the_generator(starlette: ServerProcess) -> None:
    sock = socket.create_connection((starlette.host, starlette.port))
    sock.sendall(b"GET /endless HTTP/1.1\r\nHost: x\r\n\r\n")
    assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    time.sleep(0.3)
    sock.close()
    events = _events(starlette, "endless finally")
    assert len(events) == 1  # the generator was cancelled and its finally ran
    time.sleep(0.3)
    again = _events(starlette, "endless finally")
    assert again[0]["sent"] == events[0]["sent"]  # and it stopped producing


def test_is_disconnected_turns_true(starlette: ServerProcess) -> None:
    sock = socket.create_connection((starlette.host, starlette.port))
    sock.sendall(b"GET /watch HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.3)
    sock.close()
    events = _events(starlette, "is_disconnected")
    assert len(events) == 1 and events[0]["after"] < 3


# -- FastAPI --------------------------------------------------------------------------------------
@pytest.fixture
def fastapi(serve) -> ServerProcess:  # type: ignore[no-untyped-def]
    _require("fastapi", "aiosqlite")
    upstream = serve("wsgi_apps:routes")
    server: ServerProcess = serve("asgi_fastapi:app", "--worker-connections", "2000",
                                  env={"UPSTREAM_URL": upstream.url})
    return server


def test_fastapi_json_and_dependencies(fastapi: ServerProcess) -> None:
    assert requests.get(fastapi.url + "/", timeout=10).json() == {"hello": "fastapi"}
    created = requests.post(fastapi.url + "/items", json={"name": "pen", "price": 1.5},
                            headers={"X-User": "ann"}, timeout=10)
    assert created.json() == {"item": {"name": "pen", "price": 1.5, "tags": []},
                              "user": "ann", "total": 3.0}
    invalid = requests.post(fastapi.url + "/items", json={"name": "pen"}, timeout=10)
    assert invalid.status_code == 422
    page = requests.get(fastapi.url + "/items?limit=2&offset=5", timeout=10).json()
    assert page == {"items": [{"id": 5, "name": "item-5"}, {"id": 6, "name": "item-6"}],
                    "page": {"limit": 2, "offset": 5}}


def test_fastapi_def_endpoint_runs_in_a_greenlet(fastapi: ServerProcess) -> None:
    results = [_body(r) for r in concurrent_gets(fastapi, ["/sync"] * 20)]
    # The 20 x time.sleep(0.2) overlap (patched sleep in anyio's worker "threads", which
    # are greenlets): at one moment all of them were sleeping.
    assert max(r["started"] for r in results) < min(r["ended"] for r in results)
    assert all(r["thread"] == "AnyIO worker thread" for r in results)
    assert all(r["os_thread"] == r["main_os_thread"] for r in results)


def test_lifespan_resources_serve_500_concurrent_requests(fastapi: ServerProcess) -> None:
    paths = [f"/items/{i % 100}" for i in range(400)] + ["/upstream"] * 100
    results = [_body(r) for r in concurrent_gets(fastapi, paths)]
    assert [r["name"] for r in results[:400]] == [f"item-{i % 100}" for i in range(400)]
    assert all(r == {"status": 200, "body": "hello"} for r in results[400:])


def test_500_concurrent_sleeps_overlap(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve("asgi_apps:app")
    started = time.monotonic()
    responses = concurrent_gets(server, ["/sleep?s=0.5"] * 500)
    elapsed = time.monotonic() - started
    assert all(_body(r) == {"slept": True} for r in responses)
    assert elapsed < 10, elapsed  # serially 250 s
