"""Apps served by ``idle_conns.py`` and ``ws_broadcast.py``: one WSGI app, one raw ASGI app.

Both answer the same routes, so every server runs the same code path:

- any plain HTTP request: ``200`` with ``Hello, world!`` (13 bytes, ``Content-Length``);
- ``GET /broadcast?n=N&size=S`` (HTTP): send N text messages of S bytes to every member of
  the room, one member after the other for each message (the naive broadcast loop most apps
  write), then answer with a JSON summary ``{"members", "sent", "failed", "seconds"}``;
- WebSocket ``/room``: join the room and stay until the client leaves (messages ignored);
- WebSocket on any other path: echo every message.

The WSGI side uses gevent-websocket's API (``environ["wsgi.websocket"]``), so it only works
on a server that provides it (greenserve); ``gunicorn -k gevent`` serves only the HTTP routes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

HELLO = b"Hello, world!"
_HELLO_HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(HELLO)))]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
StartResponse = Callable[..., Any]

# Module-level rooms: one worker process holds every member, which is what is measured.
_wsgi_room: set[Any] = set()
_asgi_room: set[Send] = set()


def _query(raw: str | bytes) -> tuple[int, int]:
    text = raw.decode("latin-1") if isinstance(raw, bytes) else raw
    query = parse_qs(text)
    return int(query.get("n", ["1"])[0]), int(query.get("size", ["64"])[0])


def _summary(members: int, sent: int, failed: int, started: float) -> bytes:
    return json.dumps({"members": members, "sent": sent, "failed": failed,
                       "seconds": time.perf_counter() - started}).encode()


def wsgi_app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """The WSGI side: hello, broadcast, and (with ``wsgi.websocket``) room and echo."""
    ws = environ.get("wsgi.websocket")
    if ws is None:
        if environ.get("PATH_INFO") == "/broadcast":
            body = _wsgi_broadcast(environ.get("QUERY_STRING", ""))
            start_response("200 OK", [("Content-Type", "application/json"),
                                      ("Content-Length", str(len(body)))])
            return [body]
        start_response("200 OK", _HELLO_HEADERS)
        return [HELLO]
    if environ.get("PATH_INFO") == "/room":
        _wsgi_room.add(ws)
        try:
            while ws.receive() is not None:
                pass
        finally:
            _wsgi_room.discard(ws)
        return []
    while (message := ws.receive()) is not None:
        ws.send(message)
    return []


def _wsgi_broadcast(query: str) -> bytes:
    count, size = _query(query)
    payload = "x" * size
    members = list(_wsgi_room)
    started = time.perf_counter()
    sent = failed = 0
    for _ in range(count):
        for ws in members:
            try:
                ws.send(payload)
                sent += 1
            except OSError:  # the member left: gevent-websocket raises WebSocketError
                failed += 1
    return _summary(len(members), sent, failed, started)


async def asgi_app(scope: Scope, receive: Receive, send: Send) -> None:
    """The ASGI 3 side: the same routes as :func:`wsgi_app`."""
    if scope["type"] == "websocket":
        await _asgi_websocket(scope, receive, send)
    elif scope["type"] == "http":
        if scope["path"] == "/broadcast":
            body = await _asgi_broadcast(scope["query_string"])
            headers = [(b"content-type", b"application/json")]
        else:
            body, headers = HELLO, [(b"content-type", b"text/plain")]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


async def _asgi_websocket(scope: Scope, receive: Receive, send: Send) -> None:
    if (await receive())["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    room = scope["path"] == "/room"
    if room:
        _asgi_room.add(send)
    try:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            if not room:
                await send({"type": "websocket.send", "text": message.get("text"),
                            "bytes": message.get("bytes")})
    finally:
        _asgi_room.discard(send)


async def _asgi_broadcast(query: bytes) -> bytes:
    count, size = _query(query)
    message = {"type": "websocket.send", "text": "x" * size}
    members = list(_asgi_room)
    started = time.perf_counter()
    sent = failed = 0
    for _ in range(count):
        for member in members:
            try:
                await member(dict(message))
                sent += 1
            # Each server raises its own type for a closed socket (OSError subclasses,
            # RuntimeError in uvicorn); a failed member must not stop the broadcast.
            except Exception:
                failed += 1
    return _summary(len(members), sent, failed, started)
