"""A real Flask app (tests/apps/flask_app.py) end to end through greenserve, with requests and
httpx: JSON, forms, multipart uploads, streaming, send_file, sessions, errors, concurrency."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import requests

from conftest import TESTS, RawClient, ServerProcess, recv_all

SOURCE = TESTS / "apps" / "flask_app.py"


@pytest.fixture
def flask_server(serve) -> ServerProcess:  # type: ignore[no-untyped-def]
    """A fresh server per test: module state in the app (items, stream flag) starts clean."""
    return serve("flask_app:app")


def _memory_blob(size: int) -> bytes:
    return bytes(i % 251 for i in range(size))


# -- JSON API --------------------------------------------------------------------------------
def test_json_api_crud_with_requests(flask_server: ServerProcess) -> None:
    url = flask_server.url + "/api/items"
    with requests.Session() as http:
        assert http.get(url).json() == [{"id": 1, "name": "first"}]
        created = http.post(url, json={"name": "zweite \u00e9", "tags": ["a", "b"]})
        assert created.status_code == 201
        assert created.headers["Location"] == "/api/items/2"
        assert created.headers["Content-Type"] == "application/json"
        assert created.json() == {"id": 2, "name": "zweite \u00e9", "tags": ["a", "b"]}
        assert http.get(url + "/2").json()["name"] == "zweite \u00e9"
        deleted = http.delete(url + "/2")
        assert deleted.status_code == 204 and deleted.content == b""
        assert http.get(url + "/2").status_code == 404
        assert http.post(url, json=["not", "an", "object"]).status_code == 400


def test_json_api_with_httpx_keepalive(flask_server: ServerProcess) -> None:
    with httpx.Client(base_url=flask_server.url) as client:
        for i in range(5):
            resp = client.post("/api/items", json={"name": f"n{i}"})
            assert resp.status_code == 201 and resp.json()["id"] == i + 2
        assert [item["id"] for item in client.get("/api/items").json()] == [1, 2, 3, 4, 5, 6]


def test_chunked_json_upload_is_read_to_the_end(flask_server: ServerProcess) -> None:
    """No Content-Length: Werkzeug relies on ``wsgi.input_terminated`` to read the body."""
    payload = json.dumps({"numbers": list(range(2000))}).encode()

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(payload), 1000):
            yield payload[i : i + 1000]

    with httpx.Client() as client:
        resp = client.post(flask_server.url + "/api/echo", content=chunks(),
                           headers={"Content-Type": "application/json"})
    assert resp.status_code == 200
    data = resp.json()
    assert data["received"] == {"numbers": list(range(2000))}
    assert data["content_length"] is None and data["transfer_encoding"] == "chunked"


def test_unicode_path_and_query(flask_server: ServerProcess) -> None:
    resp = requests.get(flask_server.url + "/hello/J%C3%BCrgen%20M", params={"q": "caf\u00e9 & co"})
    assert resp.json() == {
        "greeting": "hello J\u00fcrgen M",
        "path": "/hello/J\u00fcrgen M",
        "args": {"q": "caf\u00e9 & co"},
    }


def test_head_request_has_headers_but_no_body(flask_server: ServerProcess) -> None:
    client = RawClient(flask_server.connect())
    client.send(b"HEAD /api/items HTTP/1.1\r\nHost: x\r\n\r\nGET /pid HTTP/1.1\r\nHost: x\r\n\r\n")
    status, headers, body = client.response(head_only=True)
    assert status == 200 and headers["content-type"] == "application/json"
    assert int(headers["content-length"]) > 0 and body == b""
    # The next response on the connection starts right away: no stray HEAD body in between.
    status, _, body = client.response()
    assert status == 200 and b'"pid"' in body


# -- forms and uploads -----------------------------------------------------------------------
def test_urlencoded_form(flask_server: ServerProcess) -> None:
    resp = requests.post(flask_server.url + "/form",
                         data={"name": "Zo\u00eb", "tag": ["x", "y"], "empty": ""})
    assert resp.json() == {
        "form": {"name": ["Zo\u00eb"], "tag": ["x", "y"], "empty": [""]},
        "content_type": "application/x-www-form-urlencoded",
    }


def test_multipart_upload_with_requests(flask_server: ServerProcess) -> None:
    big = os.urandom(2 * 1024 * 1024 + 17)  # large enough to span many socket reads
    files = [
        ("doc", ("r\u00e9sum\u00e9.txt", b"hello\r\n--not-a-boundary\r\n", "text/plain")),
        ("blob", ("big.bin", big, "application/octet-stream")),
    ]
    resp = requests.post(flask_server.url + "/upload", files=files, data={"note": "two files"})
    assert resp.status_code == 200
    data = resp.json()
    assert data["form"] == {"note": "two files"}
    doc, blob = data["files"]
    assert doc["field"] == "doc" and doc["mimetype"] == "text/plain"
    assert doc["size"] == 25
    assert blob == {
        "field": "blob", "filename": "big.bin", "mimetype": "application/octet-stream",
        "size": len(big), "sha256": hashlib.sha256(big).hexdigest(),
    }


def test_multipart_upload_with_httpx(flask_server: ServerProcess) -> None:
    content = b"\x00\x01binary\xff" * 5000
    with httpx.Client() as client:
        resp = client.post(flask_server.url + "/upload",
                           files={"f": ("data.bin", content, "application/x-thing")})
    (info,) = resp.json()["files"]
    assert info["size"] == len(content)
    assert info["sha256"] == hashlib.sha256(content).hexdigest()
    assert info["mimetype"] == "application/x-thing"


# -- streaming and files ---------------------------------------------------------------------
def test_streaming_is_incremental_with_stream_with_context(flask_server: ServerProcess) -> None:
    """The first chunk reaches the client while the generator is still waiting: the release
    request can only arrive because the server flushed ``start`` and serves others meanwhile."""
    with httpx.Client(timeout=10) as client:
        with client.stream("GET", flask_server.url + "/stream?n=3&tag=t1") as resp:
            assert resp.headers["transfer-encoding"] == "chunked"
            lines = resp.iter_lines()
            assert next(lines) == "start t1"
            assert client.post(flask_server.url + "/stream/release").text == "ok"
            rest = list(lines)
    assert rest == ["released", "line 0", "line 1", "line 2"]


def test_send_file_from_disk(flask_server: ServerProcess) -> None:
    expected = SOURCE.read_bytes()
    with requests.get(flask_server.url + "/download/source") as resp:
        assert resp.status_code == 200
        assert resp.headers["Content-Type"].startswith("text/x-python")
        assert int(resp.headers["Content-Length"]) == len(expected)
        assert "Last-Modified" in resp.headers and "ETag" in resp.headers
        assert resp.content == expected
        etag = resp.headers["ETag"]
    with requests.get(flask_server.url + "/download/source",
                      headers={"If-None-Match": etag}) as resp:
        assert resp.status_code == 304 and resp.content == b""


def test_send_file_range_request(flask_server: ServerProcess) -> None:
    expected = SOURCE.read_bytes()
    with httpx.Client() as client:
        resp = client.get(flask_server.url + "/download/source",
                          headers={"Range": "bytes=10-109"})
        assert resp.status_code == 206
        assert resp.headers["content-range"] == f"bytes 10-109/{len(expected)}"
        assert resp.content == expected[10:110]
        # The connection is still usable afterwards (the framing was exact).
        assert client.get(flask_server.url + "/pid").status_code == 200


def test_send_file_from_memory(flask_server: ServerProcess) -> None:
    with httpx.Client() as client:
        resp = client.get(flask_server.url + "/download/memory?size=300000")
        assert resp.status_code == 200
        assert resp.headers["content-disposition"] == "attachment; filename=data.bin"
        assert resp.headers["content-length"] == "300000"
        assert resp.content == _memory_blob(300000)
        assert client.get(flask_server.url + "/pid").status_code == 200


def test_send_file_empty(flask_server: ServerProcess) -> None:
    """A zero-length file through ``wsgi.file_wrapper`` is a normal, complete response."""
    client = RawClient(flask_server.connect())
    client.send(b"GET /download/empty HTTP/1.1\r\nHost: x\r\n\r\n")
    status, headers, body = client.response()
    assert status == 200 and headers["content-length"] == "0" and body == b""
    client.send(b"GET /pid HTTP/1.1\r\nHost: x\r\n\r\n")
    assert client.response()[0] == 200


def test_send_file_shorter_than_its_content_length_closes_the_connection(
    flask_server: ServerProcess,
) -> None:
    """The file yields 5 of the 10 declared bytes: the response cannot end cleanly, so the
    server must close the connection instead of writing the next response into the body."""
    sock = flask_server.connect()
    sock.sendall(b"GET /download/shrinking HTTP/1.1\r\nHost: x\r\n\r\n"
                 b"GET /pid HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = recv_all(sock, timeout=5)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"Content-Length: 10" in head
    assert body == b"01234", data


# -- concurrency -----------------------------------------------------------------------------
def test_slow_requests_run_concurrently_with_requests_threads(flask_server: ServerProcess) -> None:
    url = flask_server.url + "/slow"

    def fetch(_: int) -> dict[str, float]:
        with requests.get(url, timeout=10) as resp:
            assert resp.status_code == 200
            return resp.json()  # type: ignore[no-any-return]

    started = time.monotonic()
    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(fetch, range(20)))
    elapsed = time.monotonic() - started
    assert len(results) == 20 and all(r["slept"] >= 0.45 for r in results)
    assert len({r["pid"] for r in results}) == 1  # one worker process did them all
    assert elapsed < 5, f"20 x 0.5 s took {elapsed:.2f} s: sleeps are not cooperative"


def test_slow_requests_run_concurrently_with_httpx_async(flask_server: ServerProcess) -> None:
    async def main() -> float:
        limits = httpx.Limits(max_connections=20)
        async with httpx.AsyncClient(base_url=flask_server.url, limits=limits,
                                     timeout=10) as client:
            started = time.monotonic()
            responses = await asyncio.gather(*(client.get("/slow") for _ in range(20)))
            elapsed = time.monotonic() - started
        assert [r.status_code for r in responses] == [200] * 20
        return elapsed

    elapsed = asyncio.run(main())
    assert elapsed < 5, f"20 x 0.5 s took {elapsed:.2f} s: sleeps are not cooperative"


# -- sessions and errors ---------------------------------------------------------------------
def test_session_cookie_roundtrip_with_requests(flask_server: ServerProcess) -> None:
    with requests.Session() as http:
        assert http.get(flask_server.url + "/session/me").status_code == 401
        login = http.post(flask_server.url + "/session/login", data={"user": "ada"})
        assert "HttpOnly" in login.headers["Set-Cookie"]
        assert "session" in http.cookies
        assert http.get(flask_server.url + "/session/me").json() == {"user": "ada", "visits": 1}
        assert http.get(flask_server.url + "/session/me").json() == {"user": "ada", "visits": 2}
        http.post(flask_server.url + "/session/logout")
        assert http.get(flask_server.url + "/session/me").status_code == 401
    # Without the cookie jar, nobody is logged in.
    assert requests.get(flask_server.url + "/session/me").status_code == 401


def test_session_cookie_roundtrip_with_httpx(flask_server: ServerProcess) -> None:
    with httpx.Client(base_url=flask_server.url) as client:
        client.post("/session/login", data={"user": "grace"})
        assert client.get("/session/me").json() == {"user": "grace", "visits": 1}


def test_custom_error_handler_and_404(flask_server: ServerProcess) -> None:
    resp = requests.get(flask_server.url + "/pay?amount=42")
    assert resp.status_code == 402
    assert resp.json() == {"error": "payment required", "amount": 42}
    resp = requests.get(flask_server.url + "/no/such/page")
    assert resp.status_code == 404
    assert resp.json() == {"error": "not found", "path": "/no/such/page"}
    assert requests.post(flask_server.url + "/pid").status_code == 405


def test_flask_500_does_not_kill_the_worker(flask_server: ServerProcess) -> None:
    pid = requests.get(flask_server.url + "/pid").json()["pid"]
    with requests.Session() as http:
        for _ in range(3):
            resp = http.get(flask_server.url + "/boom")
            assert resp.status_code == 500
            assert resp.json() == {"error": "internal", "kind": "ValueError"}
        # Same keep-alive connection, same process: the worker lives on.
        assert http.get(flask_server.url + "/pid").json()["pid"] == pid
    assert flask_server.proc.poll() is None
    deadline = time.monotonic() + 5
    while "ValueError: flask view exploded" not in flask_server.logs():
        assert time.monotonic() < deadline, flask_server.logs()
        time.sleep(0.05)
    # Flask logs through ``wsgi.errors`` (the server's stderr).
    assert "Exception on /boom [GET]" in flask_server.logs()

