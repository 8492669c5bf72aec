"""Worker Processes settings."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import ClassVar

from .spec import at_least, checked, setting, to_float, to_int, to_str

#: ``--worker-class`` values that name a gevent worker; greenserve's worker serves them all.
GEVENT_WORKER_CLASSES = frozenset({
    "gevent", "gevent_wsgi", "gevent_pywsgi", "greenserve",
    "gunicorn.workers.ggevent.GeventWorker",
    "gunicorn.workers.ggevent.GeventPyWSGIWorker",
    "greenserve.worker.Worker",
    # ASGI workers: greenserve's worker serves ASGI apps on its own loop (--interface auto)
    "asgi", "gunicorn.workers.gasgi.ASGIWorker",
    "uvicorn.workers.UvicornWorker", "uvicorn.workers.UvicornH11Worker",
    "uvicorn_worker.UvicornWorker", "uvicorn_worker.UvicornH11Worker",
})


def _advise_asgi_loop(value: str) -> str | None:
    if value == "uvloop":
        return ("--asgi-loop uvloop: uvloop blocks inside libuv and cannot run on a gevent "
                "hub; greenserve runs its asyncio loop instead")
    return None


def _advise_worker_class(value: str) -> str | None:
    if value in GEVENT_WORKER_CLASSES:
        return None
    return (f"--worker-class {value!r} is not supported; greenserve always runs its gevent "
            "worker")


@dataclass(frozen=True, kw_only=True)
class WorkerSettings:
    """Worker Processes."""

    SECTION: ClassVar[str] = "Worker Processes"

    workers: int = setting(
        "-w", "--workers", metavar="INT", default=os.cpu_count() or 1,
        default_doc="$WEB_CONCURRENCY or the number of CPU cores", env="WEB_CONCURRENCY",
        convert=checked(to_int, at_least(1)),
        deviation="gunicorn's default is 1; a greenserve worker is one gevent hub, which uses "
        "one core, so the default is one worker per core.",
        help="The number of worker processes.",
        desc="""\
Each worker is one process running one gevent hub, serving up to `worker_connections`
clients at once. If the `WEB_CONCURRENCY` environment variable is set, it is the default;
otherwise one worker per CPU core (one hub can only use one core).""",
    )
    worker_class: str = setting(
        "-k", "--worker-class", metavar="STRING", default="gevent",
        convert=to_str, advise=_advise_worker_class,
        help="Accepted for gunicorn compatibility; greenserve always runs its gevent worker.",
        desc="""\
`gevent`, `gevent_wsgi`, `gevent_pywsgi` and the matching gunicorn class paths are accepted
silently, and so are the ASGI workers (`asgi`, `uvicorn.workers.UvicornWorker`...): the gevent
worker serves ASGI apps too (see `interface`). Any other value (`sync`, `gthread`, a class
path) is accepted with a warning, and greenserve's gevent worker runs anyway.""",
        deviation="gunicorn's default is 'sync'; greenserve is a gevent server, so it is 'gevent'.",
    )
    threads: int = setting(
        "--threads", metavar="INT", default=1, convert=checked(to_int, at_least(1)),
        help="Accepted for gunicorn compatibility: requests run in greenlets, not threads.",
        desc="""\
gunicorn uses threads only in its gthread worker (and turns `sync` into gthread when this is
above 1); with `-k gevent` it ignores the setting, and so does greenserve: each worker serves
up to `--worker-connections` requests at once in greenlets. A value above 1 is noted once in
the log.""",
    )
    worker_connections: int = setting(
        "--worker-connections", metavar="INT", default=1000,
        convert=checked(to_int, at_least(1)),
        help="The maximum number of simultaneous clients per worker.",
        desc="""\
The size of each worker's connection pool. A worker stops accepting while it is full, so
further clients wait in the listen backlog (or go to another worker).""",
    )
    max_requests: int = setting(
        "--max-requests", metavar="INT", default=0,
        convert=checked(to_int, at_least(0)),
        help="Restart a worker after it has served this many requests (0 = never).",
        desc="""\
A simple guard against memory leaks: a worker that has served this many requests stops
gracefully and is replaced. 0 disables restarts.""",
    )
    max_requests_jitter: int = setting(
        "--max-requests-jitter", metavar="INT", default=0,
        convert=checked(to_int, at_least(0)),
        help="The maximum random jitter added to max_requests.",
        desc="""\
Each worker adds `randint(0, max_requests_jitter)` to `max_requests`, so that workers do not
all restart at the same moment.""",
    )
    timeout: int = setting(
        "-t", "--timeout", metavar="INT", default=30,
        convert=checked(to_int, at_least(0)),
        help="Workers silent for more than this many seconds are killed and restarted.",
        desc="""\
The master restarts a worker whose heartbeat has not been updated for this long. With
gevent the heartbeat comes from a greenlet, so this catches a hub blocked by CPU-bound or
unpatched blocking code, not slow requests. 0 disables the check.""",
    )
    graceful_timeout: int = setting(
        "--graceful-timeout", metavar="INT", default=30,
        convert=checked(to_int, at_least(0)),
        help="Seconds to finish in-flight requests on a graceful stop.",
        desc="""\
After a graceful stop or restart (TERM, HUP, max_requests), workers get this many seconds to
finish the requests they are serving before they are killed. A fast stop (INT, QUIT) cuts
requests off at once, but a worker that cannot obey (an app blocking the hub) is killed
only after this long too, as in gunicorn.""",
    )
    keepalive: int = setting(
        "--keep-alive", metavar="INT", default=2,
        convert=checked(to_int, at_least(0)),
        help="Seconds to wait for the next request on a kept-alive connection.",
        desc="""\
How long an idle keep-alive connection stays open waiting for its next request. Behind a
load balancer, set it above the balancer's idle timeout. 0 closes after each response.""",
    )
    websocket_max_message_size: int = setting(
        "--websocket-max-message-size", metavar="INT", default=16777216,
        convert=checked(to_int, at_least(0)),
        help="The largest WebSocket message accepted, in bytes (0 = no limit).",
        desc="""\
A message from the client is reassembled from its frames up to this size; a larger one
closes the connection with code 1009 (message too big) without buffering the rest. It
applies to the size after permessage-deflate decompression. 0 removes the limit, which lets
one client make the worker buffer any amount of memory.""",
    )
    http_parser: str = setting(
        "--http-parser", metavar="STRING", default="auto",
        choices=("auto", "fast", "python"), convert=to_str,
        help="The HTTP/1 parser: auto, fast or python.",
        desc="""\
`python` uses the h11-based parser; `fast` uses the C parser (httptools) and fails at start
when it is not installed; `auto` uses the fast parser when available.""",
    )
    asgi_loop: str = setting(
        "--asgi-loop", metavar="STRING", default="auto",
        choices=("auto", "asyncio", "uvloop"), convert=to_str, advise=_advise_asgi_loop,
        help="The event loop for ASGI apps: auto or asyncio (uvloop is refused with a warning).",
        desc="""\
ASGI apps run on one asyncio loop per worker, driven by the worker's gevent hub. `auto` and
`asyncio` both mean that loop. `uvloop` is accepted for gunicorn compatibility with a
warning: uvloop waits inside libuv, where the gevent hub cannot run, so greenserve uses its
asyncio loop anyway. (gunicorn's `auto` picks uvloop when it is installed.)""",
    )
    asgi_lifespan: str = setting(
        "--asgi-lifespan", metavar="STRING", default="auto",
        choices=("auto", "on", "off"), convert=to_str,
        help="The ASGI lifespan protocol: auto, on or off.",
        desc="""\
With `auto` and `on` each worker runs the app's lifespan startup before it accepts
connections, and its shutdown on a graceful stop; the `state` the app fills at startup is
shallow-copied into every request's scope. `auto` treats an app that raises at startup as
not supporting lifespan (Django does), `on` treats it as a failure. A startup that fails
(`lifespan.startup.failed`, or an exception with `on`) or that does not finish within
`timeout` seconds stops the worker as a boot failure. `off` never runs it.""",
    )
    asgi_disconnect_grace_period: float = setting(
        "--asgi-disconnect-grace-period", metavar="INT", default=3,
        convert=checked(to_float, at_least(0)),
        help="Seconds an ASGI app has to finish after its client disconnects.",
        desc="""\
When a client goes away during a request, the app's `receive()` returns `http.disconnect`
and `send()` does nothing; if the app's task is still running after this many seconds it is
cancelled. 0 cancels at once. Fractions (`0.5`) are accepted too.""",
    )
