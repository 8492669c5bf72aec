"""Apps for the master/worker tests: who answered, and ways to misbehave."""

from __future__ import annotations

import os
import socket
import ssl
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import gevent.socket
import requests  # noqa: F401  - an HTTP client imported at import time, like many apps

StartResponse = Callable[..., Any]

# At import time, like apps that open a connection pool or read certificates on import.
_PROBE = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
_PROBE.close()
IMPORT_PID = os.getpid()
if Path(os.environ.get("MASTER_APPS_BROKEN_IF", "/nonexistent")).exists():
    raise RuntimeError("broken on purpose: the app cannot load while this file exists")
SOCKET_PATCHED_AT_IMPORT = socket.socket is gevent.socket.socket
SSL_CONTEXT = ssl.create_default_context()


def _reply(start_response: StartResponse, body: str) -> list[bytes]:
    data = body.encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(data)))])
    return [data]


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """Routes: /pid, /uid, /block?s=[&started=FILE] (busy loop, never yields), /sleep?s=, /probe."""
    path = environ["PATH_INFO"]
    query = dict(p.partition("=")[::2] for p in environ["QUERY_STRING"].split("&") if p)
    if path == "/block":
        if "started" in query:  # a file that says the request is in the app
            Path(query["started"]).touch()
        end = time.monotonic() + float(query.get("s", "1"))
        while time.monotonic() < end:  # CPU-bound: the hub cannot run
            pass
        return _reply(start_response, "unblocked")
    if path == "/sleep":
        time.sleep(float(query.get("s", "1")))
        return _reply(start_response, "slept")
    if path == "/uid":
        return _reply(start_response, f"{os.getuid()} {os.getgid()}")
    if path == "/probe":
        return _reply(start_response, f"{IMPORT_PID} {SOCKET_PATCHED_AT_IMPORT} "
                                      f"{socket.socket is gevent.socket.socket}")
    return _reply(start_response, str(os.getpid()))
