"""HTTP/1.1 behaviour over a real socket: keep-alive, pipelining, framing, errors, limits."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import pytest
from master_helpers import children, wait_for

from conftest import RawClient, recv_all


@pytest.fixture
def server(serve):  # type: ignore[no-untyped-def]
    return serve("--header-timeout", "2", "--keep-alive", "2", "wsgi_apps:routes")


@pytest.fixture
def echo(serve):  # type: ignore[no-untyped-def]
    return serve("wsgi_apps:echo")


def test_keep_alive_serves_several_requests_on_one_connection(server) -> None:
    client = RawClient(server.connect())
    for _ in range(3):
        client.send(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, body = client.response()
        assert (status, body) == (200, b"hello")
        assert headers["server"].startswith("greenserve/")
        assert headers["date"].endswith("GMT")
        assert "connection" not in headers


def test_pipelined_requests_are_answered_in_order(server) -> None:
    client = RawClient(server.connect())
    client.send(
        b"GET /sleep?s=0.2 HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    assert client.response()[2] == b"slept"
    assert client.response()[2] == b"hello"
    assert client.response()[2] == b"".join(b"chunk%d\n" % i for i in range(5))


def test_chunked_response_when_length_unknown(server) -> None:
    client = RawClient(server.connect())
    client.send(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
    status, headers, body = client.response()
    assert headers["transfer-encoding"] == "chunked"
    assert body.count(b"chunk") == 5


def test_single_item_body_gets_content_length(server) -> None:
    client = RawClient(server.connect())
    client.send(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
    status, headers, body = client.response()
    assert headers["content-length"] == "10240" and len(body) == 10240


def test_a_body_short_of_its_content_length_goes_out_then_the_connection_closes(
        server) -> None:  # type: ignore[no-untyped-def]
    # The head, the body and its end leave in one write; when the end finds the body short,
    # what the app gave still goes out first, and the connection closes: the framing is
    # broken, so no further request may follow on it (the client sees a short body).
    sock = server.connect()
    sock.sendall(b"GET /short HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    data = recv_all(sock, timeout=5)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and b"Content-Length: 10" in head
    assert body == b"hello"  # five of ten bytes, then EOF; /hello never answered


def test_chunked_request_body_is_decoded(echo) -> None:
    client = RawClient(echo.connect())
    client.send(
        b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n"
    )
    status, _, body = client.response()
    data = json.loads(body)
    assert status == 200 and data["body"] == "hello world"
    assert "CONTENT_LENGTH" not in data["headers"] and data["input_terminated"] is True


def test_expect_100_continue_is_sent_only_when_the_app_reads(echo, serve) -> None:
    client = RawClient(echo.connect())
    client.send(
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
    )
    status, _, _ = client.response()
    assert status == 100
    client.send(b"data")
    status, _, body = client.response()
    assert status == 200 and json.loads(body)["body"] == "data"
    # An app that never reads the body: no 100, a final response straight away.
    other = serve("wsgi_apps:routes")
    client = RawClient(other.connect())
    client.send(
        b"POST /ignore-body HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
        b"Expect: 100-continue\r\n\r\n"
    )
    status, headers, body = client.response()
    assert status == 200 and body == b"ignored"


def test_head_has_no_body(server) -> None:
    client = RawClient(server.connect())
    client.send(b"HEAD /big HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    status, headers, body = client.response(head_only=True)
    assert status == 200 and headers["content-length"] == "10240"
    assert client.response()[2] == b"hello"  # the next response follows immediately


@pytest.mark.parametrize("code", ["204", "304"])
def test_no_body_statuses(serve, code: str) -> None:
    server = serve("wsgi_apps:routes")
    client = RawClient(server.connect())
    client.send(f"GET /status?code={code} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    client.send(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    status, headers, body = client.response()
    assert status == int(code) and body == b"" and "transfer-encoding" not in headers
    assert client.response()[2] == b"hello"


def test_connection_close_is_honoured(server) -> None:
    sock = server.connect()
    sock.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                 b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    data = recv_all(sock)
    assert data.count(b"HTTP/1.1 200") == 1 and b"Connection: close" in data


def test_http10_without_keep_alive_closes(server) -> None:
    sock = server.connect()
    sock.sendall(b"GET /stream HTTP/1.0\r\n\r\n")
    data = recv_all(sock)
    assert data.startswith(b"HTTP/1.1 200") and b"Transfer-Encoding" not in data
    assert data.endswith(b"chunk4\n")


def test_http10_keep_alive(server) -> None:
    client = RawClient(server.connect())
    for _ in range(2):
        client.send(b"GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        status, headers, body = client.response()
        assert body == b"hello" and headers["connection"].lower() == "keep-alive"


def test_absolute_form_target(echo) -> None:
    client = RawClient(echo.connect())
    client.send(b"GET http://example.com/a/b?c=d HTTP/1.1\r\nHost: example.com\r\n\r\n")
    data = json.loads(client.response()[2])
    assert (data["path"], data["query"]) == ("/a/b", "c=d")


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
         b"Transfer-Encoding: chunked\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX : a\r\n\r\n", 400),
        (b"GET / HTTP/1.1\nHost: x\n\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n", 400),
        (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
        (b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET /\x7f HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n\r\n", 400),
        (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 9000 + b"\r\n\r\n", 431),
        (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X: a\r\n" * 101 + b"\r\n", 431),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
         b"5 \r\nhello\r\n0\r\n\r\n", 400),
    ],
)
def test_bad_requests_get_a_status_and_a_close(echo, raw: bytes, status: int) -> None:
    sock = echo.connect()
    sock.sendall(raw + b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n")
    data = recv_all(sock)
    assert data.startswith(b"HTTP/1.1 %d " % status), data[:200]
    assert data.count(b"HTTP/1.1") == 1 and b"Connection: close" in data
    assert b"smuggled" not in data
    assert wait_for(lambda: f" {status} " in echo.logs() or "bad request" in echo.logs()), \
        echo.logs()


def test_slow_header_gets_408(server) -> None:
    sock = server.connect()
    sock.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n")
    started = time.monotonic()
    data = recv_all(sock)
    assert data.startswith(b"HTTP/1.1 408 ")
    assert time.monotonic() - started < 10


def test_idle_keep_alive_connection_is_closed(server) -> None:
    client = RawClient(server.connect())
    client.send(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    assert client.response()[0] == 200
    assert client.closed(timeout=8)


def test_keep_alive_timeout_counts_from_the_last_response(server) -> None:
    """Each wait gets the whole --keep-alive time (2 s), however long the connection lived.

    A regression test: a reused libev timer once counted only what was left of the previous
    wait, so a busy connection was cut after 2 s of waits in total, racing its next request.
    """
    client = RawClient(server.connect())
    for _ in range(12):  # 12 x 0.3 s of waiting: well past 2 s in total
        client.send(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        assert client.response()[0] == 200
        time.sleep(0.3)
    client.send(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    assert client.response()[0] == 200


def test_bytes_that_arrive_while_the_app_waits_are_read_afterwards(server) -> None:
    """The keep-alive watcher stays started while the app runs; a request (or EOF) that
    arrives meanwhile must still be read once the app is done, and the next wait works."""
    client = RawClient(server.connect())
    client.send(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    assert client.response()[2] == b"hello"  # the connection now waits with its watcher
    client.send(b"GET /sleep?s=0.3 HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.1)  # the app is asleep: the next request arrives during it
    client.send(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    assert client.response()[2] == b"slept"
    assert client.response()[2] == b"hello"
    client.send(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    assert client.response()[2] == b"hello"
    client.send(b"GET /sleep?s=0.3 HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.1)
    client.sock.shutdown(socket.SHUT_WR)  # EOF while the app sleeps
    assert client.response()[2] == b"slept"
    assert client.closed(timeout=5)


def test_a_misbehaving_client_does_not_disturb_others(server) -> None:
    bad = server.connect()
    bad.sendall(b"GET /tracked?n=50&d=0.01 HTTP/1.1\r\nHost: x\r\n\r\n")
    bad.recv(10)
    bad.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    bad.close()  # RST in the middle of a streamed response
    client = RawClient(server.connect())
    client.send(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    assert client.response()[2] == b"hello"


def test_unix_socket_and_tcp_listeners_together(serve, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "gs.sock"
    server = serve("-b", f"unix:{path}", "wsgi_apps:echo")  # plus the fixture's 127.0.0.1:0
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.sockets.append(unix)
    unix.connect(str(path))
    client = RawClient(unix)
    client.send(b"GET /over-unix HTTP/1.1\r\nHost: example.org:8080\r\n\r\n")
    data = json.loads(client.response()[2])
    assert data["path"] == "/over-unix" and data["remote"] == ["", ""]
    assert data["server"] == ["example.org", "8080"]
    tcp = RawClient(server.connect())
    tcp.send(b"GET /over-tcp HTTP/1.1\r\nHost: x\r\n\r\n")
    assert json.loads(tcp.response()[2])["path"] == "/over-tcp"


def test_ipv6_loopback(serve) -> None:  # type: ignore[no-untyped-def]
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        probe = socket.socket(socket.AF_INET6)
        probe.bind(("::1", 0))
        probe.close()
    except OSError:
        pytest.skip("::1 is not configured on this machine")
    server = serve("wsgi_apps:echo", bind="[::1]:0")
    assert server.url.startswith("http://[::1]:")
    sock = socket.create_connection(("::1", server.port), timeout=10)
    server.sockets.append(sock)
    client = RawClient(sock)
    client.send(b"GET /v6 HTTP/1.1\r\nHost: [::1]\r\n\r\n")
    data = json.loads(client.response()[2])
    assert data["remote"][0] == "::1" and data["server"] == ["[::1]", "80"]


@pytest.mark.parametrize("parser", ["fast", "python"])
def test_http_versions_over_the_wire(serve, parser: str) -> None:  # type: ignore[no-untyped-def]
    """HTTP/1.2 is served as 1.1 (RFC 9112 2.6, as gunicorn takes 1.0-1.9); HTTP/2.0 on an
    HTTP/1 connection is 505 unless --permit-unconventional-http-version, then 1.1 too."""
    strict = serve("--http-parser", parser, "wsgi_apps:echo")
    client = RawClient(strict.connect())
    client.send(b"GET /a HTTP/1.2\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n")
    status, _, body = client.response()
    assert status == 200 and json.loads(body)["protocol"] == "HTTP/1.1"
    assert client.response()[0] == 200  # kept alive, like 1.1
    sock = strict.connect()
    sock.sendall(b"GET / HTTP/2.0\r\nHost: x\r\n\r\n")
    assert recv_all(sock).startswith(b"HTTP/1.1 505 ")

    lenient = serve("--http-parser", parser, "--permit-unconventional-http-version",
                    "wsgi_apps:echo")
    client = RawClient(lenient.connect())
    client.send(b"GET / HTTP/2.0\r\nHost: x\r\n\r\n")
    status, _, body = client.response()
    assert status == 200 and json.loads(body)["protocol"] == "HTTP/1.1"
    sock = lenient.connect()
    sock.sendall(b"GET / HTTP/0.9\r\nHost: x\r\n\r\n")
    reply = recv_all(sock)  # served as HTTP/1.0: answered, then closed
    assert reply.startswith(b"HTTP/1.1 200 ") and b'"protocol": "HTTP/1.0"' in reply


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.parametrize(("app", "slow"), [("wsgi_apps:routes", b"/sleep?s=1"),
                                           ("asgi_apps:app", b"/sleep?s=1")],
                         ids=["wsgi", "asgi"])
def test_a_request_pipelined_behind_a_slow_one_does_not_spin_the_worker(
        serve, app: str, slow: bytes) -> None:  # type: ignore[no-untyped-def]
    # The second request is readable for the whole second the first one runs, with nobody
    # waiting for it: the connection's level-triggered watcher must stop after a few hub
    # iterations (connection._readable), not fire on every one.
    server = serve(app)
    (worker,) = wait_for(lambda: children(server.proc.pid) or None)
    client = RawClient(server.connect())
    client.send(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")  # warm: imports, first request
    client.response()
    before = _cpu_seconds(worker)
    client.send(b"GET " + slow + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.1)  # the server has read the first request: the second waits in the kernel
    client.send(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    assert client.response()[0] == 200
    assert client.response()[0] in (200, 404)  # (the ASGI app answers /hello with its scope)
    assert _cpu_seconds(worker) - before < 0.3  # a spinning hub burns the whole second
