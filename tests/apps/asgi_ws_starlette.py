"""Starlette WebSocket routes for the ASGI WebSocket tests: echo, subprotocol, denial."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.endpoints import WebSocketEndpoint
from starlette.responses import PlainTextResponse
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

DISCONNECTS: list[int] = []


async def echo(websocket: WebSocket) -> None:
    offered = websocket.scope["subprotocols"]
    await websocket.accept(subprotocol=offered[0] if offered else None,
                           headers=[(b"x-framework", b"starlette")])
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                DISCONNECTS.append(message["code"])
                return
            if message.get("text") is not None:
                await websocket.send_text(message["text"])
            else:
                await websocket.send_bytes(message["bytes"])
    except WebSocketDisconnect as exc:
        DISCONNECTS.append(exc.code)


class Counter(WebSocketEndpoint):
    encoding = "text"

    async def on_receive(self, websocket: WebSocket, data: str) -> None:
        await websocket.send_text(f"{data}:{len(data)}")


async def denied(websocket: WebSocket) -> None:
    await websocket.send_denial_response(PlainTextResponse("members only", status_code=403))


app = Starlette(routes=[
    WebSocketRoute("/echo", echo),
    WebSocketRoute("/count", Counter),
    WebSocketRoute("/denied", denied),
])
