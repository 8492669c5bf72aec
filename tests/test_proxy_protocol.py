"""``--proxy-protocol``: PROXY v1/v2 headers on real sockets, WSGI and ASGI."""

from __future__ import annotations

import json
import re
import socket
import struct
from typing import Any

import pytest
from corpus_harness import PROXY_SKIP, gunicorn_cases, shared_dir

from conftest import ServerProcess, recv_all
from greenserve.protocol.proxy import V2_SIGNATURE, ProxyHeaderError, parse

GET = b"GET /x HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n"


def _exchange(server: ServerProcess, data: bytes) -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(data)
        response = recv_all(sock)
    if not response:
        return 0, b""
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def _remote(server: ServerProcess, data: bytes) -> Any:
    status, body = _exchange(server, data)
    assert status == 200, body
    return json.loads(body)


def _v2(command: int, family: int, addresses: bytes, tlvs: bytes = b"") -> bytes:
    block = addresses + tlvs
    return V2_SIGNATURE + bytes([0x20 | command, family]) + struct.pack("!H", len(block)) + block


V2_IPV4 = _v2(1, 0x11, socket.inet_aton("10.1.2.3") + socket.inet_aton("10.0.0.1")
              + struct.pack("!HH", 40000, 443), tlvs=b"\x04\x00\x01x")  # with a TLV to skip
V2_IPV6 = _v2(1, 0x21, socket.inet_pton(socket.AF_INET6, "2001:db8::7")
              + socket.inet_pton(socket.AF_INET6, "2001:db8::1") + struct.pack("!HH", 5000, 80))


@pytest.fixture
def wsgi(serve) -> ServerProcess:  # type: ignore[no-untyped-def]
    return serve("wsgi_apps:echo", "--proxy-protocol")  # type: ignore[no-any-return]


def test_v1_v2_and_no_header_set_the_wsgi_client(wsgi: ServerProcess) -> None:
    v1 = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"
    assert _remote(wsgi, v1 + GET)["remote"] == ["192.168.0.1", "56324"]
    assert _remote(wsgi, b"PROXY TCP6 2001:db8::5 2001:db8::1 1234 80\r\n" + GET)["remote"] \
        == ["2001:db8::5", "1234"]
    assert _remote(wsgi, V2_IPV4 + GET)["remote"] == ["10.1.2.3", "40000"]
    assert _remote(wsgi, V2_IPV6 + GET)["remote"] == ["2001:db8::7", "5000"]
    # Optional: a health check without a header; UNKNOWN and LOCAL keep the real peer.
    for data in (GET, b"PROXY UNKNOWN\r\n" + GET, _v2(0, 0x00, b"") + GET):
        assert _remote(wsgi, data)["remote"][0] == "127.0.0.1"


def test_the_header_may_arrive_in_pieces(wsgi: ServerProcess) -> None:
    with socket.create_connection(("127.0.0.1", wsgi.port), timeout=10) as sock:
        for piece in (V2_IPV4[:5], V2_IPV4[5:14], V2_IPV4[14:], GET[:10], GET[10:]):
            sock.sendall(piece)
        response = recv_all(sock)
    assert json.loads(response.partition(b"\r\n\r\n")[2])["remote"] == ["10.1.2.3", "40000"]


def test_keep_alive_requests_keep_the_client(wsgi: ServerProcess) -> None:
    keep = b"GET /x HTTP/1.1\r\nHost: example.com\r\n\r\n"
    with socket.create_connection(("127.0.0.1", wsgi.port), timeout=10) as sock:
        sock.sendall(b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n" + keep + GET)
        data = recv_all(sock)
    assert data.count(b'"remote": ["192.168.0.1", "56324"]') == 2


@pytest.mark.parametrize("data", [
    b"PROXY TCP4 192.168.0.1 192.16...\r\n",
    b"PROXY TCP4 192.168.0.1 192.168.0.11 65iii 100000\r\n",
    b"PROXY TCP4 not-an-ip 192.168.0.11 56324 443\r\n",
    b"PROXY TCP4 ::1 ::1 1 2\r\n",
    b"PROXY " + b"x" * 120,
    V2_SIGNATURE + b"\x31\x11\x00\x00",  # version 3
])
def test_malformed_headers_get_400(wsgi: ServerProcess, data: bytes) -> None:
    assert _exchange(wsgi, data + GET)[0] == 400
    assert wsgi.has_logged("invalid PROXY header")


def test_peers_not_allowed_get_403(serve) -> None:  # type: ignore[no-untyped-def]
    server: ServerProcess = serve("--proxy-allow-from", "10.9.9.0/24", "wsgi_apps:echo",
                                  "--proxy-protocol")
    status, _ = _exchange(server, b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n" + GET)
    assert status == 403
    assert _remote(server, GET)["remote"][0] == "127.0.0.1"  # no header: served


def test_a_mode_takes_only_its_version(serve) -> None:  # type: ignore[no-untyped-def]
    v1_only: ServerProcess = serve("--proxy-protocol", "v1", "wsgi_apps:echo")
    assert _exchange(v1_only, V2_IPV4 + GET)[0] == 400
    v2_only: ServerProcess = serve("--proxy-protocol", "v2", "wsgi_apps:echo")
    assert _exchange(v2_only, b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n" + GET)[0] == 400
    assert _remote(v2_only, V2_IPV4 + GET)["remote"] == ["10.1.2.3", "40000"]


def test_off_by_default(serve) -> None:  # type: ignore[no-untyped-def]
    server: ServerProcess = serve("wsgi_apps:echo")
    assert _exchange(server, b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n" + GET)[0] == 400


def test_asgi_scope_client_and_server(serve) -> None:  # type: ignore[no-untyped-def]
    server: ServerProcess = serve("--proxy-protocol", "auto", "asgi_apps:app")
    scope = _remote(server, b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n" + GET)
    assert scope["client"] == ["192.168.0.1", 56324]
    assert scope["server"] == ["192.168.0.11", 443]


def test_forwarded_headers_are_judged_by_the_balancer(serve) -> None:  # type: ignore[no-untyped-def]
    # The balancer (127.0.0.1) is trusted for X-Forwarded-Proto; the client it names is not
    # what --forwarded-allow-ips is about.
    server: ServerProcess = serve("wsgi_apps:echo", "--proxy-protocol")
    request = GET.replace(b"Connection: close", b"X-Forwarded-Proto: https\r\nConnection: close")
    echo = _remote(server, b"PROXY TCP4 203.0.113.9 10.0.0.1 999 443\r\n" + request)
    assert (echo["remote"][0], echo["scheme"]) == ("203.0.113.9", "https")


def test_gunicorn_corpus_proxy_cases(serve) -> None:  # type: ignore[no-untyped-def]
    # The 8 cases the protocol-level corpus test leaves out (corpus_harness.PROXY_SKIP), here
    # end to end: the harness's bytes (Host added to HTTP/1.1 requests without one).
    root = shared_dir()
    if root is None:
        pytest.skip("the shared corpus is not there")
    cases = [c for c in gunicorn_cases(root) if c.skip == PROXY_SKIP]
    assert len(cases) == 8
    server: ServerProcess = serve("wsgi_apps:echo", "--proxy-protocol")
    for case in cases:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(case.data)
            sock.shutdown(socket.SHUT_WR)
            response = recv_all(sock)
        statuses = [int(code) for code in re.findall(rb"HTTP/1\.[01] (\d{3}) ", response)]
        if case.expected:  # valid: every request answered by the app
            assert statuses == [200] * len(case.expected), (case.id, response[:300])
        else:
            assert statuses in ([400], []), (case.id, response[:300])


def test_parse_needs_more_bytes_before_deciding() -> None:
    assert parse(b"", "auto") is None
    assert parse(b"PROX", "auto") is None
    assert parse(b"\r\n\r\n", "auto") is None
    assert parse(b"PROXY TCP4 1.2.3.4", "auto") is None
    assert parse(V2_IPV4[:20], "auto") is None
    assert parse(b"GET / HTTP/1.1\r\n", "auto") == (parse(b"G", "auto") or (None, 0))
    with pytest.raises(ProxyHeaderError):
        parse(b"PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n", "v1")
