"""A raw ASGI app for the WebSocket tests: echo, scope, denials, failures, disconnects."""

from __future__ import annotations

import asyncio
import json
from typing import Any

EVENTS: list[dict[str, Any]] = []

Receive = Any
Send = Any


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "http":
        body = json.dumps(EVENTS).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})
        return
    assert scope["type"] == "websocket"
    first = await receive()
    assert first["type"] == "websocket.connect", first
    handler = ROUTES.get(scope["path"], echo)
    await handler(scope, receive, send)


async def echo(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    offered = scope["subprotocols"]
    await send({"type": "websocket.accept", "subprotocol": offered[0] if offered else None,
                "headers": [(b"x-greenserve", b"accepted")]})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            EVENTS.append({"path": scope["path"], "code": message["code"]})
            return
        if message.get("text") is not None:
            if message["text"] == "close please":
                await send({"type": "websocket.close", "code": 4001, "reason": "bye"})
                continue
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


async def show_scope(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    await send({"type": "websocket.accept"})
    shown = {key: value for key, value in scope.items() if key not in ("state",)}
    shown["headers"] = [[n.decode(), v.decode()] for n, v in scope["headers"]]
    shown["raw_path"] = scope["raw_path"].decode()
    shown["query_string"] = scope["query_string"].decode()
    shown["state_type"] = type(scope["state"]).__name__
    await send({"type": "websocket.send", "text": json.dumps(shown)})
    await send({"type": "websocket.close"})


async def deny(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    await send({"type": "websocket.http.response.start", "status": 401,
                "headers": [(b"content-type", b"text/plain"), (b"x-denied", b"yes")]})
    await send({"type": "websocket.http.response.body", "body": b"go ", "more_body": True})
    await send({"type": "websocket.http.response.body", "body": b"away"})


async def close_early(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    await send({"type": "websocket.close", "code": 1000})
    message = await receive()
    EVENTS.append({"path": scope["path"], "after_close": message["type"]})


async def boom_before(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    raise RuntimeError("boom before accept (expected by the test)")


async def boom_after(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    await send({"type": "websocket.accept"})
    await receive()
    raise RuntimeError("boom after accept (expected by the test)")


async def slow(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """Reads nothing for a second (the client must be held back), then counts bytes."""
    await send({"type": "websocket.accept"})
    await asyncio.sleep(1.0)
    total = 0
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") == "done":
            await send({"type": "websocket.send", "text": str(total)})
        else:
            total += len(message.get("bytes") or b"")


async def wait_first(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """Waits for the client before deciding (it leaves): the disconnect must arrive."""
    message = await receive()
    EVENTS.append({"path": scope["path"], "before_accept": message})


ROUTES = {"/slow": slow, "/wait-first": wait_first, "/scope": show_scope, "/deny": deny,
          "/close": close_early, "/boom-before": boom_before, "/boom-after": boom_after}
