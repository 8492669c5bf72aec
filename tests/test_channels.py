"""Django Channels behind greenserve (tests/apps/channelsproj), with the websockets client.

A ``ProtocolTypeRouter``: Django's ASGI handler for HTTP, a ``URLRouter`` of consumers for
WebSocket: an ``AsyncWebsocketConsumer`` and a sync ``WebsocketConsumer`` (which Channels
runs through ``sync_to_async``/``async_to_sync``, on gevent's patched threads here), and chat
consumers of both kinds broadcasting to a group through the in-memory channel layer.

Channels and Django are imported only by the server subprocess.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from master_helpers import wait_for
from test_websocket_interop import node_client
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from conftest import ServerProcess

ENV = {"DJANGO_SETTINGS_MODULE": "channelsproj.settings"}


@pytest.fixture(scope="module")
def channels_server() -> Iterator[ServerProcess]:
    server = ServerProcess(["-w", "1", "-b", "127.0.0.1:0", "channelsproj.asgi"], ENV)
    try:
        yield server.wait_listening()
    finally:
        server.stop()


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))


def url(server: ServerProcess, path: str) -> str:
    return f"ws://127.0.0.1:{server.port}{path}"


def closed_codes(server: ServerProcess) -> list[dict[str, Any]]:
    response = requests.get(f"{server.url}/closed/", timeout=10)
    response.raise_for_status()
    codes: list[dict[str, Any]] = response.json()
    return codes


def test_http_goes_to_django(channels_server: ServerProcess) -> None:
    response = requests.get(f"{channels_server.url}/hello/?q=greenserve", timeout=10)
    assert response.status_code == 200
    assert response.json() == {"hello": "django", "method": "GET", "q": "greenserve"}
    assert requests.get(f"{channels_server.url}/nowhere/", timeout=10).status_code == 404


def test_async_consumer_echo_subprotocol_and_client_close_code(
        channels_server: ServerProcess) -> None:
    async def go() -> list[Any]:
        async with connect(url(channels_server, "/ws/echo/"), subprotocols=["chat"],  # type: ignore[list-item]
                           max_size=2 << 20) as ws:
            got: list[Any] = [ws.subprotocol]
            for message in ("hello", "é" * 1000, b"\x00\xff", b"z" * (1 << 20)):
                await ws.send(message)
                got.append(await ws.recv() == message)
            await ws.close(4000, "bye from the client")
            return got

    assert run(go()) == ["chat", True, True, True, True]
    # the consumer's disconnect() saw the client's code (it may run just after the close)
    wait_for(lambda: {"consumer": "async-echo", "code": 4000} in closed_codes(channels_server))


def test_sync_consumer_echo_and_server_close_code(channels_server: ServerProcess) -> None:
    async def go() -> list[Any]:
        async with connect(url(channels_server, "/ws/sync-echo/")) as ws:
            await ws.send("hi")
            got: list[Any] = [await ws.recv()]
            await ws.send(b"\x01\x02")
            got.append(await ws.recv())
            await ws.send("close 4003")
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None
            got.append(closed.value.rcvd.code)
            return got

    assert run(go()) == ["sync:hi", b"\x01\x02", 4003]


def test_consumer_closing_before_accept_is_a_403(channels_server: ServerProcess) -> None:
    async def go() -> int:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url(channels_server, "/ws/refuse/")):
                pass
        return refused.value.response.status_code

    assert run(go()) == 403


def test_group_broadcast_between_async_and_sync_consumers(
        channels_server: ServerProcess) -> None:
    """Two clients in room r1 (one per consumer kind) hear every message sent to the room;
    a client in room r2 hears none of them."""
    async def go() -> list[Any]:
        async with connect(url(channels_server, "/ws/chat/r1/")) as a, \
                connect(url(channels_server, "/ws/sync-chat/r1/")) as b, \
                connect(url(channels_server, "/ws/chat/r2/")) as other:
            got: list[Any] = []
            for sender, text in ((a, "one"), (b, "two"), (a, "three")):
                await sender.send(text)
                got.append((await a.recv(), await b.recv()))
            await other.send("alone")
            got.append(await other.recv())  # its own broadcast, and nothing from r1 before it
            return got

    assert run(go()) == [
        ("async said one", "async said one"),
        ("sync said two", "sync said two"),
        ("async said three", "async said three"),
        "async said alone",
    ]


def test_a_blocking_sync_consumer_does_not_block_the_worker(
        channels_server: ServerProcess) -> None:
    """The sync consumer runs in asgiref's thread-sensitive executor thread (a greenlet once
    gevent patched threading); its ``time.sleep`` must not stop the worker's hub: pings on
    its own connection and on another one are answered while it sleeps.

    Consumers' *messages* do wait for it, under any server: since Channels 4.2 every
    dispatch, async consumers' too, first runs ``close_old_connections`` through that same
    single executor thread, so a blocking sync consumer delays every consumer of the process.
    """
    async def go() -> list[Any]:
        async with connect(url(channels_server, "/ws/sync-echo/")) as sleeper, \
                connect(url(channels_server, "/ws/echo/")) as other:
            await sleeper.send("sleep 3")
            slept = asyncio.ensure_future(sleeper.recv())
            await asyncio.sleep(0.2)  # the consumer is asleep by now
            got: list[Any] = []
            for ws in (other, sleeper):
                pong = await ws.ping(b"hub")
                await pong
                got.append(slept.done())
            got.append(await slept)
            return got

    assert run(go()) == [False, False, "slept"]


@pytest.mark.parametrize("path", ["/ws/echo/", "/ws/sync-echo/"])
def test_node_client_against_consumers(channels_server: ServerProcess, path: str) -> None:
    """Node's built-in WebSocket: text, binary and 1 MiB messages, compressed."""
    out = node_client(url(channels_server, path), "echo", "0")
    prefix = "sync:" if "sync" in path else ""
    assert out["extensions"].startswith("permessage-deflate")
    assert [e["kind"] for e in out["echoes"]] == ["text", "binary", "binary"]
    assert out["echoes"][0]["head"] == prefix + "héllo wörld"
    assert out["echoes"][2]["length"] == 1 << 20
    assert out["close"] == {"code": 4000, "reason": "done", "wasClean": True}
