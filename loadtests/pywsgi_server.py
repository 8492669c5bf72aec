#!/usr/bin/env python3
"""gevent's own ``pywsgi.WSGIServer`` for ``loadtests/bench.py``, with ``TCP_NODELAY``.

``python pywsgi_server.py PORT module:app``. One process, no access log, a 2048 backlog
(gunicorn's and greenserve's default). pywsgi leaves Nagle's algorithm on; every other server
in the benchmark turns it off, and with it on a response written in two pieces waits for the
client's delayed ACK. So each accepted socket gets ``TCP_NODELAY`` before it is served.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()  # before anything else imports socket or time: the app's sleep yields

import importlib  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
from typing import Any  # noqa: E402

from gevent.pywsgi import WSGIServer  # noqa: E402


class NoDelayWSGIServer(WSGIServer):  # type: ignore[misc]
    """A ``WSGIServer`` whose accepted sockets send small writes at once."""

    def handle(self, sock: socket.socket, address: Any) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().handle(sock, address)


def main() -> None:
    port, spec = int(sys.argv[1]), sys.argv[2]
    module, _, attr = spec.partition(":")
    app = getattr(importlib.import_module(module), attr or "app")
    server = NoDelayWSGIServer(("127.0.0.1", port), app, log=None, backlog=2048)
    print(f"Listening at: http://127.0.0.1:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.stop(timeout=1)


if __name__ == "__main__":
    main()
