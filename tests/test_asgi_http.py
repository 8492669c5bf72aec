"""ASGI 3 over HTTP/1.1 through a real server: the scope, the body in both directions,
errors, extensions, disconnects and backpressure (tests/apps/asgi_apps.py)."""

from __future__ import annotations

import json
import socket
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from master_helpers import wait_for

from conftest import RawClient, ServerProcess, recv_all

APPS = Path(__file__).resolve().parent / "apps"


@pytest.fixture
def asgi(serve) -> ServerProcess:  # type: ignore[no-untyped-def]
    server: ServerProcess = serve("asgi_apps:app")
    return server


def _get_json(server: ServerProcess, path: str, **kw: Any) -> Any:
    resp = requests.get(server.url + path, timeout=10, **kw)
    assert resp.status_code == 200, resp.text
    return resp.json()


def _events(server: ServerProcess, wanted: str, timeout: float = 10.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        events = [e for e in _get_json(server, "/events") if e["event"] == wanted]
        if events or time.monotonic() > deadline:
            return events
        time.sleep(0.1)


# -- the scope ---------------------------------------------------------------------------------
def test_scope_is_complete(asgi: ServerProcess) -> None:
    scope = _get_json(asgi, "/caf%C3%A9/x%2Fy?a=1&b=%20", headers={"X-Custom": "Value"})
    assert scope["type"] == "http"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.3"}
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "GET"
    assert scope["scheme"] == "http"
    assert scope["path"] == "/café/x/y"  # percent-decoded, UTF-8
    assert scope["raw_path"] == "/caf%C3%A9/x%2Fy"  # as sent
    assert scope["query_string"] == "a=1&b=%20"
    assert scope["root_path"] == ""
    assert ["x-custom", "Value"] in scope["headers"]  # names lower-cased, values as sent
    assert all(name == name.lower() for name, _ in scope["headers"])
    assert scope["client"][0] == "127.0.0.1" and isinstance(scope["client"][1], int)
    assert scope["server"] == ["127.0.0.1", asgi.port]
    assert set(scope["state"]) == {"started_at", "pid"}  # a copy of the lifespan state
    assert set(scope["extensions"]) == {"http.response.pathsend", "http.response.trailers",
                                        "http.response.early_hint"}


def test_root_path_prefixes_path(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve("asgi_apps:app", "--root-path", "/api/")
    scope = _get_json(server, "/items")
    assert scope["root_path"] == "/api"
    assert scope["path"] == "/api/items"
    assert scope["raw_path"] == "/api/items"


def test_forwarded_proto_from_a_trusted_peer(asgi: ServerProcess) -> None:
    scope = _get_json(asgi, "/s", headers={"X-Forwarded-Proto": "https"})
    assert scope["scheme"] == "https"


def test_http10_scope_has_no_http11_extensions(asgi: ServerProcess) -> None:
    client = RawClient(asgi.connect())
    client.send(b"GET /scope HTTP/1.0\r\n\r\n")
    status, headers, body = client.response()
    assert status == 200
    scope = json.loads(body)
    assert scope["http_version"] == "1.0"
    assert set(scope["extensions"]) == {"http.response.pathsend"}


# -- the request body ------------------------------------------------------------------------
def test_request_body_streams_in_pieces(asgi: ServerProcess) -> None:
    body = bytes(range(256)) * 4096  # 1 MiB: more than one recv
    resp = requests.post(asgi.url + "/echo", data=body, timeout=10)
    result = resp.json()
    assert result["body"].encode("latin-1") == body
    assert len(result["sizes"]) > 1 and sum(result["sizes"]) == len(body)


def test_chunked_request_body(asgi: ServerProcess) -> None:
    def parts():  # type: ignore[no-untyped-def]
        yield b"hello "
        yield b"chunked "
        yield b"world"

    resp = requests.post(asgi.url + "/echo", data=parts(), timeout=10)
    assert resp.json()["body"] == "hello chunked world"


def test_expect_continue_is_sent_on_first_receive(asgi: ServerProcess) -> None:
    client = RawClient(asgi.connect())
    client.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                b"Expect: 100-continue\r\n\r\n")
    status, _, _ = client.response()
    assert status == 100
    client.send(b"hello")
    status, _, body = client.response()
    assert status == 200 and json.loads(body)["body"] == "hello"


def test_no_continue_for_an_app_that_never_receives(asgi: ServerProcess) -> None:
    """The scope view answers without calling receive(): no 100, the final response at once."""
    client = RawClient(asgi.connect())
    client.send(b"POST /no-read HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                b"Expect: 100-continue\r\n\r\n")
    status, _, body = client.response()
    assert status == 200 and json.loads(body)["path"] == "/no-read"


def test_bad_chunk_in_body_is_answered_400(asgi: ServerProcess) -> None:
    client = RawClient(asgi.connect())
    client.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"zz\r\nhello\r\n0\r\n\r\n")
    status, _, _ = client.response()
    assert status == 400
    assert client.closed()


def test_keep_alive_and_pipelining(asgi: ServerProcess) -> None:
    client = RawClient(asgi.connect())
    # An unread body (the scope view never calls receive) is drained, the connection kept.
    client.send(b"POST /first HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
                b"GET /second HTTP/1.1\r\nHost: x\r\n\r\n"
                b"GET /third HTTP/1.1\r\nHost: x\r\n\r\n")
    paths = []
    for _ in range(3):
        status, headers, body = client.response()
        assert status == 200 and "connection" not in headers
        paths.append(json.loads(body)["path"])
    assert paths == ["/first", "/second", "/third"]


# -- the response ------------------------------------------------------------------------------
def test_single_body_message_gets_a_content_length(asgi: ServerProcess) -> None:
    resp = requests.get(asgi.url + "/scope", timeout=10)
    assert resp.headers["content-length"] == str(len(resp.content))
    assert resp.headers["server"].startswith("greenserve/")
    assert "date" in resp.headers


def test_streamed_response_is_chunked(asgi: ServerProcess) -> None:
    resp = requests.get(asgi.url + "/stream?n=4&delay=0.01", timeout=10)
    assert resp.headers["transfer-encoding"] == "chunked"
    assert resp.text == "".join(f"part {i}\n" for i in range(4))


def test_head_has_no_body(asgi: ServerProcess) -> None:
    client = RawClient(asgi.connect())
    client.send(b"HEAD /scope HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n")
    status, _, body = client.response(head_only=True)
    assert status == 200 and body == b""
    assert json.loads(client.response()[2])["path"] == "/after"


def test_http10_stream_is_close_delimited(asgi: ServerProcess) -> None:
    sock = asgi.connect()
    sock.sendall(b"GET /stream?n=2 HTTP/1.0\r\n\r\n")
    data = recv_all(sock)
    assert data.startswith(b"HTTP/1.1 200")
    assert b"transfer-encoding" not in data.lower()
    assert data.endswith(b"part 0\npart 1\n")


def test_exception_before_start_is_a_500(asgi: ServerProcess) -> None:
    resp = requests.get(asgi.url + "/raise-before", timeout=10)
    assert resp.status_code == 500
    assert asgi.has_logged("asgi app exploded before the response"), asgi.logs()


def test_exception_after_start_closes_the_connection(asgi: ServerProcess) -> None:
    sock = asgi.connect()
    sock.sendall(b"GET /raise-after HTTP/1.1\r\nHost: x\r\n\r\n")
    data = recv_all(sock)
    assert data.startswith(b"HTTP/1.1 200")
    assert b"partial" in data and not data.endswith(b"0\r\n\r\n")  # truncated, then closed


@pytest.mark.parametrize(("path", "status"), [("/no-response", 500), ("/start-only", 200)])
def test_app_returning_without_a_complete_response(asgi: ServerProcess, path: str,
                                                   status: int) -> None:
    sock = asgi.connect()
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    data = recv_all(sock)
    assert data.startswith(f"HTTP/1.1 {status}".encode())
    assert asgi.has_logged("ASGI callable returned without"), asgi.logs()


def test_trailers(asgi: ServerProcess) -> None:
    client = RawClient(asgi.connect())
    client.send(b"GET /trailers HTTP/1.1\r\nHost: x\r\nTE: trailers\r\n\r\n")
    head = client._until(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head
    rest = client._until(b"\r\n\r\n")
    assert rest == b"3\r\nabc\r\n3\r\ndef\r\n0\r\nx-checksum: 42"


def test_the_fast_path_switches_no_greenlet(asgi: ServerProcess) -> None:
    """A body that came with the head is returned by receive(), and a write the kernel takes
    is made by send(), in the app's own step: no switch to the hub, the loop or a writer."""
    client = RawClient(asgi.connect())  # head and body in one write: both arrive together
    client.send(b"POST /switches HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
    status, _, body = client.response()
    assert status == 200 and body[:100] == b"x" * 100
    assert json.loads(body[100:]) == {"receive": 0, "send": 0, "body": "hello"}


def test_pathsend_sends_the_file(asgi: ServerProcess) -> None:
    resp = requests.get(asgi.url + "/pathsend", timeout=10)
    assert resp.status_code == 200
    assert resp.content == (APPS / "asgi_apps.py").read_bytes()
    assert resp.headers["content-length"] == str(len(resp.content))


def test_early_hint(asgi: ServerProcess) -> None:
    client = RawClient(asgi.connect())
    client.send(b"GET /early-hint HTTP/1.1\r\nHost: x\r\n\r\n")
    status, headers, _ = client.response()
    assert (status, headers["link"]) == (103, "</style.css>; rel=preload")
    assert client.response()[0] == 200


def test_access_log_line(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve("asgi_apps:app", "--access-logfile", "-")
    requests.get(server.url + "/stream?n=2", timeout=10)
    time.sleep(0.3)
    assert server.has_logged('"GET /stream?n=2 HTTP/1.1" 200 14'), server.logs()


def test_server_hooks_see_no_running_loop(serve, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """pre_request and post_request run in the connection greenlet, between requests' first
    steps (which run with the worker's loop as the running loop): never with one."""
    seen = tmp_path / "seen"
    config = tmp_path / "hooks.py"
    config.write_text(
        "import asyncio\n\n\n"
        "def _note(what):\n"
        f"    with open({str(seen)!r}, 'a') as out:\n"
        "        out.write(f'{what} {asyncio._get_running_loop() is not None}\\n')\n\n\n"
        "def pre_request(worker, req):\n    _note('pre')\n\n\n"
        "def post_request(worker, req, environ, resp):\n    _note('post')\n")
    server = serve("asgi_apps:app", "-c", str(config))
    client = RawClient(server.connect())  # one keep-alive connection: one greenlet
    for _ in range(3):
        client.send(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
        assert client.response()[0] == 200
    # post_request runs after the response went out: wait for its last line
    expected = ["pre False", "post False"] * 3 + [""]
    wait_for(lambda: seen.read_text().count("\n") >= len(expected) - 1)
    assert seen.read_text().split("\n") == expected


def test_request_timeout_gives_504(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve("asgi_apps:app", "--request-timeout", "0.3")
    resp = requests.get(server.url + "/sleep?s=5", timeout=10)
    assert resp.status_code == 504
    assert requests.get(server.url + "/sleep?s=0", timeout=10).status_code == 200
    # Blocking in gevent during the first step (which runs in the connection greenlet):
    # the timeout is thrown into the app's frame, but it is the request's, not an app error.
    resp = requests.get(server.url + "/blocking?s=2", timeout=10)
    assert resp.status_code == 504
    assert not server.has_logged("Exception in ASGI application", timeout=0.3)
    assert requests.get(server.url + "/sleep?s=0", timeout=10).status_code == 200


# -- disconnects ----------------------------------------------------------------------------------
def test_disconnect_reaches_a_waiting_receive(asgi: ServerProcess) -> None:
    sock = socket.create_connection((asgi.host, asgi.port))
    sock.sendall(b"GET /wait-disconnect HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.3)
    sock.close()
    events = _events(asgi, "http.disconnect")
    assert len(events) == 1 and events[0]["after"] < 3


def test_app_ignoring_the_disconnect_is_cancelled_after_the_grace_period(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve("asgi_apps:app", "--asgi-disconnect-grace-period", "0.5")
    sock = socket.create_connection((server.host, server.port))
    sock.sendall(b"GET /ignore-disconnect?sleep=30 HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.2)
    sock.close()
    # Noticed by the once-a-second sweep (the app is not in receive()), then 0.5 s of grace.
    events = _events(server, "cancelled", timeout=10)
    assert len(events) == 1 and 0.5 < events[0]["after"] < 5


def test_slow_reader_pauses_the_app(asgi: ServerProcess) -> None:
    sock = socket.create_connection((asgi.host, asgi.port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.sendall(b"GET /big?mb=64 HTTP/1.1\r\nHost: x\r\n\r\n")
    got = 0
    while got < 1 << 20:
        got += len(sock.recv(65536))
    time.sleep(1.0)  # stop reading: the server's send() must stop the app
    stalled = _get_json(asgi, "/progress")["chunks"]
    assert stalled < 200, stalled  # of 1024: socket buffers only, not the whole body
    sock.settimeout(30)
    while True:
        data = sock.recv(1 << 20)
        got += len(data)
        if not data or got >= (64 << 20):
            break
    assert _get_json(asgi, "/progress")["chunks"] == 1024
    sock.close()


# -- threads and greenlets ----------------------------------------------------------------------
def test_to_thread_is_a_greenlet_and_run_in_thread_a_real_thread(asgi: ServerProcess) -> None:
    result = _get_json(asgi, "/threads")
    assert result["to_thread"] == result["main"]  # patched threading: a greenlet
    assert result["real"] != result["main"]  # greenserve.asgi.run_in_thread: an OS thread


def test_greenlets_see_no_running_loop(asgi: ServerProcess) -> None:
    result = _get_json(asgi, "/hub")
    assert result["running_loop_seen"] is False  # the running-loop hook
    assert result["asyncio_run_loop"] != result["shared_loop"]  # asyncio.run() works
    assert result["async_to_sync_loop"] == result["shared_loop"]  # runs on the worker's loop


def test_the_first_step_runs_in_the_connection_greenlet(asgi: ServerProcess) -> None:
    # Eager start: until its first real await the app runs where the request was parsed,
    # seeing what it would see on the loop; after that await it runs on the loop.
    result = _get_json(asgi, "/where")
    assert result["first"] == {"on_loop_greenlet": False, "has_task": True,
                               "running_loop": True}
    assert result["later"] == {"on_loop_greenlet": True, "var": "set in the first step"}


def test_a_coroutine_blocking_in_gevent_does_not_break_other_tasks(
        asgi: ServerProcess) -> None:
    # A patched time.sleep() inside a coroutine parks its greenlet mid-step, as the
    # connection greenlet (first step) or as the loop greenlet (later steps). Its task must
    # not stay "current" for the loop's other tasks: asyncio would refuse to step them.
    from concurrent.futures import ThreadPoolExecutor

    paths = ["/blocking?s=0.3"] * 4 + ["/sleep?s=0.01"] * 40
    with ThreadPoolExecutor(len(paths)) as pool:
        responses = list(pool.map(
            lambda path: requests.get(asgi.url + path, timeout=30), paths))
    assert [r.status_code for r in responses] == [200] * len(paths)
    assert all(r.json() == {"same_task": True} for r in responses[:4])
    assert not asgi.has_logged("Cannot enter into task", timeout=0.5)
    assert not asgi.has_logged("Traceback", timeout=0.1)


def test_response_headers_may_be_any_iterable(asgi: ServerProcess) -> None:
    resp = requests.get(asgi.url + "/generated-headers", timeout=10)
    assert resp.status_code == 200 and resp.text == "generated"
    assert resp.headers["x-gen"] == "1" and resp.headers["content-length"] == "9"


def test_a_task_factory_the_app_sets_makes_the_request_tasks(asgi: ServerProcess) -> None:
    # With a task factory the first step is not taken back for eager start: the factory's
    # task runs on the loop, and requests keep working.
    assert _get_json(asgi, "/task-factory?on=1") == {"made": 0}
    for expected in (1, 2):
        assert _get_json(asgi, "/task-factory") == {"made": expected}
    assert _get_json(asgi, "/where")["later"]["on_loop_greenlet"] is True
    assert _get_json(asgi, "/task-factory?on=0") == {"made": 4}
    assert _get_json(asgi, "/task-factory") == {"made": 4}


def test_a_timer_set_in_the_first_step_fires_on_time(asgi: ServerProcess) -> None:
    # The app answers in its first step (in the connection greenlet) and leaves a timer:
    # the parked loop must wake to reschedule its sleep, not sleep on to its old deadline
    # (up to a second later, the disconnect sweep's).
    for _ in range(3):
        assert _get_json(asgi, "/timer") == {}
        time.sleep(0.5)
        late = _get_json(asgi, "/timer?read=1")["late"]
        assert 0 <= late < 0.25  # (without the wake: uniform over 0-0.95 s)


def test_debug_mode_starts_request_tasks_on_the_loop(asgi: ServerProcess) -> None:
    # asyncio's debug mode refuses loop calls from "another thread": the task is made on the
    # loop, so its first step runs on the loop's greenlet; without debug it runs eagerly.
    assert _get_json(asgi, "/debug") == {"debug": False, "on_loop_greenlet": False}
    try:
        assert _get_json(asgi, "/debug?on=1")["debug"] is True
        assert _get_json(asgi, "/debug") == {"debug": True, "on_loop_greenlet": True}
    finally:
        _get_json(asgi, "/debug?on=0")
    assert _get_json(asgi, "/debug") == {"debug": False, "on_loop_greenlet": False}


def test_all_tasks_sees_every_task_that_is_not_done(asgi: ServerProcess) -> None:
    # On 3.11 greenserve defers asyncio's task registrations (asgi/registry.py): a request
    # task done in its first step never joins the set. Whoever reads the set still sees
    # every task that is not done: the app's own (mid-step) and the one it just started,
    # background tasks in later requests, and tasks of other loops in other threads,
    # which asyncio.run must find to cancel them.
    expected_set = "DeferredTaskSet" if sys.version_info < (3, 12) else "WeakSet"
    before = _get_json(asgi, "/tasks")
    assert before["set"] == expected_set
    assert _get_json(asgi, "/tasks?bg=1") == {"bg": True, "self": True}
    assert _get_json(asgi, "/tasks?bg=1") == {"bg": True, "self": True}
    names = _get_json(asgi, "/tasks")["names"]
    assert [name for name in names if name.startswith("bg-")] == ["bg-0", "bg-1"]
    assert names.count("greenserve-request") == 1  # itself: done tasks are gone
    elsewhere = {"seen": True, "cancelled": True}
    assert _get_json(asgi, "/tasks?thread=1") == {"thread": elsewhere, "greenlet": elsewhere}


def test_tls_sockets_never_get_direct_writes() -> None:
    """The fast path writes the raw TCP socket; on a TLS connection that would bypass TLS,
    so TLS responses always go through the connection's own write."""
    import gevent.socket
    import gevent.ssl

    from greenserve.connection import os_sockets

    plain = gevent.socket.socket()
    context = gevent.ssl.SSLContext(gevent.ssl.PROTOCOL_TLS_SERVER)
    wrapped = context.wrap_socket(gevent.socket.socket(), server_side=True,
                                  do_handshake_on_connect=False)
    try:
        write, peek = os_sockets(plain)
        assert write is not None and write is peek
        write, peek = os_sockets(wrapped)
        assert write is None and peek is not None
    finally:
        plain.close()
        wrapped.close()
