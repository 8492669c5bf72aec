"""The ASGI twin of ``bench_app.py`` for ``loadtests/asgi_wrk.py``: the same paths and bodies.

``/hello`` (13 bytes), ``/10k``, and ``/sleep10ms`` (``asyncio.sleep(0.01)``), each with a
Content-Length; lifespan is not spoken (servers run with lifespan off).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from bench_app import HELLO, SLEPT, TEN_K

_ROUTES: dict[str, bytes] = {"/hello": HELLO, "/10k": TEN_K, "/sleep10ms": SLEPT}
_NOT_FOUND = b"not found\n"


async def app(scope: dict[str, Any], receive: Callable[[], Awaitable[Any]],
              send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]
    body = _ROUTES.get(path, _NOT_FOUND)
    if path == "/sleep10ms":
        await asyncio.sleep(0.01)
    await send({"type": "http.response.start", "status": 200 if path in _ROUTES else 404,
                "headers": [(b"content-type", b"text/plain"),
                            (b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})
