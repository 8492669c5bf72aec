"""The WSGI app that ``loadtests/bench.py`` serves with every server it compares.

A plain PEP 3333 callable with no framework, so the numbers measure the server, not the app:

- ``/hello``: a 13-byte body;
- ``/10k``: a 10,240-byte body, with ``Content-Length``;
- ``/sleep10ms``: ``time.sleep(0.01)``, then a short body. Both servers monkey-patch ``time``
  before importing the app, so the sleep yields to other greenlets instead of blocking the
  worker: the cell measures how well a server overlaps waiting requests.

Every other path is a 404. Every response carries its ``Content-Length``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

HELLO = b"Hello, world!"
TEN_K = (b"0123456789abcdef" * 640)[:10240]
SLEPT = b"slept 10 ms\n"

StartResponse = Callable[..., Any]
_ROUTES: dict[str, bytes] = {"/hello": HELLO, "/10k": TEN_K, "/sleep10ms": SLEPT}
#: the expected body size of each path, for the bench's pre-flight check
EXPECTED_SIZES = {path: len(body) for path, body in _ROUTES.items()}


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    body = _ROUTES.get(path)
    if body is None:
        body = b"not found\n"
        start_response("404 Not Found", _headers(body))
        return [body]
    if path == "/sleep10ms":
        time.sleep(0.01)  # cooperative once the server has monkey-patched ``time``
    start_response("200 OK", _headers(body))
    return [body]


def _headers(body: bytes) -> list[tuple[str, str]]:
    return [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
