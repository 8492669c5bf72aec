"""Apps for the mixed-deploy tests (``--mount``): a Flask app, a FastAPI app, a raw WSGI app.

``legacy`` (Flask) and ``environ_app`` report the ``SCRIPT_NAME``/``PATH_INFO`` they were
given and what ``url_for`` builds from them; ``api`` (FastAPI) reports ``root_path``,
``path``, ``url_for`` and its lifespan state. Both frameworks have a WebSocket echo at
``/ws`` that tags its answers, so a test can tell which app answered.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, WebSocket
from flask import Flask, abort, jsonify, request, url_for

# -- WSGI: Flask --------------------------------------------------------------------------------
legacy = Flask("mount_legacy")


@legacy.route("/")
@legacy.route("/<path:rest>")
def legacy_page(rest: str = "") -> Any:
    return jsonify(
        app="flask",
        script_name=request.environ["SCRIPT_NAME"],
        path_info=request.environ["PATH_INFO"],
        url_for=url_for("legacy_page", rest="x/y"),
    )


# werkzeug routes a WebSocket handshake only to rules marked websocket=True.
@legacy.route("/ws", websocket=True)
def legacy_ws() -> str:
    ws = request.environ.get("wsgi.websocket")
    if ws is None:
        abort(400, "expected a WebSocket")
    while (message := ws.receive()) is not None:
        ws.send(f"flask {request.environ['SCRIPT_NAME']!r} {message}")
    return ""


def environ_app(environ: dict[str, Any],
                start_response: Callable[..., Any]) -> Iterable[bytes]:
    """A bare WSGI app: ``SCRIPT_NAME|PATH_INFO``."""
    body = f"wsgi {environ['SCRIPT_NAME']}|{environ['PATH_INFO']}".encode()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]


def loop_probe(environ: dict[str, Any],
               start_response: Callable[..., Any]) -> Iterable[bytes]:
    """A WSGI app that says whether it sees a running asyncio loop: at once, after a wait
    in gevent (other greenlets run meanwhile) and in a greenlet it spawns."""
    import asyncio
    import json

    import gevent

    def loop_seen() -> bool:
        return asyncio._get_running_loop() is not None

    seen = {"at_once": loop_seen()}
    gevent.sleep(float(environ["QUERY_STRING"] or "0"))
    seen["after_a_wait"] = loop_seen()
    seen["spawned"] = gevent.spawn(loop_seen).get()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(seen).encode()]


# -- ASGI: FastAPI ------------------------------------------------------------------------------
@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    yield {"started": f"pid {os.getpid()}"}
    marker = os.environ.get("MOUNT_SHUTDOWN_MARKER")
    if marker:
        with open(marker, "w") as f:
            f.write("api shutdown")


api = FastAPI(lifespan=lifespan)


@api.get("/items/{item_id}", name="item")
async def item(item_id: int, request: Request) -> dict[str, Any]:
    return {
        "app": "fastapi",
        "item": item_id,
        "root_path": request.scope["root_path"],
        "path": request.scope["path"],
        "url_for": str(request.url_for("item", item_id=item_id + 1)),
        "started": request.state.started,
    }


@api.websocket("/ws")
async def api_ws(websocket: WebSocket) -> None:
    await websocket.accept()
    root_path = websocket.scope["root_path"]
    while True:
        message = await websocket.receive_text()
        if message == "bye":
            await websocket.close()
            return
        await websocket.send_text(f"fastapi {root_path!r} {message}")


async def broken_lifespan(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An ASGI app whose startup fails."""
    assert scope["type"] == "lifespan"
    await receive()
    await send({"type": "lifespan.startup.failed", "message": "no database"})
