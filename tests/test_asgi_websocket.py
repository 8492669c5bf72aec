"""WebSocket for ASGI apps, end to end: a raw ASGI app, Starlette and FastAPI behind a real
server, with real clients (websockets' asyncio client, websocket-client) and raw sockets for
what no correct client sends.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import websocket
from master_helpers import wait_for
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from conftest import RawClient, ServerProcess


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))


def url(server: ServerProcess, path: str = "/echo") -> str:
    return f"ws://127.0.0.1:{server.port}{path}"


def events(server: ServerProcess, path: str = "/events") -> Any:
    return requests.get(f"{server.url}{path}", timeout=10).json()


def response_header(ws: Any, name: str) -> str:
    response = ws.response
    assert response is not None
    return str(response.headers[name])


def handshake_bytes(path: str, *extra: str, version: str = "13") -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", "Upgrade: websocket",
             "Connection: Upgrade", f"Sec-WebSocket-Key: {key}",
             f"Sec-WebSocket-Version: {version}", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_frame(client: RawClient) -> tuple[int, bytes]:
    head = client._exactly(2)
    n = head[1] & 0x7F
    if n == 126:
        n = struct.unpack("!H", client._exactly(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", client._exactly(8))[0]
    return head[0] & 0x0F, client._exactly(n)


@pytest.fixture
def raw_app(serve: Any) -> ServerProcess:
    server: ServerProcess = serve("asgi_ws_raw:app", "--websocket-max-message-size", "4096")
    return server


# -- the raw ASGI app --------------------------------------------------------------------------
def test_echo_text_bytes_subprotocol_headers(raw_app: ServerProcess) -> None:
    async def go() -> list[Any]:
        async with connect(url(raw_app), subprotocols=["chat", "other"]) as ws:  # type: ignore[list-item]
            got: list[Any] = [ws.subprotocol, response_header(ws, "x-greenserve")]
            for message in ("hello", b"\x00\xffbinary", "é" * 100, b"x" * 3000):
                await ws.send(message)
                got.append(await ws.recv())
            await ws.ping(b"are you there")  # answered by the session
            return got

    got = run(go())
    assert got == ["chat", "accepted", "hello", b"\x00\xffbinary", "é" * 100, b"x" * 3000]
    assert wait_for(lambda: {"path": "/echo", "code": 1000} in events(raw_app))


def test_websocket_client_interop(raw_app: ServerProcess) -> None:
    ws = websocket.create_connection(url(raw_app), timeout=10, subprotocols=["v1"])
    try:
        assert ws.subprotocol == "v1"
        ws.send("text")
        assert ws.recv() == "text"
        ws.send_binary(b"\x01\x02")
        assert ws.recv() == b"\x01\x02"
    finally:
        ws.close()


def test_scope(raw_app: ServerProcess) -> None:
    async def go() -> Any:
        async with connect(url(raw_app, "/scope?x=1%202"), subprotocols=["a", "b"]) as ws:  # type: ignore[list-item]
            return json.loads(await ws.recv())

    scope = run(go())
    assert scope["type"] == "websocket"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.3"}
    assert scope["http_version"] == "1.1"
    assert scope["scheme"] == "ws"
    assert (scope["path"], scope["raw_path"], scope["query_string"]) == (
        "/scope", "/scope", "x=1%202")
    assert scope["root_path"] == ""
    assert scope["subprotocols"] == ["a", "b"]
    assert scope["extensions"] == {"websocket.http.response": {}}
    assert scope["client"][0] == "127.0.0.1"
    assert scope["server"] == ["127.0.0.1", raw_app.port]
    assert ["upgrade", "websocket"] in scope["headers"]
    assert scope["state_type"] == "dict"
    assert "method" not in scope


def test_close_from_the_app_with_code_and_reason(raw_app: ServerProcess) -> None:
    async def go() -> tuple[int, str]:
        async with connect(url(raw_app)) as ws:
            await ws.send("close please")
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            assert info.value.rcvd is not None
            return info.value.rcvd.code, info.value.rcvd.reason

    assert run(go()) == (4001, "bye")


def test_denial_response(raw_app: ServerProcess) -> None:
    client = RawClient(raw_app.connect())
    client.send(handshake_bytes("/deny"))
    status, headers, body = client.response()
    assert (status, body) == (401, b"go away")
    assert headers["x-denied"] == "yes"
    assert client.closed()


def test_close_before_accept_is_403(raw_app: ServerProcess) -> None:
    async def go() -> int:
        with pytest.raises(InvalidStatus) as info:
            async with connect(url(raw_app, "/close")):
                pass
        return info.value.response.status_code

    assert run(go()) == 403
    assert wait_for(lambda: {"path": "/close", "after_close": "websocket.disconnect"}
                    in events(raw_app))


def test_app_exception_before_accept_is_500(raw_app: ServerProcess) -> None:
    client = RawClient(raw_app.connect())
    client.send(handshake_bytes("/boom-before"))
    status, _, _ = client.response()
    assert status == 500
    assert "boom before accept" in wait_for(lambda: "boom before" in raw_app.logs()
                                            and raw_app.logs())


def test_app_exception_after_accept_closes_1011(raw_app: ServerProcess) -> None:
    async def go() -> int:
        async with connect(url(raw_app, "/boom-after")) as ws:
            await ws.send("trigger")
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            assert info.value.rcvd is not None
            return info.value.rcvd.code

    assert run(go()) == 1011


def test_broken_handshake_is_refused_without_the_app(raw_app: ServerProcess) -> None:
    client = RawClient(raw_app.connect())
    client.send(handshake_bytes("/echo", version="8"))
    status, headers, _ = client.response()
    assert status == 426
    assert headers["sec-websocket-version"] == "13"


def test_message_too_big_closes_1009(raw_app: ServerProcess) -> None:
    async def go() -> int:
        async with connect(url(raw_app), compression=None) as ws:
            await ws.send("fits")
            assert await ws.recv() == "fits"
            await ws.send(b"y" * 5000)
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            assert info.value.rcvd is not None
            return info.value.rcvd.code

    assert run(go()) == 1009
    assert wait_for(lambda: {"path": "/echo", "code": 1009} in events(raw_app))


def test_protocol_error_sends_close_then_closes_tcp(raw_app: ServerProcess) -> None:
    client = RawClient(raw_app.connect())
    client.send(handshake_bytes("/echo"))
    status, _, _ = client.response(head_only=True)
    assert status == 101
    client.send(b"\x81\x02hi")  # an unmasked client frame: 1002
    opcode, payload = read_frame(client)
    assert opcode == 8
    assert struct.unpack("!H", payload[:2])[0] == 1002
    assert client.closed()  # no close reply needed: the server drops TCP


def masked_frame(opcode: int, payload: bytes) -> bytes:
    mask = os.urandom(4)
    return (bytes([0x80 | opcode, 0x80 | len(payload)]) + mask
            + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))


def test_a_frame_dribbled_in_with_pauses_is_echoed_whole(raw_app: ServerProcess) -> None:
    # Between pieces the connection is idle (the reader greenlet is gone and comes back
    # with the next bytes): the session keeps the partial frame across the pauses.
    client = RawClient(raw_app.connect())
    client.send(handshake_bytes("/echo"))
    assert client.response(head_only=True)[0] == 101
    for text in (b"first", b"after an idle spell"):
        frame = masked_frame(0x1, text)
        for i in range(0, len(frame), 3):
            client.send(frame[i:i + 3])
            time.sleep(0.05)
        assert read_frame(client) == (0x1, text)
        time.sleep(0.3)
    client.send(masked_frame(0x8, struct.pack("!H", 1000)))
    assert read_frame(client)[0] == 8
    assert client.closed()
    assert wait_for(lambda: {"path": "/echo", "code": 1000} in events(raw_app))


def test_client_disconnect_reaches_the_app(raw_app: ServerProcess) -> None:
    sock = raw_app.connect()
    client = RawClient(sock)
    client.send(handshake_bytes("/echo"))
    assert client.response(head_only=True)[0] == 101
    sock.shutdown(socket.SHUT_RDWR)
    sock.close()
    assert wait_for(lambda: {"path": "/echo", "code": 1006} in events(raw_app))


def test_client_leaving_before_the_accept_reaches_the_app(raw_app: ServerProcess) -> None:
    sock = raw_app.connect()
    sock.sendall(handshake_bytes("/wait-first"))
    time.sleep(0.2)
    sock.close()
    expected = {"path": "/wait-first", "before_accept": {
        "type": "websocket.disconnect", "code": 1006, "reason": ""}}
    assert wait_for(lambda: expected in events(raw_app))


def test_graceful_stop_closes_with_1001(serve: Any) -> None:
    server: ServerProcess = serve("asgi_ws_raw:app", "--graceful-timeout", "1")

    async def go() -> int:
        async with connect(url(server)) as ws:
            await ws.send("x")
            assert await ws.recv() == "x"
            server.signal(signal.SIGTERM)
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            assert info.value.rcvd is not None
            return info.value.rcvd.code

    assert run(go()) == 1001
    assert server.wait(20) == 0


def test_fifty_concurrent_clients(raw_app: ServerProcess) -> None:
    async def one(i: int) -> list[Any]:
        async with connect(url(raw_app)) as ws:
            got = []
            for j in range(5):
                await ws.send(f"{i}-{j}")
                got.append(await ws.recv())
            return got

    async def go() -> list[list[Any]]:
        return await asyncio.gather(*(one(i) for i in range(50)))

    results = run(go())
    assert results == [[f"{i}-{j}" for j in range(5)] for i in range(50)]


def test_a_slow_app_holds_the_client_back(serve: Any) -> None:
    server: ServerProcess = serve("asgi_ws_raw:app")
    chunk, count = b"b" * 65536, 600  # ~40 MB: far more than the socket buffers hold

    async def go() -> tuple[int, str]:
        async with connect(url(server, "/slow"), compression=None) as ws:
            sent = 0

            async def producer() -> None:
                nonlocal sent
                for _ in range(count):
                    await ws.send(chunk)
                    sent += 1
                await ws.send("done")

            task = asyncio.create_task(producer())
            await asyncio.sleep(0.7)
            held_at = sent  # the app has not read anything yet
            await task
            return held_at, str(await ws.recv())

    held_at, total = run(go())
    assert held_at < count // 2
    assert total == str(len(chunk) * count)


def test_server_pings(serve: Any) -> None:
    server: ServerProcess = serve("asgi_ws_raw:app", "--ws-ping-interval", "0.2")
    client = RawClient(server.connect())
    client.send(handshake_bytes("/echo"))
    assert client.response(head_only=True)[0] == 101
    assert read_frame(client)[0] == 9  # a ping, without a word from the client


def test_wss_over_tls(serve: Any, tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    key, cert = tmp_path / "server.key", tmp_path / "server.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    server: ServerProcess = serve("--certfile", str(cert), "--keyfile", str(key),
                                  "asgi_ws_raw:app")
    context = ssl.create_default_context(cafile=str(cert))

    async def go() -> list[Any]:
        wss = f"wss://127.0.0.1:{server.port}"
        async with connect(f"{wss}/echo", ssl=context) as ws:
            got: list[Any] = []
            for message in ("over tls", b"z" * 200_000):
                await ws.send(message)
                got.append(await ws.recv())
        async with connect(f"{wss}/scope", ssl=context) as ws:
            got.append(json.loads(await ws.recv())["scheme"])
        return got

    assert run(go()) == ["over tls", b"z" * 200_000, "wss"]


# -- frameworks ----------------------------------------------------------------------------------
def test_starlette_websocket_route(serve: Any) -> None:
    server: ServerProcess = serve("asgi_ws_starlette:app")

    async def go() -> list[Any]:
        async with connect(url(server), subprotocols=["graphql-ws"]) as ws:  # type: ignore[list-item]
            got: list[Any] = [ws.subprotocol, response_header(ws, "x-framework")]
            await ws.send("hi")
            got.append(await ws.recv())
            await ws.send(b"\x00")
            got.append(await ws.recv())
        async with connect(url(server, "/count")) as ws:
            await ws.send("abc")
            got.append(await ws.recv())
        return got

    assert run(go()) == ["graphql-ws", "starlette", "hi", b"\x00", "abc:3"]
    client = RawClient(server.connect())
    client.send(handshake_bytes("/denied"))
    status, _, body = client.response()
    assert (status, body) == (403, b"members only")
    assert "Traceback" not in server.logs()


def test_fastapi_websocket_endpoint(serve: Any) -> None:
    server: ServerProcess = serve("asgi_ws_fastapi:app")

    async def go() -> list[Any]:
        async with connect(url(server), subprotocols=["x", "json"]) as ws:  # type: ignore[list-item]
            got: list[Any] = [ws.subprotocol, response_header(ws, "x-framework")]
            await ws.send("ping")
            got.append(await ws.recv())
            await ws.send(b"raw")
            got.append(await ws.recv())
            return got

    assert run(go()) == ["json", "fastapi", "fastapi:ping", b"raw"]
    assert wait_for(lambda: 1000 in events(server, "/disconnects"))
    assert "Traceback" not in server.logs()
