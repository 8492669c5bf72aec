"""``--protocol uwsgi``: the packet parser (sans-io), then real servers, then nginx's uwsgi_pass.

The nginx tests run only where an ``nginx`` binary is installed (Debian's is at
``/usr/sbin/nginx``); they start it unprivileged on 127.0.0.1 with a config of their own.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from master_helpers import wait_for

from conftest import RawClient, recv_all
from greenserve.protocol.events import (
    ConnectionClosed,
    Data,
    EndOfMessage,
    ProtocolError,
    Request,
    Response,
)
from greenserve.protocol.policy import Limits
from greenserve.protocol.uwsgi import UwsgiConnection, parse_vars


def packet(variables: dict[str, str], body: bytes = b"", modifier1: int = 0) -> bytes:
    """A uwsgi request packet, as nginx's uwsgi module builds it."""
    block = b""
    for name, value in variables.items():
        for item in (name.encode("latin-1"), value.encode("latin-1")):
            block += len(item).to_bytes(2, "little") + item
    return bytes([modifier1]) + len(block).to_bytes(2, "little") + b"\x00" + block + body


GET = {"REQUEST_METHOD": "GET", "REQUEST_URI": "/a%20b?x=1", "PATH_INFO": "/a b",
       "QUERY_STRING": "x=1", "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "example.com",
       "HTTP_X_REAL_IP": "10.1.2.3"}


def events_of(conn: UwsgiConnection, data: bytes = b"", eof: bool = False) -> list[object]:
    if data:
        conn.receive_data(data)
    if eof:
        conn.receive_data(b"")
    out: list[object] = []
    while (event := conn.next_event()) is not None:
        out.append(event)
        if isinstance(event, ProtocolError | ConnectionClosed):
            break
    return out


# -- sans-io ---------------------------------------------------------------------------------

def test_a_packet_becomes_a_request_with_headers_and_a_body() -> None:
    conn = UwsgiConnection(Limits())
    body = b"hello=world"
    variables = {**GET, "REQUEST_METHOD": "POST", "CONTENT_LENGTH": str(len(body)),
                 "CONTENT_TYPE": "application/x-www-form-urlencoded", "HTTPS": "on"}
    data = packet(variables, body)
    events = []
    for i in range(len(data)):  # byte by byte: every split of the packet works
        events += events_of(conn, data[i : i + 1])
    request = events[0]
    assert isinstance(request, Request)
    assert (request.method, request.target, request.http_version) == (
        b"POST", b"/a%20b?x=1", b"1.1")
    assert (b"X-REAL-IP", b"10.1.2.3") in request.headers
    assert (b"HOST", b"example.com") in request.headers
    assert (b"CONTENT-TYPE", b"application/x-www-form-urlencoded") in request.headers
    assert request.content_length == len(body) and not request.chunked
    assert request.scheme == "https" and request.keep_alive
    assert b"".join(e.data for e in events if isinstance(e, Data)) == body
    assert isinstance(events[-1], EndOfMessage)


def test_the_clients_transfer_encoding_is_not_this_hops() -> None:
    variables = {**GET, "HTTP_TRANSFER_ENCODING": "chunked", "CONTENT_LENGTH": "2"}
    events = events_of(UwsgiConnection(Limits()), packet(variables, b"ok"))
    request = events[0]
    assert isinstance(request, Request) and not request.chunked
    assert all(name != b"TRANSFER-ENCODING" for name, _ in request.headers)
    assert isinstance(events[1], Data) and events[1].data == b"ok"


def test_without_request_uri_the_target_is_rebuilt_from_path_info() -> None:
    variables = {k: v for k, v in GET.items() if k != "REQUEST_URI"}
    request = events_of(UwsgiConnection(Limits()), packet(variables))[0]
    assert isinstance(request, Request) and request.target == b"/a%20b?x=1"
    assert request.scheme is None


def test_responses_are_http11_never_chunked_and_keep_alive_works() -> None:
    conn = UwsgiConnection(Limits())
    events = events_of(conn, packet(GET) + packet({**GET, "REQUEST_URI": "/second"}))
    assert isinstance(events[0], Request) and isinstance(events[1], EndOfMessage)
    out = conn.send(Response(200, [(b"Content-Length", b"2")]))
    out += conn.send(Data(b"ok")) + conn.send(EndOfMessage())
    assert out.startswith(b"HTTP/1.1 200 OK\r\n") and out.endswith(b"\r\n\r\nok")
    conn.start_next_cycle()
    second = events_of(conn)[0]
    assert isinstance(second, Request) and second.target == b"/second"
    # No length: the body is sent as it is and the connection closes after it.
    out = conn.send(Response(200, []))
    out += conn.send(Data(b"streamed")) + conn.send(EndOfMessage())
    assert b"chunked" not in out.lower() and b"Connection: close\r\n" in out
    assert out.endswith(b"\r\n\r\nstreamed") and not conn.keep_alive


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (packet(GET, modifier1=5), 501),
        (b"\x00\x05\x00\x00\x03\x00abc", 400),  # the value's length is missing
        (packet({**GET, "CONTENT_LENGTH": "12x"}), 400),
        (packet({**GET, "REQUEST_METHOD": "GE T"}), 400),
    ],
)
def test_bad_packets_get_a_status(data: bytes, status: int) -> None:
    events = events_of(UwsgiConnection(Limits()), data)
    assert len(events) == 1 and isinstance(events[0], ProtocolError)
    assert events[0].status_code == status


def test_eof_before_a_packet_is_a_clean_close_and_inside_one_an_error() -> None:
    assert isinstance(events_of(UwsgiConnection(Limits()), eof=True)[0], ConnectionClosed)
    error = events_of(UwsgiConnection(Limits()), packet(GET)[:10], eof=True)[0]
    assert isinstance(error, ProtocolError) and error.status_code is None


def test_parse_vars_counts_and_bounds() -> None:
    assert parse_vars(b"") == {}
    block = packet({"A": "1", "B": ""})[4:]
    assert parse_vars(block) == {"A": "1", "B": ""}
    many = packet({f"K{i}": "v" for i in range(1001)})[4:]
    assert not isinstance(parse_vars(many), dict)  # 1001 variables: refused


# -- a real server ---------------------------------------------------------------------------

def test_wsgi_app_over_uwsgi(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve("--protocol", "uwsgi", "wsgi_apps:echo")
    client = RawClient(server.connect())
    body = b'{"a": 1}'
    client.send(packet({**GET, "REQUEST_METHOD": "PUT", "CONTENT_LENGTH": str(len(body)),
                        "CONTENT_TYPE": "application/json"}, body))
    status, headers, raw = client.response()
    echoed = json.loads(raw)
    assert status == 200 and headers["server"].startswith("greenserve/")
    assert echoed["method"] == "PUT" and echoed["path"] == "/a b"
    assert echoed["query"] == "x=1" and echoed["body"] == body.decode()
    assert echoed["headers"]["HTTP_X_REAL_IP"] == "10.1.2.3"
    assert echoed["headers"]["CONTENT_TYPE"] == "application/json"
    assert echoed["scheme"] == "http"
    client.send(packet({**GET, "HTTPS": "on"}))  # the same connection, kept alive
    status, _, raw = client.response()
    assert status == 200 and json.loads(raw)["scheme"] == "https"


def test_asgi_app_over_uwsgi(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve("--protocol", "uwsgi", "asgi_apps:app")
    client = RawClient(server.connect())
    client.send(packet({**GET, "REQUEST_URI": "/scope?y=2", "HTTPS": "on"}))
    status, _, raw = client.response()
    scope = json.loads(raw)
    assert status == 200 and scope["path"] == "/scope" and scope["scheme"] == "https"
    assert scope["query_string"] == "y=2" and scope["http_version"] == "1.1"


def test_peers_outside_uwsgi_allow_from_get_403(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve("--protocol", "uwsgi", "--uwsgi-allow-from", "10.0.0.0/8",
                   "wsgi_apps:echo")
    sock = server.connect()
    sock.sendall(packet(GET))
    reply = recv_all(sock)
    assert reply.startswith(b"HTTP/1.1 403 ") and reply.endswith(b"403 Forbidden\n")
    wait_for(lambda: "uwsgi requests are not allowed" in server.logs())


def test_an_http_request_on_a_uwsgi_listener_is_refused(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve("--protocol", "uwsgi", "wsgi_apps:echo")
    sock = server.connect()
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # 'G' is modifier1 71
    assert recv_all(sock).startswith(b"HTTP/1.1 501 ")


# -- behind nginx ----------------------------------------------------------------------------

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists()
                                  else None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[object]:
    """Factory: ``nginx(upstream_port)`` runs nginx with uwsgi_pass to it; its base URL."""
    if NGINX is None:
        pytest.skip("nginx is not installed")
    procs: list[subprocess.Popen[bytes]] = []

    def start(upstream: int) -> str:
        port = _free_port()
        (tmp_path / "logs").mkdir(exist_ok=True)
        conf = tmp_path / "nginx.conf"
        params = "\n".join(
            f"uwsgi_param {name} ${value};" for name, value in (
                ("QUERY_STRING", "query_string"), ("REQUEST_METHOD", "request_method"),
                ("CONTENT_TYPE", "content_type"), ("CONTENT_LENGTH", "content_length"),
                ("REQUEST_URI", "request_uri"), ("PATH_INFO", "document_uri"),
                ("SERVER_PROTOCOL", "server_protocol"), ("REMOTE_ADDR", "remote_addr"),
                ("SERVER_NAME", "server_name"), ("SERVER_PORT", "server_port")))
        conf.write_text(f"""
daemon off; master_process off; worker_processes 1;
error_log {tmp_path}/logs/error.log; pid {tmp_path}/nginx.pid;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp_path}/body; uwsgi_temp_path {tmp_path}/uwsgi;
    proxy_temp_path {tmp_path}/proxy; fastcgi_temp_path {tmp_path}/fcgi;
    scgi_temp_path {tmp_path}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{ {params} uwsgi_pass 127.0.0.1:{upstream}; }}
    }}
}}
""")
        proc = subprocess.Popen([NGINX, "-p", str(tmp_path), "-c", str(conf)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        procs.append(proc)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return f"http://127.0.0.1:{port}"
            except OSError:
                if proc.poll() is not None:
                    error = proc.stderr.read().decode() if proc.stderr else ""
                    pytest.fail(f"nginx did not start: {error}")
                time.sleep(0.05)
        pytest.fail("nginx did not listen within 10 s")

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stderr is not None:
            proc.stderr.close()


def test_wsgi_behind_nginx_uwsgi_pass(serve, nginx) -> None:  # type: ignore[no-untyped-def]
    server = serve("--protocol", "uwsgi", "wsgi_apps:routes")
    base = nginx(server.port)
    with requests.Session() as session:
        for _ in range(3):  # nginx opens a connection per request: each one is served
            reply = session.get(base + "/hello", timeout=10)
            assert reply.status_code == 200 and reply.text == "hello"
        streamed = session.get(base + "/stream", timeout=10)  # no Content-Length
        assert streamed.status_code == 200
        assert streamed.content == b"".join(b"chunk%d\n" % i for i in range(5))
    echo = serve("--protocol", "uwsgi", "wsgi_apps:echo")
    base = nginx(echo.port)
    data = b"x" * 100_000
    reply = requests.post(base + "/p%C3%A4th?q=%2F", data=data, timeout=10,
                          headers={"X-Custom": "yes", "Content-Type": "text/plain"})
    echoed = reply.json()
    assert reply.status_code == 200 and echoed["method"] == "POST"
    assert echoed["path"] == "/p\xc3\xa4th" and echoed["query"] == "q=%2F"
    assert echoed["body"] == data.decode() and echoed["headers"]["HTTP_X_CUSTOM"] == "yes"
    # A chunked upload: nginx reads it whole and passes a CONTENT_LENGTH.
    reply = requests.post(base + "/", data=iter([b"ab", b"cd"]), timeout=10)
    assert reply.json()["body"] == "abcd"
    assert reply.json()["headers"]["CONTENT_LENGTH"] == "4"
    assert "HTTP_TRANSFER_ENCODING" not in reply.json()["headers"]


def test_asgi_behind_nginx_uwsgi_pass(serve, nginx) -> None:  # type: ignore[no-untyped-def]
    server = serve("--protocol", "uwsgi", "asgi_apps:app")
    base = nginx(server.port)
    reply = requests.get(base + "/stream?n=4", timeout=10)
    assert reply.status_code == 200
    assert reply.text == "".join(f"part {i}\n" for i in range(4))
    reply = requests.post(base + "/echo", data=b"z" * 70_000, timeout=10)
    assert reply.status_code == 200 and reply.json()["body"] == "z" * 70_000
