"""WebSocket interop with clients greenserve's own tests do not otherwise use: aiohttp's client
and Node.js's built-in WebSocket (undici), plus websockets' fragmented sends, against the WSGI
echo (tests/apps/ws_apps.py) and the ASGI echo (tests/apps/asgi_ws_raw.py), over real sockets.

Also the ``ws_per_message_deflate`` setting: off, a client offering permessage-deflate gets
no ``Sec-WebSocket-Extensions`` in the 101 and messages still flow; on, it is negotiated.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from websockets.asyncio.client import connect
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

from conftest import TESTS, ServerProcess
from greenserve.config import ConfigError, load

NODE = shutil.which("node")
NODE_CLIENT = TESTS / "clients" / "node_ws_client.mjs"
MIB = 1 << 20


@dataclass(frozen=True)
class Target:
    """One echo app and how to make it close the connection itself with 4001 "bye"."""

    name: str
    spec: str
    close_path: str  # the path to connect to
    close_trigger: str  # the text message to send there
    subprotocol: str  # a subprotocol the app chooses when offered ("" if it chooses none)


WSGI = Target("wsgi", "ws_apps:app", "/close?code=4001&reason=bye", "anything", "")
ASGI = Target("asgi", "asgi_ws_raw:app", "/echo", "close please", "chat")

Serve = Callable[..., ServerProcess]


@pytest.fixture(params=[WSGI, ASGI], ids=lambda t: t.name)
def target(request: pytest.FixtureRequest) -> Target:
    chosen: Target = request.param
    return chosen


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 60))


def url(server: ServerProcess, path: str = "/echo") -> str:
    return f"ws://127.0.0.1:{server.port}{path}"


def pattern(size: int) -> bytes:
    """Compressible but not trivially so: catches a wrong inflate as well as a wrong length."""
    return bytes((i * 7 + i // 1000) % 251 for i in range(size))


# -- aiohttp -----------------------------------------------------------------------------------
def test_aiohttp_text_binary_1mib_ping_and_close_code_compressed(
        serve: Serve, target: Target) -> None:
    server = serve(target.spec)

    async def go() -> list[Any]:
        async with aiohttp.ClientSession() as session, session.ws_connect(
                url(server), compress=15, autoping=False, max_msg_size=4 * MIB) as ws:
            got: list[Any] = [ws.compress]
            for message in ("héllo", "x" * MIB):
                await ws.send_str(message)
                got.append((await ws.receive_str()) == message)
            for data in (b"\x00\xff\x01", pattern(MIB)):
                await ws.send_bytes(data)
                got.append((await ws.receive_bytes()) == data)
            await ws.ping(b"are you there")
            pong = await ws.receive()
            got.append((pong.type, pong.data))
            await ws.close(code=4000, message=b"done")
            got.append(ws.close_code)
            return got

    assert run(go()) == [15, True, True, True, True,
                         (aiohttp.WSMsgType.PONG, b"are you there"), 4000]


def test_aiohttp_uncompressed_and_server_close_code(serve: Serve, target: Target) -> None:
    server = serve(target.spec)

    async def go() -> list[Any]:
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(url(server), compress=0,
                                          max_msg_size=4 * MIB) as ws:
                data = os.urandom(MIB)  # incompressible, and sent as it is
                await ws.send_bytes(data)
                got: list[Any] = [ws.compress, (await ws.receive_bytes()) == data]
            async with session.ws_connect(url(server, target.close_path)) as ws:
                await ws.send_str(target.close_trigger)
                closing = await ws.receive()
                got += [closing.type, closing.data, closing.extra]
            return got

    assert run(go()) == [0, True, aiohttp.WSMsgType.CLOSE, 4001, "bye"]


def test_aiohttp_sees_and_answers_server_pings(serve: Serve, target: Target) -> None:
    """The server pings every 0.2 s and closes (1011) a client silent for 1.5 s after a ping:
    aiohttp's automatic pongs (sent while the app waits in receive()) keep an idle connection
    open for longer than that."""
    server = serve(target.spec, "--ws-ping-interval", "0.2", "--ws-ping-timeout", "1.5")

    async def go() -> list[Any]:
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(url(server), autoping=False) as ws:
                ping = await ws.receive()
                await ws.pong(ping.data)
                got: list[Any] = [ping.type]
            async with session.ws_connect(url(server), autoping=True) as ws:
                # aiohttp answers pings inside receive(): an app reads all the time
                reading = asyncio.ensure_future(ws.receive())
                await asyncio.sleep(2.5)
                await ws.send_str("still here")
                got.append((await reading).data)
                await ws.close()
                got.append(ws.close_code)
            return got

    assert run(go()) == [aiohttp.WSMsgType.PING, "still here", 1000]


# -- websockets: fragmented messages, compressed ---------------------------------------------
def test_websockets_fragmented_compressed_messages(serve: Serve, target: Target) -> None:
    server = serve(target.spec)

    async def fragments(parts: list[Any]) -> AsyncIterator[Any]:
        for part in parts:
            yield part

    async def go() -> list[Any]:
        async with connect(url(server), max_size=4 * MIB) as ws:
            assert ws.response is not None
            got: list[Any] = [ws.response.headers.get("Sec-WebSocket-Extensions")]
            text = ["frag", "mént", "é" * 70000, "end"]
            await ws.send(fragments(text))
            got.append(await ws.recv() == "".join(text))
            binary = [pattern(300000), b"", os.urandom(1000), pattern(MIB - 301000)]
            await ws.send(fragments(binary))
            got.append(await ws.recv() == b"".join(binary))
            await ws.close(4002, "fragments done")
            got.append(ws.close_code)
            return got

    extensions, *rest = run(go())
    assert extensions.startswith("permessage-deflate")
    assert rest == [True, True, 4002]


@pytest.mark.parametrize(("offer", "answer"), [
    ({"server_max_window_bits": 9, "client_max_window_bits": 9,
      "server_no_context_takeover": True, "client_no_context_takeover": True},
     "permessage-deflate; client_no_context_takeover; server_no_context_takeover; "
     "client_max_window_bits=9; server_max_window_bits=9"),
    ({"client_max_window_bits": True, "client_no_context_takeover": True},
     "permessage-deflate; client_no_context_takeover; client_max_window_bits=15"),
    # zlib cannot compress with a 256-byte window: the offer is declined, not half-honoured
    ({"server_max_window_bits": 8}, None),
], ids=["small-windows-no-takeover", "client-no-takeover", "window-8-declined"])
def test_deflate_parameters_negotiated_with_websockets(
        serve: Serve, target: Target, offer: dict[str, Any], answer: str | None) -> None:
    server = serve(target.spec)
    factory = ClientPerMessageDeflateFactory(**offer)

    async def go() -> list[Any]:
        async with connect(url(server), extensions=[factory], compression=None,
                           max_size=None) as ws:
            assert ws.response is not None
            got: list[Any] = [ws.response.headers.get("Sec-WebSocket-Extensions")]
            for n in range(3):  # later messages use (or must not use) the earlier context
                data = pattern(300000)[n:] + os.urandom(1000)
                await ws.send(data)
                got.append(await ws.recv() == data)
            return got

    assert run(go()) == [answer, True, True, True]


# -- Node.js's built-in WebSocket --------------------------------------------------------------
def node_client(server_url: str, mode: str, arg: str, subprotocol: str = "") -> dict[str, Any]:
    if NODE is None:
        pytest.skip("node is not installed")
    argv = [NODE, *node_flags(), str(NODE_CLIENT), server_url, mode, arg, subprotocol]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, (done.stdout, done.stderr)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@functools.cache
def node_flags() -> tuple[str, ...]:
    """``--experimental-websocket`` where the global WebSocket needs it (Node 20, 21)."""
    assert NODE is not None
    probe = subprocess.run(
        [NODE, "-e", "process.exit(typeof WebSocket === 'function' ? 0 : 1)"],
        capture_output=True, timeout=30)
    return () if probe.returncode == 0 else ("--experimental-websocket",)


def test_node_echo_compressed_through_server_pings(serve: Serve, target: Target) -> None:
    """Node 20's WebSocket needs ``--experimental-websocket`` (global from Node 22). It offers
    permessage-deflate; it must answer the pings sent while it holds the connection 2.5 s."""
    server = serve(target.spec, "--ws-ping-interval", "0.2", "--ws-ping-timeout", "1.5")
    out = node_client(url(server), "echo", "2500", target.subprotocol)
    assert out["opened"] and out["extensions"].startswith("permessage-deflate")
    assert out["protocol"] == target.subprotocol
    big_sum = sum((i * 7) % 251 for i in range(MIB)) % 65521
    assert out["echoes"] == [
        {"kind": "text", "length": 11, "head": "héllo wörld"},
        {"kind": "binary", "length": 4, "sum": 510},
        {"kind": "binary", "length": MIB, "sum": big_sum},
    ]
    assert out["close"] == {"code": 4000, "reason": "done", "wasClean": True}


def test_node_sees_the_server_close_code(serve: Serve, target: Target) -> None:
    server = serve(target.spec)
    out = node_client(url(server, target.close_path), "server-close", target.close_trigger,
                      target.subprotocol)
    assert out["opened"]
    assert out["close"] == {"code": 4001, "reason": "bye", "wasClean": True}


def test_node_without_a_chosen_subprotocol_fails_the_handshake(serve: Serve) -> None:
    """What a browser does too: the client offered a subprotocol and the WSGI echo chose none
    (no ``Sec-WebSocket-Protocol`` in the 101), so the client refuses the connection. The app
    must choose one (``ws.accept(subprotocol=...)``, the ``/subprotocol`` path here)."""
    server = serve(WSGI.spec)
    chosen = node_client(url(server, "/subprotocol?choose=chat"), "open", "500", "chat")
    assert chosen["opened"] and chosen["protocol"] == "chat"
    assert chosen["echoes"] == [{"kind": "text", "length": 4, "head": "chat"}]
    assert chosen["close"] == {"code": 1000, "reason": "", "wasClean": True}
    assert NODE is not None  # node_client skipped otherwise
    argv = [NODE, *node_flags(), str(NODE_CLIENT), url(server), "echo", "0", "chat"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert json.loads(done.stdout) == {"opened": False, "extensions": None, "protocol": None,
                                       "echoes": [], "close": None, "error": True}


# -- the ws_per_message_deflate setting -------------------------------------------------------
@pytest.mark.parametrize("deflate", ["false", "true"])
def test_per_message_deflate_setting(serve: Serve, target: Target, deflate: str) -> None:
    server = serve(target.spec, "--ws-per-message-deflate", deflate)
    data = pattern(MIB)

    async def go() -> list[Any]:
        # websockets offers permessage-deflate by default
        async with connect(url(server), max_size=4 * MIB) as ws:
            assert ws.response is not None
            got: list[Any] = [ws.response.headers.get("Sec-WebSocket-Extensions")]
            await ws.send(data)
            got.append(await ws.recv() == data)
            await ws.send("text too")
            got.append(await ws.recv())
        async with aiohttp.ClientSession() as session, session.ws_connect(
                url(server), compress=15, max_msg_size=4 * MIB) as aws:
            await aws.send_bytes(data)
            got += [aws.compress, (await aws.receive_bytes()) == data]
        return got

    header, *flowed = run(go())
    if deflate == "false":
        assert header is None and flowed == [True, "text too", 0, True]
    else:
        assert header.startswith("permessage-deflate") and flowed == [True, "text too", 15, True]


def test_per_message_deflate_off_for_node(serve: Serve, target: Target) -> None:
    server = serve(target.spec, "--ws-per-message-deflate", "0")
    out = node_client(url(server), "echo", "0", target.subprotocol)
    assert out["extensions"] == "" and len(out["echoes"]) == 3
    assert out["close"]["code"] == 4000


def test_per_message_deflate_config_sources(tmp_path: Path) -> None:
    assert load([], {}).ws_per_message_deflate is True
    for value, expected in (("false", False), ("no", False), ("0", False), ("true", True)):
        assert load(["--ws-per-message-deflate", value], {}).ws_per_message_deflate is expected
    conf = tmp_path / "conf.py"
    conf.write_text("ws_per_message_deflate = False\n")
    assert load(["-c", str(conf)], {}).ws_per_message_deflate is False
    with pytest.raises(ConfigError, match="ws.per.message.deflate"):
        load(["--ws-per-message-deflate", "maybe"], {})
