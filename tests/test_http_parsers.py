"""The same wire scenarios against real servers run with ``--http-parser python`` and ``fast``.

Each parser gets one server for the ``routes`` app and one for ``echo``, shared by the tests
of this module (starting a server per test would double the suite's time). What differs
between the two parsers must not be visible on the wire; what ``--http-parser`` selects is
checked with an httptools that cannot be imported.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import PACKAGE_ROOT, TESTS, RawClient, ServerProcess, recv_all

PARSERS = ("python", "fast")


def _start(http_parser: str, app: str) -> ServerProcess:
    args = ["-w", "1", "-b", "127.0.0.1:0", "--http-parser", http_parser,
            "--header-timeout", "2", "--keep-alive", "2", app]
    return ServerProcess(args).wait_listening()


@pytest.fixture(scope="module", params=PARSERS)
def servers(request: pytest.FixtureRequest) -> Iterator[dict[str, ServerProcess]]:
    """``{"routes": ..., "echo": ...}`` servers running ``request.param``'s parser."""
    if request.param == "fast":
        pytest.importorskip("httptools")
    started: dict[str, ServerProcess] = {}
    try:
        started["routes"] = _start(request.param, "wsgi_apps:routes")
        started["echo"] = _start(request.param, "wsgi_apps:echo")
        yield started
    finally:
        for server in started.values():
            server.stop()


@pytest.fixture
def routes(servers: dict[str, ServerProcess]) -> ServerProcess:
    return servers["routes"]


@pytest.fixture
def echo(servers: dict[str, ServerProcess]) -> ServerProcess:
    return servers["echo"]


def _echoed(client: RawClient) -> dict[str, object]:
    status, _, body = client.response()
    assert status == 200, body
    data: dict[str, object] = json.loads(body)
    return data


def test_keep_alive(routes: ServerProcess) -> None:
    client = RawClient(routes.connect())
    for _ in range(3):
        client.send(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, body = client.response()
        assert (status, body) == (200, b"hello") and "connection" not in headers


def test_http10_keep_alive(routes: ServerProcess) -> None:
    client = RawClient(routes.connect())
    for _ in range(2):
        client.send(b"GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        status, headers, body = client.response()
        assert body == b"hello" and headers["connection"].lower() == "keep-alive"


def test_pipelining(echo: ServerProcess) -> None:
    client = RawClient(echo.connect())
    client.send(
        b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n"
        b"POST /two HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
        b"PUT /three HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\nde\r\n0\r\n\r\n"
        b"DELETE /four HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    seen = [(d["method"], d["path"], d["body"]) for d in (_echoed(client) for _ in range(4))]
    assert seen == [("GET", "/one", ""), ("POST", "/two", "abc"), ("PUT", "/three", "de"),
                    ("DELETE", "/four", "")]
    assert client.closed()


def test_chunked_upload_in_pieces(echo: ServerProcess) -> None:
    client = RawClient(echo.connect())
    pieces = [b"POST /up HTTP/1.1\r\nHost: x\r\nTrans", b"fer-Encoding: chunked\r\n\r\n5;e=1\r",
              b"\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: yes\r\n", b"\r\n"]
    for piece in pieces:  # the head arrives in pieces: the scanner's incremental path
        client.send(piece)
        time.sleep(0.02)
    data = _echoed(client)
    assert data["body"] == "hello world" and data["input_terminated"] is True


def test_expect_100_continue(echo: ServerProcess) -> None:
    client = RawClient(echo.connect())
    client.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
                b"Expect: 100-continue\r\n\r\n")
    assert client.response()[0] == 100
    client.send(b"data")
    assert _echoed(client)["body"] == "data"


def test_fields_as_sent(echo: ServerProcess) -> None:
    client = RawClient(echo.connect())
    cookie = b"c=" + b"v" * 6000  # a head too long for the scanner's one-pass shortcut
    client.send(b"GET /f?q=1 HTTP/1.1\r\nHost: example.org:8080\r\nX-Spaces:  a b \t\r\n"
                b"Cookie: " + cookie + b"\r\nX-Obs: caf\xe9\r\n\r\n")
    data = _echoed(client)
    headers = data["headers"]
    assert isinstance(headers, dict)
    assert headers["HTTP_X_SPACES"] == "a b" and headers["HTTP_COOKIE"] == cookie.decode()
    assert headers["HTTP_X_OBS"] == "caf\xe9" and data["query"] == "q=1"
    assert data["server"] == ["example.org", "8080"]


@pytest.mark.parametrize("method", [b"FOO", b"PRI", b"ANNOUNCE", b"PROPFIND"])
def test_methods_llhttp_does_not_know_reach_the_app(echo: ServerProcess, method: bytes) -> None:
    client = RawClient(echo.connect())
    client.send(method + b" /m HTTP/1.1\r\nHost: x\r\n\r\n")
    assert _echoed(client)["method"] == method.decode()


def test_absolute_form(echo: ServerProcess) -> None:
    client = RawClient(echo.connect())
    client.send(b"GET http://user:pw@example.com/a?b=c HTTP/1.1\r\nHost: example.com\r\n\r\n")
    data = _echoed(client)
    assert (data["path"], data["query"]) == ("/a", "b=c")


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
         b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
         b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\nx", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
        (b"GET / HTTP/1.1\nHost: x\n\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX : a\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX: \x7f\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
        (b"get / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET http://a\\@b/ HTTP/1.1\r\nHost: b\r\n\r\n", 400),
        (b"CONNECT a#b:443 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X: a\r\n" * 101 + b"\r\n", 431),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
         b"5 \r\nhello\r\n0\r\n\r\n", 400),
    ],
)
def test_bad_requests_get_a_status_and_a_close(
    echo: ServerProcess, raw: bytes, status: int
) -> None:
    sock = echo.connect()
    sock.sendall(raw + b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n")
    data = recv_all(sock)
    assert data.startswith(b"HTTP/1.1 %d " % status), data[:200]
    assert data.count(b"HTTP/1.1 ") == 1 and b"Connection: close" in data
    assert b"smuggled" not in data


# -- what --http-parser selects -------------------------------------------------------------


@pytest.fixture
def no_httptools(tmp_path: Path) -> dict[str, str]:
    """An environment in which ``import httptools`` fails."""
    fake = tmp_path / "httptools"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('httptools hidden by the test')\n")
    return {"PYTHONPATH": ":".join([str(tmp_path), str(TESTS / "apps"), str(PACKAGE_ROOT)])}


@pytest.mark.parametrize("http_parser", ["auto", "python"])
def test_without_httptools_auto_and_python_serve(
    serve, no_httptools: dict[str, str], http_parser: str  # type: ignore[no-untyped-def]
) -> None:
    server = serve("--http-parser", http_parser, "wsgi_apps:routes", env=no_httptools)
    client = RawClient(server.connect())
    client.send(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    assert client.response()[2] == b"hello"


def test_without_httptools_fast_fails_to_start(
    serve, no_httptools: dict[str, str]  # type: ignore[no-untyped-def]
) -> None:
    server = serve("--http-parser", "fast", "wsgi_apps:routes", env=no_httptools, wait=False)
    deadline = time.monotonic() + 20
    while server.proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.proc.poll() not in (None, 0), server.logs()
    assert server.has_logged("--http-parser fast needs httptools"), server.logs()
