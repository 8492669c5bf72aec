"""Flask-SocketIO with ``async_mode="gevent"``: python-engineio's WebSocket transport.

Without gevent-websocket installed, python-engineio runs simple-websocket over
``environ["gunicorn.socket"]``; ``ws_socketio_gws`` makes it take the gevent-websocket path
(``environ["wsgi.websocket"]``) instead.
"""

from __future__ import annotations

import sys
from typing import Any

# Take the simple-websocket path even where gevent-websocket happens to be installed (an
# earlier import by ws_socketio_gws has put a stand-in there: keep that one).
sys.modules.setdefault("geventwebsocket", None)  # type: ignore[arg-type]

from flask import Flask  # noqa: E402
from flask_socketio import SocketIO, emit  # noqa: E402

app = Flask("ws_socketio")
socketio = SocketIO(app, async_mode="gevent", logger=False, engineio_logger=False)


@socketio.on("echo")
def on_echo(data: Any) -> Any:
    emit("echoed", data)
    return {"ack": data}


@app.route("/")
def index() -> str:
    return "socketio index"
