"""A FastAPI WebSocket endpoint for the ASGI WebSocket tests (echo with a dependency)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI, WebSocket, WebSocketDisconnect

app = FastAPI()
DISCONNECTS: list[int] = []


def prefix() -> str:
    return "fastapi:"


@app.websocket("/echo")
async def echo(websocket: WebSocket, tag: Annotated[str, Depends(prefix)]) -> None:
    await websocket.accept(subprotocol="json" if "json" in websocket.scope["subprotocols"]
                           else None, headers=[(b"x-framework", b"fastapi")])
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                DISCONNECTS.append(message["code"])
                return
            if message.get("text") is not None:
                await websocket.send_text(tag + message["text"])
            else:
                await websocket.send_bytes(message["bytes"])
    except WebSocketDisconnect as exc:
        DISCONNECTS.append(exc.code)


@app.get("/disconnects")
async def disconnects() -> list[int]:
    return DISCONNECTS
