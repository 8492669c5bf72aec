"""Settings that gunicorn does not have."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ..app.mount import to_mounts
from .spec import at_least, checked, setting, to_bool, to_float, to_int, to_opt_str, to_str


@dataclass(frozen=True, kw_only=True)
class GreenserveSettings:
    """greenserve only."""

    SECTION: ClassVar[str] = "greenserve"

    app_uri: str | None = setting(
        kind="positional", metavar="APP_MODULE", default=None, convert=to_opt_str,
        aliases=("wsgi_app",), gunicorn=False,
        help="The application: MODULE[:EXPRESSION].",
        desc="""\
`module:name` names a callable in a module (dotted packages allowed); `module` alone means
`module:application`; `module:factory()` or `module:factory("x", debug=True)` calls a factory
with literal arguments. In a config file it is spelled `wsgi_app`, as in gunicorn.""",
    )
    mount: tuple[tuple[str, Any], ...] = setting(
        "--mount", kind="append", metavar="PREFIX=APP_MODULE", default=(),
        convert=to_mounts, gunicorn=False, default_doc="[]",
        help="Serve another app under a path prefix in the same worker (repeatable).",
        desc="""\
Several apps, WSGI or ASGI in any mix, in one worker: `--mount /api=service.api:app
--mount /=legacy.wsgi:application`. The longest prefix matching whole path segments wins
(`/api` serves `/api` and `/api/x`, not `/apix`); a path no prefix matches gets 404. A WSGI
app sees the prefix added to `SCRIPT_NAME` and the rest in `PATH_INFO`; an ASGI app sees it
added to `root_path`, with the full `path`. Each app's interface is detected on its own
(`--interface` applies to APP_MODULE only), and every ASGI app runs its lifespan. With
`--mount`, APP_MODULE is optional; when given it is mounted at `/`. In a config file:
`mount = {"/api": "service.api:app", "/": "legacy.wsgi:application"}` or a list of
`"PREFIX=APP_MODULE"` strings; the command line replaces the config file's list.
See the how-to *Mixed deploys*.""",
    )
    header_timeout: float = setting(
        "--header-timeout", metavar="SECONDS", default=10.0,
        convert=checked(to_float, at_least(0)), gunicorn=False,
        help="Seconds allowed to receive a complete request head (0 = no limit).",
        desc="""\
The time from the first byte of a request to the end of its headers. A slower client gets
408 and the connection is closed, which bounds slowloris-style attacks. 0 disables it.""",
    )
    max_worker_lifetime: float = setting(
        "--max-worker-lifetime", metavar="SECONDS", default=0.0,
        convert=checked(to_float, at_least(0)), gunicorn=False,
        help="Replace a worker after it has run this long (0 = never), with jitter.",
        desc="""\
Like `max_requests`, but by age: the worker stops gracefully and the master starts a new
one. `max_requests_jitter` does not apply; up to 10 % of random jitter is added so that
workers started together do not all restart together.""",
    )
    max_worker_memory: int = setting(
        "--max-worker-memory", metavar="MIB", default=0,
        convert=checked(to_int, at_least(0)), gunicorn=False,
        help="Replace a worker whose resident memory exceeds this many MiB (0 = never).",
        desc="""\
Checked every second from the worker's own RSS (`/proc/self/statm`). The worker stops
gracefully (in-flight requests finish) and the master replaces it.""",
    )
    max_blocking_time: float = setting(
        "--max-blocking-time", metavar="SECONDS", default=1.0,
        convert=checked(to_float, at_least(0)), gunicorn=False,
        help="Log the stack of code that blocks a worker's hub longer than this (0 = off).",
        desc="""\
A monitor thread in each worker notices when the gevent hub has not run for this long: some
code is blocking every other request (a CPU loop, an unpatched C library, a DB driver gevent
cannot patch). The stack of the blocking greenlet is written to the error log.""",
    )
    gc_threshold: int = setting(
        "--gc-threshold", metavar="INT", default=7000,
        convert=checked(to_int, at_least(0)), gunicorn=False,
        help="The worker's generation-0 garbage collection threshold (0 = Python's).",
        desc="""\
Set in each worker once the app is loaded, over CPython's default thresholds (700, 10, 10)
only: an app that set its own keeps them, and a `post_worker_init` hook that calls
`gc.set_threshold` wins. Python collects the youngest generation every 700 net allocations;
a worker with hundreds of requests in flight keeps their objects alive across those
collections, so each one traverses and promotes them, and the older generations fill and
are collected in turn. Measured with 512 clients of an app that sleeps 10 ms: Python's 700
costs about 5 µs of CPU per request (10 %) in collections, 7000 almost none. Only reference
cycles wait longer to be freed. A `greenserve.Server` running in a thread of another
program leaves that program's collector alone.""",
    )
    request_timeout: float = setting(
        "--request-timeout", metavar="SECONDS", default=0.0,
        convert=checked(to_float, at_least(0)), gunicorn=False,
        help="Answer 504 to a request still running after this long (0 = off).",
        desc="""\
The request's greenlet is interrupted (at its next cooperative point) and the client gets
504 Gateway Timeout, or the connection is closed if the response had already started. The
worker keeps serving other requests. Code that never yields cannot be interrupted: that is
what `--timeout` (the heartbeat) is for.""",
    )
    ws_ping_interval: float = setting(
        "--ws-ping-interval", metavar="SECONDS", default=0.0,
        convert=checked(to_float, at_least(0)), gunicorn=False,
        help="Ping each WebSocket client this often (0 = never).",
        desc="""\
Server pings keep idle WebSocket connections open through proxies and load balancers that
drop silent connections, and find clients that vanished without closing. Pings from the
client are always answered, whatever this setting.""",
    )
    ws_ping_timeout: float = setting(
        "--ws-ping-timeout", metavar="SECONDS", default=20.0,
        convert=checked(to_float, at_least(0)), gunicorn=False,
        help="Close a WebSocket whose client sends nothing within this long of a ping.",
        desc="""\
Used with `ws_ping_interval`: when nothing at all (a pong or any other frame) arrives from
the client within this many seconds of a server ping, the connection is closed with code
1011. 0 sends the pings without checking for an answer.""",
    )
    ws_per_message_deflate: bool = setting(
        "--ws-per-message-deflate", metavar="BOOL", default=True, convert=to_bool,
        gunicorn=False,
        help="Negotiate permessage-deflate with WebSocket clients that offer it.",
        desc="""\
uvicorn's setting, spelled the same (`--ws-per-message-deflate false` turns it off). Each
compressing connection keeps its zlib state for its life: measured with 500 clients that
had each sent one short message, about 100 KiB more resident memory per connection (up to
~300 KB once large messages fill the windows). With many idle WebSockets, or messages that
do not compress, turning it off saves that memory and the CPU.
It applies to WSGI and ASGI WebSockets alike; a client that offers the extension then gets
no `Sec-WebSocket-Extensions` in the 101 and sends plain frames.""",
    )
    interface: str = setting(
        "--interface", metavar="STRING", default="auto",
        choices=("auto", "wsgi", "asgi", "asgi3", "asgi2"), convert=to_str, gunicorn=False,
        help="The application interface: auto, wsgi, asgi (ASGI 3) or asgi2.",
        desc="""\
Decided once, when the app is loaded. `auto` serves an `async def` callable (or an object
whose `__call__` is one) as ASGI 3, a class with an async `__call__` as ASGI 2, and
anything else as WSGI; when the signature could fit either (`*args`), the worker logs a
warning that says so. An explicit value overrides the guess, but an app that certainly
has another shape (an `async def` app as `wsgi`, a two-argument callable as `asgi`) is
refused with a one-line error. `asgi3` is accepted as uvicorn's name for `asgi`. With
`mount`, it applies to APP_MODULE only: each mounted app's interface is detected.""",
    )
