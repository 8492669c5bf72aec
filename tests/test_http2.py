"""HTTP/2: TLS with ALPN, h2c by prior knowledge and by Upgrade, WSGI and ASGI, through real
clients (httpx, curl, and tests/h2client.py on the h2 package for frame-level checks)."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import h2.errors
import h2.settings
import httpx
import pytest
from h2client import H2Client, Reply
from master_helpers import wait_for

from conftest import PACKAGE_ROOT, ServerProcess

H2C = ("--http-protocols", "h2,h1", "--http2-cleartext", "both")


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    try:
        subprocess.run(["openssl", "version"], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("the openssl command is needed to make a test certificate")
    directory = tmp_path_factory.mktemp("h2certs")
    key, pem = directory / "key.pem", directory / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-keyout", str(key), "-out", str(pem), "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return key, pem


def _trust(pem: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(pem))


def _h2c_client() -> httpx.Client:
    return httpx.Client(http1=False, http2=True, timeout=10)


# -- negotiation -----------------------------------------------------------------------------
def test_tls_alpn_serves_http2_and_http1(serve, cert) -> None:  # type: ignore[no-untyped-def]
    key, pem = cert
    server = serve("--http-protocols", "h2,h1", "--certfile", str(pem), "--keyfile", str(key),
                   "wsgi_apps:echo")
    url = f"https://127.0.0.1:{server.port}/path?q=1"
    with httpx.Client(http2=True, verify=_trust(pem), timeout=10) as client:
        response = client.post(url, content=b"payload")
    assert response.http_version == "HTTP/2"
    data = response.json()
    assert data["protocol"] == "HTTP/2.0"
    assert data["scheme"] == "https"
    assert data["headers"]["HTTP_HOST"] == f"127.0.0.1:{server.port}"
    assert data["body"] == "payload" and data["path"] == "/path" and data["query"] == "q=1"
    assert response.headers["server"].startswith("greenserve/")
    assert "date" in response.headers
    with httpx.Client(http2=False, verify=_trust(pem), timeout=10) as client:
        plain = client.get(url)
    assert plain.http_version == "HTTP/1.1" and plain.json()["protocol"] == "HTTP/1.1"


def test_without_h2_in_protocols_alpn_offers_only_http1(serve, cert) -> None:  # type: ignore[no-untyped-def]
    key, pem = cert
    server = serve("--certfile", str(pem), "--keyfile", str(key), "wsgi_apps:echo")
    with httpx.Client(http2=True, verify=_trust(pem), timeout=10) as client:
        response = client.get(f"https://127.0.0.1:{server.port}/")
    assert response.http_version == "HTTP/1.1"


def test_h2c_prior_knowledge(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve(*H2C, "wsgi_apps:echo")
    with _h2c_client() as client:
        response = client.get(f"http://127.0.0.1:{server.port}/x")
    assert response.http_version == "HTTP/2"
    assert response.json()["protocol"] == "HTTP/2.0"
    # and plain HTTP/1.1 still works in "both" mode
    assert httpx.get(f"http://127.0.0.1:{server.port}/y").json()["protocol"] == "HTTP/1.1"


def test_prior_knowledge_only_refuses_http1(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve("--http-protocols", "h2", "--http2-cleartext", "prior-knowledge",
                   "wsgi_apps:echo")
    assert httpx.get(f"http://127.0.0.1:{server.port}/").status_code == 400
    assert server.has_logged("expected the HTTP/2 connection preface")
    with _h2c_client() as client:
        assert client.get(f"http://127.0.0.1:{server.port}/").status_code == 200


def test_h2c_only_for_trusted_peers(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve(*H2C, "--forwarded-allow-ips", "10.9.9.9", "wsgi_apps:echo")
    client = H2Client(server.connect())
    data = b""
    while b"\r\n\r\n" not in data:  # the preface read as an HTTP/1 request: refused
        chunk = client.sock.recv(65536)
        if not chunk:
            break
        data += chunk
    assert data.startswith(b"HTTP/1.1 505")  # HTTP/2.0 in an HTTP/1 request line


def test_h2c_upgrade_makes_the_request_stream_1(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve(*H2C, "wsgi_apps:echo")
    sock = server.connect()
    client = H2Client(sock, upgraded=True)
    settings = client.conn.initiate_upgrade_connection()
    sock.sendall(b"POST /up HTTP/1.1\r\nHost: example.test\r\nContent-Length: 5\r\n"
                 b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
                 b"HTTP2-Settings: " + settings + b"\r\n\r\nhello")
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert b"Upgrade: h2c" in head
    client.flush()
    client.replies[1] = Reply()
    reply = client.response(1)
    data = json.loads(reply.body)
    assert reply.status == 200
    assert data["protocol"] == "HTTP/2.0" and data["body"] == "hello"
    assert data["headers"]["HTTP_HOST"] == "example.test"
    assert "HTTP_UPGRADE" not in data["headers"] and "HTTP_HTTP2_SETTINGS" not in data["headers"]
    assert client.get("/next").status == 200  # the connection goes on as HTTP/2


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs the curl command")
def test_curl_upgrade_and_prior_knowledge(serve) -> None:  # type: ignore[no-untyped-def]
    if "HTTP2" not in subprocess.run(["curl", "--version"], capture_output=True,
                                     text=True).stdout:
        pytest.skip("this curl has no HTTP/2")
    server = serve(*H2C, "wsgi_apps:echo")
    url = f"http://127.0.0.1:{server.port}/c"
    for flag in ("--http2", "--http2-prior-knowledge"):
        out = subprocess.run(["curl", "-s", flag, "-w", "\n%{http_version}", url],
                             capture_output=True, text=True, timeout=20).stdout
        body, version = out.rsplit("\n", 1)
        assert version == "2", flag
        assert json.loads(body)["protocol"] == "HTTP/2.0"


# -- streams ---------------------------------------------------------------------------------
def test_streams_run_concurrently(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve(*H2C, "wsgi_apps:routes")
    client = H2Client(server.connect())
    started = time.monotonic()
    ids = [client.request("/sleep?s=0.5") for _ in range(8)]
    replies = [client.response(i) for i in ids]
    elapsed = time.monotonic() - started
    assert [r.body for r in replies] == [b"slept"] * 8
    # One after another would take 4 s; on one connection they overlap.
    assert elapsed < 3.0, elapsed


def test_large_bodies_both_ways_under_flow_control(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve(*H2C, "wsgi_apps:echo")
    payload = bytes(range(256)) * 4096  # 1 MiB: sixteen initial windows
    with _h2c_client() as client:
        response = client.post(f"http://127.0.0.1:{server.port}/", content=payload)
    assert response.json()["body"].encode("latin-1") == payload
    # A client with a 1 KiB window gets the whole response, window by window.
    client2 = H2Client(server.connect(), window=1024)
    reply = client2.get("/", method="POST", body=payload)
    assert json.loads(reply.body)["body"].encode("latin-1") == payload


def test_settings_are_announced(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve(*H2C, "--http2-max-concurrent-streams", "7",
                   "--http2-initial-window-size", "100000", "wsgi_apps:echo")
    client = H2Client(server.connect())
    client.get("/")
    codes = h2.settings.SettingCodes
    assert client.remote_settings[codes.MAX_CONCURRENT_STREAMS] == 7
    assert client.remote_settings[codes.INITIAL_WINDOW_SIZE] == 100000


@pytest.mark.parametrize(("raw", "status"), [
    ([(b":method", b"get")], 400),  # unconventional method
    ([(b":method", b"GET"), (b"x-long", b"v" * 9000)], 431),
    ([(b":method", b"GET"), *[(b"x-h%d" % i, b"v") for i in range(101)]], 431),
    ([(b":method", b"GET"), (b"content-type", b"a"), (b"content-type", b"b")], 400),
])
def test_bad_heads_get_a_status(serve, raw, status) -> None:  # type: ignore[no-untyped-def]
    server = serve(*H2C, "wsgi_apps:echo")
    client = H2Client(server.connect())
    method, extra = raw[0], raw[1:]
    headers = [method, (b":scheme", b"http"), (b":authority", b"127.0.0.1"),
               (b":path", b"/"), *extra]
    reply = client.get("/", raw=headers)
    assert reply.status == status
    assert client.get("/").status == 200  # the connection serves on
    assert server.has_logged(f"bad request from 127.0.0.1: {status}")


@pytest.mark.parametrize("extra", [
    [(b"host", b"other.test")],  # Host differs from :authority
    [(b"Upper", b"1")],
    [(b"connection", b"keep-alive")],
    [(b"te", b"gzip")],
    [(b"x-space", b" padded")],
    [(b":path", b"/again")],  # a repeated pseudo-header
    [(b"x-a", b"1"), (b":scheme", b"http")],  # a pseudo-header after a field
])
def test_malformed_heads_get_400(serve, extra) -> None:  # type: ignore[no-untyped-def]
    """What RFC 9113 calls malformed: a 400 on the stream (gunicorn resets it)."""
    server = serve(*H2C, "wsgi_apps:echo")
    client = H2Client(server.connect())
    raw = [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"127.0.0.1"),
           (b":path", b"/")]
    if extra[-1][0].startswith(b":"):
        raw = [*raw[:1], *raw[2:], *extra] if extra[-1][0] == b":scheme" else [*raw, *extra]
    else:
        raw = [*raw, *extra]
    assert client.get("/", raw=raw).status == 400
    assert client.get("/").status == 200


def test_body_length_mismatch_ends_the_connection(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve(*H2C, "wsgi_apps:echo")
    client = H2Client(server.connect())
    client.request("/", method="POST", headers=[("content-length", "5")], body=b"abc")
    goaway = client.until_goaway()
    assert goaway is not None and goaway.error_code == h2.errors.ErrorCodes.PROTOCOL_ERROR
    assert server.has_logged("HTTP/2 protocol error from 127.0.0.1")


def test_long_path_is_414(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve(*H2C, "wsgi_apps:echo")
    client = H2Client(server.connect())
    assert client.get("/" + "a" * 5000).status == 414


def test_client_reset_ends_the_app_and_spares_the_connection(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve(*H2C, "wsgi_apps:routes")
    client = H2Client(server.connect())
    stream_id = client.request("/tracked?name=h2reset&n=200&d=0.02")
    while not client.replies[stream_id].body:
        client.pump()
    client.conn.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
    client.flush()
    deadline = time.monotonic() + 10
    while b"h2reset" not in client.get("/closed").body:
        assert time.monotonic() < deadline, "the app's iterable was never closed"
        time.sleep(0.05)


def test_reset_flood_is_calmed(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve(*H2C, "--http2-max-concurrent-streams", "1000", "wsgi_apps:routes")
    client = H2Client(server.connect())
    for _ in range(210):
        stream_id = client.conn.get_next_available_stream_id()
        client.conn.send_headers(stream_id, [(b":method", b"GET"), (b":scheme", b"http"),
                                             (b":authority", b"a"), (b":path", b"/hello")])
        client.conn.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
    client.flush()
    goaway = client.until_goaway()
    assert goaway is not None
    assert goaway.error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
    assert server.has_logged("HTTP/2 flood of stream resets")


def test_app_errors(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve(*H2C, "wsgi_apps:routes")
    client = H2Client(server.connect())
    assert client.get("/error-before").status == 500
    broken = client.get("/error-after")
    assert broken.reset == h2.errors.ErrorCodes.INTERNAL_ERROR  # the head was out
    assert client.get("/hello").body == b"hello"


def test_idle_connection_gets_goaway(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve(*H2C, "--keep-alive", "1", "wsgi_apps:routes")
    client = H2Client(server.connect())
    client.get("/hello")
    started = time.monotonic()
    goaway = client.until_goaway()
    assert goaway is not None and goaway.error_code == h2.errors.ErrorCodes.NO_ERROR
    assert time.monotonic() - started < 5


def test_graceful_stop_finishes_streams_and_says_goaway(serve, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server: ServerProcess = serve(*H2C, "wsgi_apps:routes")
    client = H2Client(server.connect())
    started = tmp_path / "started"
    stream_id = client.request(f"/sleep?s=1&started={started}")
    wait_for(started.exists)  # the stream is in the app (the worker may still be booting)
    server.signal(signal.SIGTERM)
    reply = client.response(stream_id)
    assert reply.status == 200 and reply.body == b"slept"
    assert client.until_goaway() is not None
    assert client.goaway is not None and client.goaway.last_stream_id == stream_id
    assert server.wait(20) == 0


def test_access_log_line(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve(*H2C, "--access-logfile", "-", "wsgi_apps:routes")
    client = H2Client(server.connect())
    client.get("/hello")
    assert server.has_logged('"GET /hello HTTP/2.0" 200')


def test_streams_count_toward_max_requests(serve) -> None:  # type: ignore[no-untyped-def]
    """The worker restarts after --max-requests streams: GOAWAY, then a new worker."""
    server = serve(*H2C, "--max-requests", "3", "wsgi_apps:routes")
    client = H2Client(server.connect())
    first = client.get("/pid").body
    for _ in range(2):
        assert client.get("/hello").body == b"hello"
    assert client.until_goaway() is not None
    assert server.has_logged("Autorestarting worker after current request")
    deadline = time.monotonic() + 20
    while True:
        try:
            other = H2Client(server.connect()).get("/pid").body
        except OSError:
            other = first
        if other != first:
            break
        assert time.monotonic() < deadline, "no new worker"
        time.sleep(0.2)


def test_request_timeout_answers_504(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve(*H2C, "--request-timeout", "0.5", "wsgi_apps:routes")
    client = H2Client(server.connect())
    assert client.get("/sleep?s=3").status == 504


# -- ASGI ------------------------------------------------------------------------------------
def test_asgi_over_http2(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve(*H2C, "asgi_apps:app")
    base = f"http://127.0.0.1:{server.port}"
    with _h2c_client() as client:
        scope = client.get(f"{base}/scope?x=1").json()
        assert scope["http_version"] == "2"
        assert set(scope["extensions"]) == {"http.response.pathsend", "http.response.trailers",
                                             "http.response.early_hint"}
        source = Path(__file__).parent / "apps" / "asgi_apps.py"
        sent = client.get(f"{base}/pathsend")  # the file, sent as DATA frames
        assert sent.status_code == 200 and sent.content == source.read_bytes()
        assert sent.headers["content-type"] == "text/x-python"
        payload = b"z" * 300_000
        echoed = client.post(f"{base}/echo", content=payload).json()
        assert echoed["body"].encode("latin-1") == payload
        streamed = client.get(f"{base}/stream?n=4&delay=0.01")
        assert streamed.text == "".join(f"part {i}\n" for i in range(4))
        assert client.get(f"{base}/big?mb=2").content == b"x" * (2 << 20)
        assert client.get(f"{base}/raise-before").status_code == 500


def test_asgi_trailers_hints_and_reset(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve(*H2C, "asgi_apps:app")
    client = H2Client(server.connect())
    reply = client.get("/trailers")
    assert reply.body == b"abcdef" and (b"x-checksum", b"42") in reply.trailers
    hinted = client.get("/early-hint")
    assert hinted.informational and hinted.informational[0][0] == (b":status", b"103")
    assert hinted.status == 200
    assert client.get("/raise-after").reset == h2.errors.ErrorCodes.INTERNAL_ERROR
    # a client that resets a stream the app waits on: the app hears http.disconnect
    stream_id = client.request("/wait-disconnect")
    time.sleep(0.2)
    client.conn.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
    client.flush()
    deadline = time.monotonic() + 10
    while True:
        events = json.loads(client.get("/events").body)
        if any(e["path"] == "/wait-disconnect" for e in events):
            break
        assert time.monotonic() < deadline, events
        time.sleep(0.05)
    assert [e["event"] for e in events if e["path"] == "/wait-disconnect"] == ["http.disconnect"]


def test_asgi_streams_run_concurrently(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve(*H2C, "asgi_apps:app")
    client = H2Client(server.connect())
    started = time.monotonic()
    ids = [client.request("/sleep?s=0.5") for _ in range(8)]
    assert all(client.response(i).status == 200 for i in ids)
    assert time.monotonic() - started < 3.0


# -- settings ----------------------------------------------------------------------------------
def test_settings_errors_and_warnings(serve, tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = ServerProcess(["--http-protocols", "h3", "wsgi_apps:echo"])
    assert bad.wait(20) != 0
    bad.stop()
    assert "Invalid protocol 'h3'. Valid protocols: h1, h2" in bad.logs()
    assert "Traceback" not in bad.logs()
    server = serve("--http-protocols", "h2", "wsgi_apps:echo")
    assert server.has_logged("HTTP/2 will never be negotiated")
    # an h2 package that is too old (a stand-in on PYTHONPATH) is a one-line start error
    fake = tmp_path / "h2"
    fake.mkdir()
    (fake / "__init__.py").write_text("__version__ = '3.2.0'\n")
    old = ServerProcess(["--http-protocols", "h2,h1", "wsgi_apps:echo"],
                        env={"PYTHONPATH": f"{tmp_path}:{Path(__file__).parent / 'apps'}:"
                             f"{PACKAGE_ROOT}"})
    assert old.wait(20) != 0
    old.stop()
    assert "the h2 package (4.1 or later) is not installed" in old.logs()
    assert "Traceback" not in old.logs()


def test_fastapi_over_tls_http2_many_concurrent_requests(serve, cert) -> None:  # type: ignore[no-untyped-def]
    """A real framework with a lifespan database, 200 requests over one HTTP/2 connection."""
    key, pem = cert
    server = serve("--http-protocols", "h2,h1", "--certfile", str(pem), "--keyfile", str(key),
                   "asgi_fastapi:app")
    base = f"https://127.0.0.1:{server.port}"

    async def run() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=1)
        async with httpx.AsyncClient(http2=True, verify=_trust(pem), timeout=20,
                                     limits=limits) as client:
            created = await client.post(f"{base}/items", json={"name": "pen", "price": 2.5},
                                        headers={"x-user": "ann"})
            assert created.json() == {"item": {"name": "pen", "price": 2.5, "tags": []},
                                      "user": "ann", "total": 5.0}
            return list(await asyncio.gather(
                *(client.get(f"{base}/items/{i % 100}") for i in range(200))))

    responses = asyncio.run(run())
    assert {r.http_version for r in responses} == {"HTTP/2"}
    assert [r.json()["name"] for r in responses] == [f"item-{i % 100}" for i in range(200)]


def test_embedded_server_speaks_h2c() -> None:
    from greenserve import Server

    def app(environ, start_response):  # type: ignore[no-untyped-def]
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [environ["SERVER_PROTOCOL"].encode()]

    with Server(app, http_protocols="h2,h1", http2_cleartext="both") as server, \
            _h2c_client() as client:
        response = client.get(server.url + "/")
    assert response.http_version == "HTTP/2" and response.text == "HTTP/2.0"


def test_streams_beyond_the_limit_are_refused(serve) -> None:  # type: ignore[no-untyped-def]
    """A client that opens more streams than announced (before it read the SETTINGS)."""
    server = serve(*H2C, "--http2-max-concurrent-streams", "2", "wsgi_apps:routes")
    client = H2Client(server.connect())
    ids = [client.request("/sleep?s=0.3") for _ in range(4)]
    replies = [client.response(i) for i in ids]
    served = [r for r in replies if r.reset is None]
    refused = [r for r in replies if r.reset is not None]
    assert len(served) >= 2 and all(r.body == b"slept" for r in served)
    assert all(r.reset == h2.errors.ErrorCodes.REFUSED_STREAM for r in refused)
    assert client.get("/hello").body == b"hello"  # the connection serves on


def test_h2c_after_a_proxy_header(serve) -> None:  # type: ignore[no-untyped-def]
    """The preface may arrive in the same packet as the PROXY header."""
    server = serve(*H2C, "--proxy-protocol", "v1", "wsgi_apps:echo")

    class Prefixed:  # the PROXY line goes out in one send with the client's preface
        def __init__(self, sock: socket.socket) -> None:
            self.sock, self.first = sock, b"PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\r\n"

        def sendall(self, data: bytes) -> None:
            self.sock.sendall(self.first + data)
            self.first = b""

        def __getattr__(self, name: str) -> object:
            return getattr(self.sock, name)

    client = H2Client(Prefixed(server.connect()))  # type: ignore[arg-type]
    data = json.loads(client.get("/").body)
    assert data["protocol"] == "HTTP/2.0"
    assert data["remote"] == ["203.0.113.7", "5555"]


def test_a_client_that_never_opens_its_window_is_reset_after_timeout(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve(*H2C, "--timeout", "1", "wsgi_apps:routes")
    client = H2Client(server.connect(), window=0)
    stream_id = client.request("/big")
    reply = client.response(stream_id, timeout=15)
    assert reply.status == 200 and reply.body == b""
    assert reply.reset == h2.errors.ErrorCodes.CANCEL
    other = H2Client(server.connect())
    assert other.get("/hello").body == b"hello"  # the worker is fine


def test_answer_before_the_body_stops_the_upload(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve(*H2C, "wsgi_apps:routes")
    client = H2Client(server.connect())
    stream_id = client.request("/ignore-body", method="POST", end=False)
    client.conn.send_data(stream_id, b"x" * 1000)
    client.flush()
    reply = client.response(stream_id)
    assert reply.status == 200 and reply.body == b"ignored"
    while reply.reset is None:  # then RST_STREAM(NO_ERROR): stop sending (RFC 9113 8.1)
        client.pump()
    assert reply.reset == h2.errors.ErrorCodes.NO_ERROR
    assert client.get("/hello").body == b"hello"


def test_an_overlong_frame_is_refused_before_it_is_buffered(serve) -> None:  # type: ignore[no-untyped-def]
    """h2 alone would buffer all 16 MiB a frame header announces before checking it."""
    server = serve(*H2C, "wsgi_apps:routes")
    client = H2Client(server.connect())
    client.sock.sendall(b"\xff\xff\xff\x00\x00\x00\x00\x00\x01" + b"x" * 20000)
    goaway = client.until_goaway()
    assert goaway is not None and goaway.error_code == h2.errors.ErrorCodes.FRAME_SIZE_ERROR
    assert server.has_logged("HTTP/2 frame over the maximum size from 127.0.0.1")
    assert H2Client(server.connect()).get("/hello").body == b"hello"


def test_garbage_after_the_preface_is_a_goaway(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve(*H2C, "wsgi_apps:routes")
    client = H2Client(server.connect())
    client.sock.sendall(b"\x00\x00\x04\x01\x05\x00\x00\x00\x00nope")  # HEADERS on stream 0
    goaway = client.until_goaway()
    assert goaway is not None and goaway.error_code == h2.errors.ErrorCodes.PROTOCOL_ERROR
    assert H2Client(server.connect()).get("/hello").body == b"hello"


def test_asgi_send_waits_for_a_client_that_does_not_read(serve) -> None:  # type: ignore[no-untyped-def]
    """Backpressure on HTTP/2 is the client's window: send() waits once it is used up."""
    server = serve(*H2C, "asgi_apps:app")
    reader = H2Client(server.connect())
    reader.auto_ack = False  # reads frames but never gives the window back
    stream_id = reader.request("/big?mb=8")
    deadline = time.monotonic() + 10
    while len(reader.replies[stream_id].body) < 65535 and time.monotonic() < deadline:
        reader.pump()
    time.sleep(0.5)
    watcher = H2Client(server.connect())
    progress = json.loads(watcher.get("/progress").body)
    # 64 KiB chunks: the initial window (64 KiB - 1) and the kernel's buffers hold a few;
    # without backpressure all 128 would be accepted at once.
    assert progress["chunks"] < 16, progress
    reader.auto_ack = True  # read again: the rest flows
    reader.conn.acknowledge_received_data(len(reader.replies[stream_id].body), stream_id)
    reader.flush()
    reply = reader.response(stream_id, timeout=20)
    assert len(reply.body) == 8 << 20
