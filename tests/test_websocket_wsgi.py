"""WebSocket for WSGI apps, end to end: a real server, real clients (websocket-client,
websockets' asyncio client) and raw sockets for what no correct client sends.

The app (tests/apps/ws_apps.py) is written against gevent-websocket's API.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
import time

import pytest
import requests
import websocket
import websockets
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from conftest import RawClient, ServerProcess


@pytest.fixture
def ws_server(serve) -> ServerProcess:  # type: ignore[no-untyped-def]
    server: ServerProcess = serve("ws_apps:app")
    return server


def ws_url(server: ServerProcess, path: str = "/echo") -> str:
    return f"ws://127.0.0.1:{server.port}{path}"


def run(coro: object) -> object:
    return asyncio.run(asyncio.wait_for(coro, 30))  # type: ignore[arg-type]


# -- raw-socket helpers ------------------------------------------------------------------------
def handshake_bytes(path: str = "/echo", *extra: str, version: str = "13") -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", "Upgrade: websocket",
             "Connection: Upgrade", f"Sec-WebSocket-Key: {key}",
             f"Sec-WebSocket-Version: {version}", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def client_frame(opcode: int, payload: bytes, *, fin: bool = True, masked: bool = True) -> bytes:
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    length = bytes([n]) if n < 126 else bytes([126]) + struct.pack("!H", n)
    if not masked:
        return head + length + payload
    mask = os.urandom(4)
    length = bytes([length[0] | 0x80]) + length[1:]
    return head + length + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class RawWebSocket:
    """A raw client: does the handshake, then reads server frames (unmasked) one by one."""

    def __init__(self, sock: socket.socket, path: str = "/echo", early: bytes = b"") -> None:
        self.client = RawClient(sock)
        self.client.send(handshake_bytes(path) + early)
        status, self.headers, _ = self.client.response(head_only=True)
        assert status == 101, status

    def send(self, data: bytes) -> None:
        self.client.send(data)

    def frame(self) -> tuple[int, bytes]:
        head = self.client._exactly(2)
        n = head[1] & 0x7F
        if n == 126:
            n = struct.unpack("!H", self.client._exactly(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self.client._exactly(8))[0]
        return head[0] & 0x0F, self.client._exactly(n)

    def close_code(self) -> int:
        """Skips to the server's close frame and returns its code."""
        while True:
            opcode, payload = self.frame()
            if opcode == 0x8:
                return int(struct.unpack("!H", payload[:2])[0])

    def eof(self, timeout: float = 5.0) -> bool:
        return self.client.closed(timeout)


# -- gevent-websocket API over real clients -----------------------------------------------------
def test_text_binary_and_ping_with_websocket_client(ws_server: ServerProcess) -> None:
    ws = websocket.create_connection(ws_url(ws_server), timeout=10)
    try:
        ws.send("héllo")
        assert ws.recv() == "héllo"
        ws.send_binary(b"\x00\xffbinary")
        assert ws.recv() == b"\x00\xffbinary"
        ws.ping(b"are you there")
        opcode, frame = ws.recv_data_frame(True)
        assert opcode == websocket.ABNF.OPCODE_PONG and frame.data == b"are you there"
    finally:
        ws.close()


def test_the_app_sees_gevent_websocket_attributes(ws_server: ServerProcess) -> None:
    # The offer goes in a raw header: websocket-client would insist on an answer to it.
    ws = websocket.create_connection(ws_url(ws_server, "/info"), timeout=10,
                                     origin="https://app.example",
                                     header=["Sec-WebSocket-Protocol: a, b"])
    try:
        import json

        info = json.loads(ws.recv())
    finally:
        ws.close()
    assert info == {
        "path": "/info", "origin": "https://app.example", "protocol": "a, b",
        "version": "13", "websocket_version": "13", "subprotocols": ["a", "b"],
        "has_socket": True,
    }


def test_subprotocol_and_headers_chosen_by_the_app(ws_server: ServerProcess) -> None:
    ws = websocket.create_connection(ws_url(ws_server, "/subprotocol?choose=b"), timeout=10,
                                     subprotocols=["a", "b"])
    try:
        assert ws.getsubprotocol() == "b"
        assert ws.getheaders()["x-chosen"] == "b"
        assert ws.recv() == "b"
    finally:
        ws.close()


def test_websockets_client_echo_fragments_and_compression(ws_server: ServerProcess) -> None:
    async def scenario() -> None:
        async with connect(ws_url(ws_server), max_size=None) as ws:
            assert ws.response is not None
            assert "permessage-deflate" in ws.response.headers["Sec-WebSocket-Extensions"]
            await ws.send("text")
            assert await ws.recv() == "text"
            parts = [os.urandom(256 * 1024) for _ in range(12)]  # 3 MiB in 12 fragments
            await ws.send(parts)
            assert await ws.recv() == b"".join(parts)
            big = "é" * (2 * 1024 * 1024)
            await ws.send(big)
            assert await ws.recv() == big
            pong = await ws.ping(b"x")
            await asyncio.wait_for(pong, 5)

    run(scenario())


def test_without_compression(ws_server: ServerProcess) -> None:
    async def scenario() -> None:
        async with connect(ws_url(ws_server), compression=None) as ws:
            assert ws.response is not None
            assert "Sec-WebSocket-Extensions" not in ws.response.headers
            await ws.send(b"plain")
            assert await ws.recv() == b"plain"

    run(scenario())


def test_the_server_answers_the_clients_close_code(ws_server: ServerProcess) -> None:
    async def scenario() -> None:
        ws = await connect(ws_url(ws_server))
        await ws.close(4000, "bye")
        assert ws.protocol.close_rcvd is not None
        assert (ws.protocol.close_rcvd.code, ws.protocol.close_rcvd.reason) == (4000, "bye")

    run(scenario())


def test_the_app_closes_with_a_code(ws_server: ServerProcess) -> None:
    async def scenario() -> None:
        async with connect(ws_url(ws_server, "/close?code=4001&reason=go+away")) as ws:
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            assert info.value.rcvd is not None
            assert (info.value.rcvd.code, info.value.rcvd.reason) == (4001, "go away")

    run(scenario())


def test_an_app_that_ignores_the_socket_accepts_and_closes_normally(
        ws_server: ServerProcess) -> None:
    async def scenario() -> None:
        async with connect(ws_url(ws_server, "/silent")) as ws:
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            assert info.value.rcvd is not None and info.value.rcvd.code == 1000

    run(scenario())


def test_an_app_error_mid_session_closes_with_1011(ws_server: ServerProcess) -> None:
    async def scenario() -> None:
        async with connect(ws_url(ws_server, "/boom")) as ws:
            await ws.send("trigger")
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            assert info.value.rcvd is not None and info.value.rcvd.code == 1011

    run(scenario())
    assert ws_server.has_logged("the app failed mid-session"), ws_server.logs()
    assert ws_server.has_logged("Error in WebSocket application /boom"), ws_server.logs()


def test_receive_returns_none_once_then_raises(ws_server: ServerProcess) -> None:
    ws = websocket.create_connection(ws_url(ws_server, "/after-close"), timeout=10)
    ws.close()
    assert ws_server.has_logged("send after close"), ws_server.logs()
    logs = ws_server.logs()
    assert "second receive raised WebSocketError" in logs
    assert "send after close raised WebSocketError" in logs


def test_the_app_may_refuse_with_an_http_response(ws_server: ServerProcess) -> None:
    client = RawClient(ws_server.connect())
    client.send(handshake_bytes("/deny"))
    status, headers, body = client.response()
    assert (status, body) == (403, b"no WebSocket for you")
    assert headers["connection"] == "close"
    assert client.closed()


def test_plain_http_to_the_same_app(ws_server: ServerProcess) -> None:
    with requests.Session() as session:
        for path in ("/echo", "/other"):
            resp = session.get(ws_server.url + path)
            assert resp.status_code == 200 and resp.text == "plain HTTP: " + path
    # Upgrade on a POST, or on HTTP/1.0, is plain HTTP too (a server may ignore Upgrade).
    client = RawClient(ws_server.connect())
    client.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Content-Length: 0\r\n\r\n")
    assert client.response()[0] == 200


# -- what only a raw socket can send ------------------------------------------------------------
def test_wrong_version_gets_426(ws_server: ServerProcess) -> None:
    client = RawClient(ws_server.connect())
    client.send(handshake_bytes("/echo", version="8"))
    status, headers, _ = client.response()
    assert status == 426 and headers["sec-websocket-version"] == "13"


def test_a_bad_key_gets_400(ws_server: ServerProcess) -> None:
    client = RawClient(ws_server.connect())
    client.send(b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short\r\n\r\n")
    assert client.response()[0] == 400


def test_frames_right_behind_the_handshake_are_not_lost(ws_server: ServerProcess) -> None:
    raw = RawWebSocket(ws_server.connect(), early=client_frame(0x1, b"early bird"))
    assert raw.frame() == (0x1, b"early bird")


def test_invalid_utf8_gets_1007_then_the_server_closes(ws_server: ServerProcess) -> None:
    raw = RawWebSocket(ws_server.connect())
    raw.send(client_frame(0x1, b"ok"))
    assert raw.frame() == (0x1, b"ok")
    raw.send(client_frame(0x1, b"\xff\xfe not utf-8"))
    assert raw.close_code() == 1007
    assert raw.eof()


def test_a_protocol_error_gets_a_close_frame_then_tcp_close(ws_server: ServerProcess) -> None:
    raw = RawWebSocket(ws_server.connect())
    started = time.monotonic()
    raw.send(client_frame(0x1, b"client frames must be masked", masked=False))
    assert raw.close_code() == 1002
    # The server does not wait for a close reply from a broken client: it drops TCP.
    assert raw.eof(timeout=3)
    assert time.monotonic() - started < 2


def test_over_the_size_limit_gets_1009(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve("--websocket-max-message-size", "1024", "ws_apps:app")

    async def scenario() -> None:
        async with connect(ws_url(server)) as ws:
            await ws.send(b"a" * 1024)
            assert await ws.recv() == b"a" * 1024
            await ws.send([b"b" * 600, b"b" * 600])  # fragments add up
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            assert info.value.rcvd is not None and info.value.rcvd.code == 1009

    run(scenario())


# -- liveness, timeouts and load ----------------------------------------------------------------
def test_server_pings_close_a_silent_client(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve("--ws-ping-interval", "0.2", "--ws-ping-timeout", "0.4", "ws_apps:app")
    raw = RawWebSocket(server.connect())
    started = time.monotonic()
    opcode, _ = raw.frame()
    assert opcode == 0x9  # a ping, which this client never answers
    assert raw.close_code() == 1011
    assert raw.eof()
    assert time.monotonic() - started < 3
    assert server.has_logged("WebSocket ping timeout"), server.logs()


def test_server_pings_keep_a_live_client(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve("--ws-ping-interval", "0.1", "--ws-ping-timeout", "0.3", "ws_apps:app")

    async def scenario() -> None:
        async with connect(ws_url(server), ping_interval=None) as ws:
            await asyncio.sleep(1.0)  # the client library answers the pings meanwhile
            await ws.send("still here")
            assert await ws.recv() == "still here"

    run(scenario())


def test_request_timeout_does_not_cut_a_websocket(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve("--request-timeout", "0.3", "ws_apps:app")
    ws = websocket.create_connection(ws_url(server), timeout=10)
    try:
        time.sleep(0.8)
        ws.send("after the request timeout")
        assert ws.recv() == "after the request timeout"
    finally:
        ws.close()


def test_a_slow_reader_gets_everything(ws_server: ServerProcess) -> None:
    async def scenario() -> None:
        async with connect(ws_url(ws_server, "/stream?n=200&size=65536"), max_size=None,
                           compression=None, max_queue=1) as ws:
            await asyncio.sleep(0.5)  # let the server block on a full socket buffer
            for _ in range(200):
                assert len(await ws.recv()) == 65536
            assert await ws.recv() == "done"

    run(scenario())


def test_a_client_that_never_reads_is_cut_after_the_send_timeout(serve) -> None:  # type: ignore[no-untyped-def]
    # 1,000 x 64 KB is far more than both socket buffers hold: ws.send() must block on the
    # full buffer (backpressure, no queue in the worker), then give up after --timeout.
    server = serve("--timeout", "1", "ws_apps:app")
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        raw = RawWebSocket(sock, "/stream?n=1000&size=65536")
        time.sleep(3)  # read nothing for three send timeouts
        received = len(raw.client.buf)
        ended = False
        sock.settimeout(10)
        while not ended:
            try:
                data = sock.recv(1 << 20)
            except ConnectionResetError:
                data = b""
            received += len(data)
            ended = not data
    assert received < 1000 * 65536 // 2, received


def test_200_concurrent_clients_on_one_worker(ws_server: ServerProcess) -> None:
    async def one(i: int) -> None:
        async with connect(ws_url(ws_server), open_timeout=20) as ws:
            for j in range(5):
                await ws.send(f"{i}:{j}")
                assert await ws.recv() == f"{i}:{j}"

    async def scenario() -> None:
        await asyncio.gather(*(one(i) for i in range(200)))

    run(scenario())


def test_broadcast_from_other_greenlets(ws_server: ServerProcess) -> None:
    async def scenario() -> None:
        clients = [await connect(ws_url(ws_server, "/room")) for _ in range(20)]
        try:
            await asyncio.sleep(0.2)  # every client has joined the room
            for i, ws in enumerate(clients[:5]):
                await ws.send(f"from {i}")
            for ws in clients:
                got = sorted([await ws.recv() for _ in range(5)])  # type: ignore[type-var]
                assert got == [f"from {i}" for i in range(5)]
        finally:
            for ws in clients:
                await ws.close()

    run(scenario())


def test_graceful_stop_does_not_hang_on_open_websockets(serve) -> None:  # type: ignore[no-untyped-def]
    import signal

    server = serve("--graceful-timeout", "1", "ws_apps:app")
    ws = websocket.create_connection(ws_url(server), timeout=10)
    try:
        ws.send("x")
        assert ws.recv() == "x"
        started = time.monotonic()
        server.signal(signal.SIGTERM)
        assert server.wait(15) == 0
        assert time.monotonic() - started < 10
    finally:
        ws.close()


def test_websockets_version_is_recent() -> None:
    assert int(websockets.__version__.split(".")[0]) >= 13  # the new asyncio client API


def test_graceful_stop_closes_sessions_with_1001(serve) -> None:  # type: ignore[no-untyped-def]
    import signal

    server: ServerProcess = serve("ws_apps:app")
    ws = websocket.create_connection(ws_url(server), timeout=10)
    try:
        ws.send("before")
        assert ws.recv() == "before"
        started = time.monotonic()
        server.signal(signal.SIGTERM)
        opcode, frame = ws.recv_data_frame(True)
        assert opcode == websocket.ABNF.OPCODE_CLOSE
        assert struct.unpack("!H", frame.data[:2])[0] == 1001
    finally:
        ws.close()
        ws.shutdown()  # close() does nothing once the server's close frame was read
    assert server.wait(20) == 0
    assert time.monotonic() - started < 10  # not cut at --graceful-timeout (30 s)
