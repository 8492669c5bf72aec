"""A Starlette app: routes, streaming, background tasks, lifespan state, files, disconnects."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

EVENTS: list[dict[str, Any]] = []


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
    # A loop-bound resource: it works only if every request runs on the loop that made it.
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(1000):
        queue.put_nowait(i)
    yield {"queue": queue, "started": time.time(), "loop": id(asyncio.get_running_loop())}
    EVENTS.append({"event": "lifespan shutdown"})


async def hello(request: Request) -> Response:
    return PlainTextResponse("hello from starlette")


async def greet(request: Request) -> Response:
    return JSONResponse({"name": request.path_params["name"],
                         "q": request.query_params.get("q"),
                         "root_path": request.scope["root_path"],
                         "url": str(request.url)})


async def state(request: Request) -> Response:
    queue: asyncio.Queue[int] = request.state.queue
    taken = await queue.get()  # binds to the loop the lifespan made it on
    queue.put_nowait(taken)
    return JSONResponse({"taken": taken, "same_loop": request.state.loop == id(
        asyncio.get_running_loop()), "started": request.state.started})


async def upload(request: Request) -> Response:
    body = await request.body()
    return JSONResponse({"length": len(body), "head": body[:10].decode("latin-1")})


async def stream(request: Request) -> Response:
    count = int(request.query_params.get("n", "5"))
    delay = float(request.query_params.get("delay", "0.01"))

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(count):
            yield f"chunk {i} at {time.monotonic():.6f}\n".encode()
            await asyncio.sleep(delay)

    return StreamingResponse(chunks(), media_type="text/plain")


async def endless(request: Request) -> Response:
    """Never ends by itself: only a disconnect (cancellation) stops it, and its finally runs."""

    async def chunks() -> AsyncIterator[bytes]:
        sent = 0
        try:
            while True:
                yield b"tick\n"
                sent += 1
                await asyncio.sleep(0.02)
        finally:
            EVENTS.append({"event": "endless finally", "sent": sent})

    return StreamingResponse(chunks(), media_type="text/plain")


async def watch(request: Request) -> Response:
    """Polls ``request.is_disconnected()`` while working; records when the client left."""
    started = time.monotonic()
    for _ in range(200):
        if await request.is_disconnected():
            EVENTS.append({"event": "is_disconnected", "after": time.monotonic() - started})
            return Response(status_code=499)
        await asyncio.sleep(0.05)
    return PlainTextResponse("client stayed")


def _record_background(tag: str) -> None:
    EVENTS.append({"event": "background", "tag": tag})


async def background(request: Request) -> Response:
    return JSONResponse({"queued": True}, background=BackgroundTask(
        _record_background, request.query_params.get("tag", "")))


async def events(request: Request) -> Response:
    return JSONResponse(EVENTS)


async def file(request: Request) -> Response:
    return FileResponse(os.path.abspath(__file__), media_type="text/x-python")


class RecordFileSends:
    """Records the message types of /file's response: FileResponse takes the pathsend
    extension when the server offers it (the file is then sent by the server, with
    sendfile), else sends the file's bytes in body messages."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].endswith("/file"):
            await self.app(scope, receive, send)
            return
        sent: list[str] = []
        EVENTS.append({"event": "file sent", "types": sent})

        async def recording(message: Message) -> None:
            sent.append(message["type"])
            await send(message)

        await self.app(scope, receive, recording)


app = Starlette(lifespan=lifespan, middleware=[Middleware(RecordFileSends)], routes=[
    Route("/", hello),
    Route("/greet/{name}", greet),
    Route("/state", state),
    Route("/upload", upload, methods=["POST"]),
    Route("/stream", stream),
    Route("/endless", endless),
    Route("/watch", watch),
    Route("/background", background),
    Route("/events", events),
    Route("/file", file),
])
