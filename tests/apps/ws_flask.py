"""Flask apps with WebSocket routes, as their libraries document them.

``sock_app``: Flask-Sock (simple-websocket over ``environ["gunicorn.socket"]``).
``gws_app``: a Flask view written for gevent-websocket (``request.environ["wsgi.websocket"]``).
"""

from __future__ import annotations

from typing import Any

from flask import Flask, abort, request
from flask_sock import Sock

sock_app = Flask("ws_flask_sock")
sock = Sock(sock_app)


@sock.route("/echo")
def echo(ws: Any) -> None:
    while True:
        data = ws.receive()
        if data == "bye":
            ws.close(4000, "see you")
            return
        ws.send(data)


@sock_app.route("/")
def index() -> str:
    return "flask-sock index"


gws_app = Flask("ws_flask_gws")


# werkzeug routes a WebSocket handshake only to rules marked ``websocket=True`` (any other
# rule answers 400), whichever server runs the app.
@gws_app.route("/echo", websocket=True)
def gws_echo() -> str:
    ws = request.environ.get("wsgi.websocket")
    if ws is None:
        abort(400, "expected a WebSocket")
    while (message := ws.receive()) is not None:
        ws.send(message)
    return ""


@gws_app.route("/")
def gws_index() -> str:
    return "gevent-websocket style index"
