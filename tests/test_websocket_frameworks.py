"""WebSocket libraries for WSGI frameworks, unchanged, over greenserve.

- Flask-Sock (simple-websocket) does its own handshake over ``environ["gunicorn.socket"]``
  and ends with gunicorn's ``StopIteration`` convention;
- a Flask view written for gevent-websocket uses ``environ["wsgi.websocket"]``;
- Flask-SocketIO with ``async_mode="gevent"``: python-engineio takes the simple-websocket
  path, or the gevent-websocket path when ``geventwebsocket`` is importable.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
import requests
import socketio
import websocket
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from conftest import ServerProcess


def test_flask_sock_echo_and_close_code(serve) -> None:  # type: ignore[no-untyped-def]
    server: ServerProcess = serve("ws_flask:sock_app")
    url = f"ws://127.0.0.1:{server.port}/echo"
    ws = websocket.create_connection(url, timeout=10)
    try:
        for message in ("hello", "é" * 1000):
            ws.send(message)
            assert ws.recv() == message
        ws.send_binary(b"\x00\x01")
        assert ws.recv() == b"\x00\x01"
    finally:
        ws.close()

    async def closing() -> None:
        async with connect(url) as client:
            await client.send("bye")
            with pytest.raises(ConnectionClosed) as info:
                await client.recv()
            assert info.value.rcvd is not None and info.value.rcvd.code == 4000

    asyncio.run(asyncio.wait_for(closing(), 20))
    assert requests.get(server.url + "/").text == "flask-sock index"
    assert "Error handling request" not in server.logs()


def test_flask_view_written_for_gevent_websocket(serve) -> None:  # type: ignore[no-untyped-def]
    server: ServerProcess = serve("ws_flask:gws_app")
    ws = websocket.create_connection(f"ws://127.0.0.1:{server.port}/echo", timeout=10)
    try:
        ws.send("through flask")
        assert ws.recv() == "through flask"
    finally:
        ws.close()
    assert requests.get(server.url + "/").text == "gevent-websocket style index"


@pytest.mark.parametrize("module", ["ws_socketio", "ws_socketio_gws"])
def test_flask_socketio_over_websocket_transport(serve, module: str) -> None:  # type: ignore[no-untyped-def]
    server: ServerProcess = serve("--access-logfile", "-", f"{module}:app")
    echoed: list[object] = []
    got_echo = threading.Event()

    client = socketio.Client(reconnection=False)

    @client.on("echoed")
    def on_echoed(data: object) -> None:
        echoed.append(data)
        got_echo.set()

    client.connect(server.url, transports=["websocket"], wait_timeout=10)
    try:
        assert client.transport() == "websocket"
        assert client.call("echo", {"n": 1}, timeout=10) == {"ack": {"n": 1}}
        assert got_echo.wait(10)
        assert echoed == [{"n": 1}]
        for i in range(20):
            assert client.call("echo", i, timeout=10) == {"ack": i}
    finally:
        client.disconnect()
    client.wait()  # the client's background tasks end
    assert requests.get(server.url + "/").text == "socketio index"
    assert "Traceback" not in server.logs()
    # Which path engineio took: greenserve sends the 101 itself only for wsgi.websocket; on
    # the simple-websocket path the app writes it on gunicorn.socket (logged as "-").
    deadline = time.monotonic() + 10  # the line is written when the session has ended
    while not (lines := [x for x in server.stdout if "transport=websocket" in x]):
        assert time.monotonic() < deadline, server.logs()
        time.sleep(0.05)
    handshake = lines[0]
    assert (" 101 " in handshake) is (module == "ws_socketio_gws")


def test_django_view_with_wsgi_websocket(serve, tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {"DJANGO_SETTINGS_MODULE": "djangoproj.settings",
           "DJANGO_DB_PATH": str(tmp_path / "unused.sqlite3")}
    server: ServerProcess = serve("djangoproj.wsgi", env=env)
    ws = websocket.create_connection(f"ws://127.0.0.1:{server.port}/ws/echo/", timeout=10)
    try:
        assert ws.recv() == "hello /ws/echo/"
        ws.send("through django")
        assert ws.recv() == "through django"
    finally:
        ws.close()
    resp = requests.get(server.url + "/ws/echo/")
    assert (resp.status_code, resp.text) == (400, "WebSocket only")
