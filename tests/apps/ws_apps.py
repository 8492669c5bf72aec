"""gevent-websocket-style WSGI apps: they look for ``environ["wsgi.websocket"]`` and use it.

``/echo`` (and any other path with a WebSocket) echoes every message; the other paths show
one behaviour each. A request without a WebSocket gets a plain HTTP answer, as an app served
by gevent-websocket's handler would give.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

import gevent

StartResponse = Callable[..., Any]
ROOMS: set[Any] = set()


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    ws = environ.get("wsgi.websocket")
    if ws is None:
        body = b"plain HTTP: " + environ["PATH_INFO"].encode()
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    path = environ["PATH_INFO"]
    query = {k: v[0] for k, v in parse_qs(environ["QUERY_STRING"]).items()}
    handler = HANDLERS.get(path, _echo)
    return handler(ws, environ, query, start_response)


def _echo(ws: Any, environ: dict[str, Any], query: dict[str, str],
          start_response: StartResponse) -> list[bytes]:
    while True:
        message = ws.receive()
        if message is None:
            break
        ws.send(message)
    return []


def _info(ws: Any, environ: dict[str, Any], query: dict[str, str],
          start_response: StartResponse) -> list[bytes]:
    ws.send(json.dumps({
        "path": ws.path, "origin": ws.origin, "protocol": ws.protocol,
        "version": ws.version, "websocket_version": environ["wsgi.websocket_version"],
        "subprotocols": ws.subprotocols, "has_socket": "gunicorn.socket" in environ,
    }))
    return _echo(ws, environ, query, start_response)


def _subprotocol(ws: Any, environ: dict[str, Any], query: dict[str, str],
                 start_response: StartResponse) -> list[bytes]:
    ws.accept(subprotocol=query["choose"], headers=[("X-Chosen", query["choose"])])
    ws.send(ws.subprotocol)
    return _echo(ws, environ, query, start_response)


def _close(ws: Any, environ: dict[str, Any], query: dict[str, str],
           start_response: StartResponse) -> list[bytes]:
    ws.close(int(query.get("code", "1000")), query.get("reason", ""))
    return []


def _deny(ws: Any, environ: dict[str, Any], query: dict[str, str],
          start_response: StartResponse) -> list[bytes]:
    body = b"no WebSocket for you"
    start_response("403 Forbidden", [("Content-Type", "text/plain"),
                                     ("Content-Length", str(len(body)))])
    return [body]


def _silent(ws: Any, environ: dict[str, Any], query: dict[str, str],
            start_response: StartResponse) -> None:
    return None  # never touches the socket: accepted, then closed normally


def _boom(ws: Any, environ: dict[str, Any], query: dict[str, str],
          start_response: StartResponse) -> list[bytes]:
    ws.receive()
    raise RuntimeError("the app failed mid-session")


def _after_close(ws: Any, environ: dict[str, Any], query: dict[str, str],
                 start_response: StartResponse) -> list[bytes]:
    """Reports what receive() does once the client has closed: None, then an error."""
    while ws.receive() is not None:
        pass
    try:
        ws.receive()
    except OSError as exc:
        print("second receive raised", type(exc).__name__, flush=True)
    try:
        ws.send("late")
    except OSError as exc:
        print("send after close raised", type(exc).__name__, flush=True)
    return []


def _room(ws: Any, environ: dict[str, Any], query: dict[str, str],
          start_response: StartResponse) -> list[bytes]:
    """Broadcast: every message goes to every member, sent from other greenlets too."""
    ROOMS.add(ws)
    try:
        while (message := ws.receive()) is not None:
            for member in list(ROOMS):
                gevent.spawn(_safe_send, member, message)
    finally:
        ROOMS.discard(ws)
    return []


def _safe_send(ws: Any, message: str | bytes) -> None:
    try:
        ws.send(message)
    except OSError:
        pass


def _stream(ws: Any, environ: dict[str, Any], query: dict[str, str],
            start_response: StartResponse) -> list[bytes]:
    """Sends ``n`` messages of ``size`` bytes without reading: exercises send backpressure."""
    chunk = b"x" * int(query.get("size", "65536"))
    for _ in range(int(query.get("n", "100"))):
        ws.send(chunk)
    ws.send("done")
    return _echo(ws, environ, query, start_response)


HANDLERS = {
    "/info": _info, "/subprotocol": _subprotocol, "/close": _close, "/deny": _deny,
    "/silent": _silent, "/boom": _boom, "/after-close": _after_close, "/room": _room,
    "/stream": _stream,
}
