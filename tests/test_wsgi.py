"""PEP 3333 behaviour, end to end with real clients (requests, httpx, raw sockets)."""

from __future__ import annotations

import json
import time

import httpx
import pytest
import requests

from conftest import RawClient, recv_all


@pytest.fixture
def echo(serve):  # type: ignore[no-untyped-def]
    return serve("wsgi_apps:echo")


@pytest.fixture
def routes(serve):  # type: ignore[no-untyped-def]
    return serve("wsgi_apps:routes")


def test_environ_with_requests(echo) -> None:
    url = echo.url + "/p%C3%A4th/a%2Fb?x=1&y=%20"
    resp = requests.post(url, data=b"payload", headers={"X-Custom": "v", "Content-Type": "text/x"})
    assert resp.status_code == 200
    data = resp.json()
    # PEP 3333: PATH_INFO is the percent-decoded bytes, read as latin-1.
    assert data["path"] == "/p\u00c3\u00a4th/a/b"
    assert data["query"] == "x=1&y=%20"
    assert data["raw_uri"] == "/p%C3%A4th/a%2Fb?x=1&y=%20"
    assert data["headers"]["HTTP_X_CUSTOM"] == "v"
    assert data["headers"]["CONTENT_TYPE"] == "text/x"
    assert data["headers"]["CONTENT_LENGTH"] == "7"
    assert data["body"] == "payload"
    assert data["remote"][0] == "127.0.0.1" and data["remote"][1].isdigit()
    assert data["server"] == ["127.0.0.1", str(echo.port)]
    assert data["scheme"] == "http" and data["protocol"] == "HTTP/1.1"
    assert (data["multithread"], data["multiprocess"], data["run_once"]) == (True, False, False)


def test_repeated_headers_are_joined_and_underscores_dropped(echo) -> None:
    client = RawClient(echo.connect())
    client.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nX-A: 2\r\nX_A: spoof\r\n"
                b"Cookie: a=1\r\nCookie: b=2\r\n\r\n")
    headers = json.loads(client.response()[2])["headers"]
    assert headers["HTTP_X_A"] == "1,2"
    assert headers["HTTP_COOKIE"] == "a=1; b=2"


def test_header_map_refuse(serve) -> None:
    server = serve("--header-map", "refuse", "wsgi_apps:echo")
    client = RawClient(server.connect())
    client.send(b"GET / HTTP/1.1\r\nHost: x\r\nX_A: spoof\r\n\r\n")
    assert client.response()[0] == 400


def test_header_map_dangerous(serve) -> None:
    server = serve("--header-map", "dangerous", "wsgi_apps:echo")
    client = RawClient(server.connect())
    client.send(b"GET / HTTP/1.1\r\nHost: x\r\nX_A: passed\r\n\r\n")
    assert json.loads(client.response()[2])["headers"]["HTTP_X_A"] == "passed"


def test_forwarded_proto_from_a_trusted_peer(echo) -> None:
    resp = requests.get(echo.url, headers={"X-Forwarded-Proto": "https"})
    assert resp.json()["scheme"] == "https"


def test_httpx_streaming_upload_and_download(echo, routes) -> None:
    def gen():  # type: ignore[no-untyped-def]
        for i in range(100):
            yield b"%05d" % i

    with httpx.Client() as client:
        resp = client.post(echo.url + "/up", content=gen())
        assert resp.json()["body"] == "".join("%05d" % i for i in range(100))
        with client.stream("GET", routes.url + "/tracked?n=20") as stream:
            assert sum(len(c) for c in stream.iter_bytes()) > 20 * 1024


def test_readline_iteration(routes) -> None:
    resp = requests.post(routes.url + "/readline", data=b"a\nbb\nccc")
    assert resp.json() == ["a\n", "bb\n", "ccc"]


def test_write_callable(routes) -> None:
    assert requests.get(routes.url + "/write").text == "written then returned"


def test_exc_info_replaces_unsent_response(routes) -> None:
    resp = requests.get(routes.url + "/exc-info")
    assert resp.status_code == 503 and resp.text == "recovered"


def test_exception_before_response_is_a_500_with_traceback_logged(routes) -> None:
    resp = requests.get(routes.url + "/error-before")
    assert resp.status_code == 500 and "Internal Server Error" in resp.text
    assert routes.has_logged("RuntimeError: boom before the response"), routes.logs()
    assert requests.get(routes.url + "/hello").text == "hello"  # the worker lives on


def test_exception_after_response_started_closes_the_connection(routes) -> None:
    sock = routes.connect()
    sock.sendall(b"GET /error-after HTTP/1.1\r\nHost: x\r\n\r\n")
    data = recv_all(sock)
    assert data.startswith(b"HTTP/1.1 200") and b"partial" in data
    assert not data.endswith(b"0\r\n\r\n")  # no clean end: the client sees truncation
    assert requests.get(routes.url + "/hello").text == "hello"


def test_close_is_called_on_success_and_on_client_disconnect(routes) -> None:
    requests.get(routes.url + "/tracked?name=ok")
    sock = routes.connect()
    sock.sendall(b"GET /tracked?name=gone&n=200&d=0.01 HTTP/1.1\r\nHost: x\r\n\r\n")
    sock.recv(100)
    sock.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        closed = requests.get(routes.url + "/closed").text.split(",")
        if "gone" in closed:
            break
        time.sleep(0.2)
    assert "ok" in closed and "gone" in closed


@pytest.mark.parametrize("with_len", ["1", "0"])
def test_file_wrapper(routes, with_len: str) -> None:
    resp = requests.get(routes.url + "/file?len=" + with_len)
    assert resp.content == bytes(range(256)) * 400


def test_unread_body_is_drained_and_connection_kept(routes) -> None:
    client = RawClient(routes.connect())
    client.send(b"POST /ignore-body HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789")
    client.send(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    assert client.response()[2] == b"ignored"
    assert client.response()[2] == b"hello"


def test_partially_read_body(routes) -> None:
    client = RawClient(routes.connect())
    client.send(b"POST /read-some?n=3 HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789"
                b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    assert client.response()[2] == b"012"
    assert client.response()[2] == b"hello"


def test_access_log_uses_gunicorn_format(serve) -> None:
    server = serve("--access-logfile", "-", "wsgi_apps:routes")
    requests.get(server.url + "/hello?q=1", headers={"User-Agent": "ua/1", "Referer": "http://r/"})
    time.sleep(0.3)
    line = next(line for line in server.stdout if "/hello" in line)
    # %(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"
    import re

    assert re.match(
        r'127\.0\.0\.1 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] '
        r'"GET /hello\?q=1 HTTP/1\.1" 200 5 "http://r/" "ua/1"$',
        line.strip(),
    ), line


def test_custom_access_log_format(serve) -> None:
    server = serve("--access-logfile", "-", "--access-logformat",
                   "%(m)s %(U)s %(q)s %(s)s %(B)s %({x-req}i)s %({content-type}o)s %(p)s",
                   "wsgi_apps:routes")
    requests.get(server.url + "/hello?a=b", headers={"X-Req": "rid"})
    time.sleep(0.3)
    line = next(line for line in server.stdout if "/hello" in line).strip()
    assert line.startswith("GET /hello a=b 200 5 rid text/plain <")


@pytest.mark.parametrize(
    "path", ["/hello", "/big", "/stream", "/write", "/readline", "/tracked", "/status?code=204"]
)
def test_routes_pass_the_pep3333_validator(serve, path: str) -> None:
    """wsgiref.validate wraps the app: any PEP 3333 violation by the server is a 500."""
    server = serve("wsgi_apps:validated_routes")
    resp = requests.post(server.url + path, data=b"x\ny")
    assert resp.status_code in (200, 204), server.logs()
    assert "AssertionError" not in server.logs()


def test_forwarded_allow_ips_takes_networks(serve) -> None:
    server = serve("--forwarded-allow-ips", "10.0.0.0/8,127.0.0.0/8", "wsgi_apps:echo")
    resp = requests.get(server.url, headers={"X-Forwarded-Proto": "https"})
    assert resp.json()["scheme"] == "https"
    other = serve("--forwarded-allow-ips", "10.0.0.0/8", "wsgi_apps:echo")
    resp = requests.get(other.url, headers={"X-Forwarded-Proto": "https"})
    assert resp.json()["scheme"] == "http"  # 127.0.0.1 is not trusted there


def test_header_value_with_crlf_is_a_500(serve, tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "split_app.py").write_text(
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('X-Bad', 'a\\r\\nSet-Cookie: evil=1')])\n"
        "    return [b'body']\n"
    )
    server = serve("--pythonpath", str(tmp_path), "split_app:app")
    resp = requests.get(server.url)
    assert resp.status_code == 500 and "evil" not in resp.headers.get("Set-Cookie", "")
    assert server.has_logged("invalid response header value"), server.logs()


def test_secure_scheme_headers_from_the_config_file(serve, tmp_path) -> None:  # type: ignore[no-untyped-def]
    conf = tmp_path / "gunicorn.conf.py"
    conf.write_text("secure_scheme_headers = {'X-Scheme': 'https'}\n")
    server = serve("-c", str(conf), "wsgi_apps:echo")
    assert requests.get(server.url, headers={"X-Scheme": "https"}).json()["scheme"] == "https"
    # The default headers are no longer believed once the map is replaced.
    assert requests.get(server.url,
                        headers={"X-Forwarded-Proto": "https"}).json()["scheme"] == "http"


@pytest.mark.parametrize("app", ["wsgi_apps:echo", "asgi_apps:app"])
def test_contradictory_scheme_headers_get_400(serve, app: str) -> None:  # type: ignore[no-untyped-def]
    server = serve(app)
    both = {"X-Forwarded-Proto": "https", "X-Forwarded-Ssl": "off"}
    resp = requests.get(server.url + "/", headers=both)
    assert (resp.status_code, resp.text) == (400, "400 Contradictory scheme headers\n")
    assert server.has_logged("400 Contradictory scheme headers")
    agreeing = {"X-Forwarded-Proto": "https", "X-Forwarded-Ssl": "on"}
    assert requests.get(server.url + "/", headers=agreeing).status_code == 200


def test_a_trusted_front_end_mounts_the_app_with_script_name(serve) -> None:  # type: ignore[no-untyped-def]
    # --forwarder-headers (default SCRIPT_NAME,PATH_INFO), from a --forwarded-allow-ips peer.
    server = serve("wsgi_apps:echo")
    echo = requests.get(server.url + "/app/x", headers={"SCRIPT_NAME": "/app"}).json()
    assert (echo["script_name"], echo["path"]) == ("/app", "/x")
    assert echo["headers"]["HTTP_SCRIPT_NAME"] == "/app"
    wrong = requests.get(server.url + "/other", headers={"SCRIPT_NAME": "/app"})
    assert wrong.status_code == 500  # the front end's configuration is wrong (gunicorn: 500)
    assert server.has_logged("Request path '/other' does not start with SCRIPT_NAME '/app'")


def test_forwarder_headers_only_from_trusted_peers_and_only_listed(serve) -> None:  # type: ignore[no-untyped-def]
    untrusted = serve("--forwarded-allow-ips", "10.0.0.1", "wsgi_apps:echo")
    echo = requests.get(untrusted.url + "/app/x", headers={"SCRIPT_NAME": "/app"}).json()
    assert (echo["script_name"], echo["path"]) == ("", "/app/x")
    assert "HTTP_SCRIPT_NAME" not in echo["headers"]
    listed = serve("--forwarder-headers", "remote_user", "wsgi_apps:echo")
    echo = requests.get(listed.url + "/app/x", headers={"SCRIPT_NAME": "/app",
                                                         "REMOTE_USER": "ann"}).json()
    assert echo["headers"].get("HTTP_REMOTE_USER") == "ann"
    assert (echo["script_name"], echo["path"]) == ("", "/app/x")  # SCRIPT_NAME not listed
