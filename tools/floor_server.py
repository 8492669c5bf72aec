"""The floor of any gevent server in Python for one WSGI app (not a server; not a test).

    .venv/bin/python tools/floor_server.py [--port 0] [--path /hello] MODULE:APP

What a gevent server cannot do without, and nothing else: one greenlet per connection, one
``recv`` and one ``send`` per request, the app called with a ready-made environ (a copy of
one built at start for ``--path``), its body joined, and a response head made from the
status and headers the app gave (no Date, no Server, no validation). It parses nothing: it
assumes each ``recv`` is one whole GET without a body, which is what ``wrk`` sends on a
keep-alive connection. So its CPU per request (``tools/request_profile.py --servers
floor,...``) is a lower bound for greenserve, gunicorn or any other gevent server serving
this app: what is left when the server's own work is almost nil is the app, gevent and the
kernel. Used to tell whether a target such as "Flask hello at 2x gunicorn" can be reached
by trimming the server at all.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import importlib  # noqa: E402
import io  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
from collections.abc import Callable, Iterable  # noqa: E402
from typing import Any  # noqa: E402

from gevent.server import StreamServer  # noqa: E402


def environ_template(path: str, port: int) -> dict[str, Any]:
    """The environ of ``GET path`` from wrk, as a server would build it."""
    return {
        "REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": path, "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": str(port), "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": "40000", "RAW_URI": path,
        "REQUEST_URI": path, "HTTP_HOST": f"127.0.0.1:{port}",
        "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr,
        "wsgi.multithread": False, "wsgi.multiprocess": False, "wsgi.run_once": False,
    }


def make_handler(app: Callable[..., Iterable[bytes]],
                 template: dict[str, Any]) -> Callable[[socket.socket, Any], None]:
    def handle(sock: socket.socket, address: Any) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # gevent's recv (waits in the hub when nothing is there); the OS socket's own
        # non-blocking send, as greenserve does, with gevent's sendall only for a rest.
        recv, send, sendall = sock.recv, sock._sock.send, sock.sendall  # type: ignore[attr-defined]
        head: list[bytes] = []

        def start_response(status: str, headers: list[tuple[str, str]],
                           exc_info: Any = None) -> None:
            lines = [f"HTTP/1.1 {status}\r\n"]
            lines += [f"{name}: {value}\r\n" for name, value in headers]
            lines.append("\r\n")
            head.append("".join(lines).encode("latin-1"))

        while recv(65536):
            environ = template.copy()
            environ["wsgi.input"] = io.BytesIO(b"")
            result = app(environ, start_response)
            try:
                body = b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
            out = head.pop() + body
            try:
                sent = send(out)
            except BlockingIOError:
                sent = 0
            if sent < len(out):
                sendall(out[sent:])

    return handle


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("app", help="MODULE:APP, a WSGI app")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--path", default="/hello")
    opts = p.parse_args()
    module, _, name = opts.app.partition(":")
    app = getattr(importlib.import_module(module), name or "app")
    server = StreamServer(("127.0.0.1", opts.port), lambda s, a: None, backlog=2048)
    server.init_socket()
    port = server.server_port
    server.set_handle(make_handler(app, environ_template(opts.path, port)))
    print(f"Listening at: http://127.0.0.1:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
