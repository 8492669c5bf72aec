"""Imports networking and threading modules at top level, then reports whether gevent had
already patched them: the CLI must patch before importing the app."""

from __future__ import annotations

import json
import os
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import gevent.monkey
import gevent.socket
import gevent.thread

PROBE = {
    "socket_patched": gevent.monkey.is_module_patched("socket"),
    "ssl_patched": gevent.monkey.is_module_patched("ssl"),
    "threading_patched": gevent.monkey.is_module_patched("threading"),
    "time_patched": gevent.monkey.is_module_patched("time"),
    "socket_is_gevent": socket.socket is gevent.socket.socket,
    "sslcontext_is_gevent": ssl.SSLContext.__module__.startswith("gevent"),
    "lock_is_gevent": isinstance(threading.Lock(), gevent.thread.LockType),
    "sleep_is_gevent": time.sleep.__module__.startswith("gevent"),
    "env": os.environ.get("CFGAPP_PROBE_ENV"),
    "cwd": os.getcwd(),
}
print("PROBE " + json.dumps(PROBE), file=sys.stdout, flush=True)


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(PROBE).encode()]
