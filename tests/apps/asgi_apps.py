"""Raw ASGI apps (no framework) for the protocol tests; served by a real greenserve process.

``app`` dispatches on the path; what happened to requests that the client left is kept in
``EVENTS`` (one worker per test server) and read back through ``/events``.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

EVENTS: list[dict[str, Any]] = []
PROGRESS = {"chunks": 0}


def _query(scope: Scope) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}


async def _json(send: Send, data: object, status: int = 200) -> None:
    body = json.dumps(data).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


async def _read_all(receive: Receive) -> tuple[bytes, list[int]]:
    body, sizes = b"", []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionError("client disconnected")
        body += message.get("body", b"")
        sizes.append(len(message.get("body", b"")))
        if not message.get("more_body", False):
            return body, sizes


def _jsonable(scope: Scope) -> dict[str, Any]:
    out = dict(scope)
    out["headers"] = [[n.decode("latin-1"), v.decode("latin-1")] for n, v in scope["headers"]]
    out["raw_path"] = scope["raw_path"].decode("latin-1")
    out["query_string"] = scope["query_string"].decode("latin-1")
    out["state"] = {k: repr(v) for k, v in scope.get("state", {}).items()}
    return out


# -- lifespan (the main app stores a marker in state) ------------------------------------------
async def _lifespan(scope: Scope, receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            # a slow startup (a pool opening): the worker must not accept before it ends
            await asyncio.sleep(float(os.environ.get("ASGI_STARTUP_DELAY", "0")))
            scope["state"]["started_at"] = time.time()
            scope["state"]["pid"] = os.getpid()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            marker = os.environ.get("ASGI_SHUTDOWN_MARKER")
            if marker:
                with open(marker, "w") as f:
                    f.write("shutdown complete")
            await send({"type": "lifespan.shutdown.complete"})
            return


# -- endpoints -----------------------------------------------------------------------------------
async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    body, sizes = await _read_all(receive)
    await _json(send, {"body": body.decode("latin-1"), "sizes": sizes})


async def stream(scope: Scope, receive: Receive, send: Send) -> None:
    q = _query(scope)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    for i in range(int(q.get("n", "3"))):
        await send({"type": "http.response.body", "body": b"part %d\n" % i, "more_body": True})
        await asyncio.sleep(float(q.get("delay", "0")))
    await send({"type": "http.response.body", "body": b""})


async def big(scope: Scope, receive: Receive, send: Send) -> None:
    """``mb`` MiB in 64 KiB chunks; ``/progress`` tells how many chunks send() accepted."""
    chunk = b"x" * 65536
    total = int(_query(scope).get("mb", "64")) * 16
    PROGRESS["chunks"] = 0
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"%d" % (total * len(chunk)))]})
    for _ in range(total):
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
        PROGRESS["chunks"] += 1
    await send({"type": "http.response.body", "body": b""})


async def raise_before(scope: Scope, receive: Receive, send: Send) -> None:
    raise RuntimeError("asgi app exploded before the response")


async def raise_after(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"partial", "more_body": True})
    raise RuntimeError("asgi app exploded mid-response")


async def no_response(scope: Scope, receive: Receive, send: Send) -> None:
    return None


async def start_only(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"partial", "more_body": True})


async def trailers(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "trailers": True,
                "headers": [(b"trailer", b"x-checksum")]})
    await send({"type": "http.response.body", "body": b"abc", "more_body": True})
    await send({"type": "http.response.body", "body": b"def"})
    await send({"type": "http.response.trailers", "headers": [(b"x-checksum", b"42")]})


async def pathsend(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/x-python")]})
    await send({"type": "http.response.pathsend", "path": os.path.abspath(__file__)})


async def early_hint(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.early_hint", "links": [b"</style.css>; rel=preload"]})
    await _json(send, {"ok": True})


async def wait_disconnect(scope: Scope, receive: Receive, send: Send) -> None:
    """Never answers: waits for http.disconnect and records when it came."""
    started = time.monotonic()
    await _read_all(receive)
    message = await receive()
    EVENTS.append({"path": scope["path"], "event": message["type"],
                   "after": time.monotonic() - started})


async def ignore_disconnect(scope: Scope, receive: Receive, send: Send) -> None:
    """Never reads, never answers: only the grace-period cancellation ends it."""
    started = time.monotonic()
    try:
        await asyncio.sleep(float(_query(scope).get("sleep", "30")))
        EVENTS.append({"path": scope["path"], "event": "finished"})
    except asyncio.CancelledError:
        EVENTS.append({"path": scope["path"], "event": "cancelled",
                       "after": time.monotonic() - started})
        raise


async def events(scope: Scope, receive: Receive, send: Send) -> None:
    await _json(send, EVENTS)


async def progress(scope: Scope, receive: Receive, send: Send) -> None:
    await _json(send, PROGRESS)


async def sleep(scope: Scope, receive: Receive, send: Send) -> None:
    await asyncio.sleep(float(_query(scope).get("s", "0.01")))
    await _json(send, {"slept": True})


async def scope_view(scope: Scope, receive: Receive, send: Send) -> None:
    await _json(send, _jsonable(scope))


async def state(scope: Scope, receive: Receive, send: Send) -> None:
    """The request's state and the time; ``?scribble=1`` then changes this request's copy."""
    seen = dict(scope["state"])
    if _query(scope).get("scribble") == "1":
        scope["state"]["pid"] = -1
        scope["state"]["scribbled"] = True
    await _json(send, {"state": seen, "now": time.time()})


async def switches(scope: Scope, receive: Receive, send: Send) -> None:
    """Greenlet switches while ``receive()`` returns a body that came with the head and
    while ``send()`` writes what the kernel takes at once: none on the fast path. The
    counts end the streamed body, after 100 bytes of x."""
    import greenlet

    seen: list[str] = []

    def counting(event: str, args: Any) -> None:
        seen.append(event)
        if previous is not None:  # the running-loop hook, if it is in
            previous(event, args)

    previous = greenlet.settrace(counting)
    try:
        message = await receive()
        on_receive = len(seen)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"x" * 100, "more_body": True})
        on_send = len(seen) - on_receive
    finally:
        greenlet.settrace(previous)
    counts = {"receive": on_receive, "send": on_send, "body": message["body"].decode()}
    await send({"type": "http.response.body", "body": json.dumps(counts).encode()})


async def threads(scope: Scope, receive: Receive, send: Send) -> None:
    """Where ``asyncio.to_thread`` and greenserve's ``run_in_thread`` run their function."""
    from gevent.monkey import get_original

    from greenserve.asgi import run_in_thread

    real_ident = get_original("_thread", "get_ident")
    main = real_ident()
    in_to_thread = await asyncio.to_thread(real_ident)
    in_real = await run_in_thread(real_ident)
    await _json(send, {"main": main, "to_thread": in_to_thread, "real": in_real,
                       "thread_name": await asyncio.to_thread(
                           lambda: threading.current_thread().name)})


async def hub(scope: Scope, receive: Receive, send: Send) -> None:
    """run_in_hub: gevent-blocking code, asyncio.run() and async_to_sync in a greenlet."""
    import gevent
    from asgiref.sync import async_to_sync

    from greenserve.asgi import run_in_hub

    loop = asyncio.get_running_loop()

    async def which_loop() -> int:
        await asyncio.sleep(0.01)
        return id(asyncio.get_running_loop())

    def blocking() -> dict[str, Any]:
        gevent.sleep(0.01)
        try:
            asyncio.get_running_loop()
            running = True
        except RuntimeError:
            running = False
        return {"running_loop_seen": running,
                "asyncio_run_loop": asyncio.run(which_loop()),
                "async_to_sync_loop": async_to_sync(which_loop)()}

    result = await run_in_hub(blocking)
    result["shared_loop"] = id(loop)
    await _json(send, result)


async def blocking(scope: Scope, receive: Receive, send: Send) -> None:
    """Blocks in gevent inside a coroutine step (a patched ``time.sleep``), before and
    after its first real await: the loop's other tasks must keep running meanwhile."""
    me = asyncio.current_task()
    seconds = float(_query(scope).get("s", "0.2"))
    time.sleep(seconds)  # patched: this greenlet parks in the hub mid-step
    same_before = asyncio.current_task() is me
    await asyncio.sleep(0)
    time.sleep(seconds)
    await _json(send, {"same_task": same_before and asyncio.current_task() is me})


async def where(scope: Scope, receive: Receive, send: Send) -> None:
    """Which greenlet runs the app's first step, and what the step sees of asyncio."""
    import contextvars

    import gevent

    from greenserve.asgi import bridge

    loop_greenlet = bridge.current()._greenlet
    var: contextvars.ContextVar[str] = contextvars.ContextVar("where")
    var.set("set in the first step")
    first = {"on_loop_greenlet": gevent.getcurrent() is loop_greenlet,
             "has_task": asyncio.current_task() is not None,
             "running_loop": asyncio.get_running_loop() is bridge.current().loop}
    await asyncio.sleep(0.001)
    later = {"on_loop_greenlet": gevent.getcurrent() is loop_greenlet,
             "var": var.get(None)}
    await _json(send, {"first": first, "later": later})


async def generated_headers(scope: Scope, receive: Receive, send: Send) -> None:
    """Response headers as a generator and as a tuple (the spec allows any iterable)."""
    await send({"type": "http.response.start", "status": 200,
                "headers": ((name, value) for name, value in [(b"x-gen", b"1")])})
    await send({"type": "http.response.body", "body": b"generated"})


FACTORY_TASKS = {"made": 0}


async def task_factory(scope: Scope, receive: Receive, send: Send) -> None:
    """Install (?on=1) or remove a task factory on the worker's loop; report its count."""
    loop = asyncio.get_running_loop()
    if _query(scope).get("on") == "1":
        def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kw: Any) -> asyncio.Task[Any]:
            FACTORY_TASKS["made"] += 1
            return asyncio.Task(coro, loop=loop, **kw)
        loop.set_task_factory(factory)
    elif _query(scope).get("on") == "0":
        loop.set_task_factory(None)
    await asyncio.sleep(0)  # a step on the loop too
    await _json(send, FACTORY_TASKS)


TIMERS: dict[str, float] = {}


async def timer(scope: Scope, receive: Receive, send: Send) -> None:
    """Schedule a 50 ms timer and answer at once (?read=1: how late the last one fired)."""
    loop = asyncio.get_running_loop()
    if _query(scope).get("read") != "1":
        TIMERS.clear()
        due = loop.time() + 0.05
        loop.call_at(due, lambda: TIMERS.update(late=loop.time() - due))
    await _json(send, TIMERS)


async def debug(scope: Scope, receive: Receive, send: Send) -> None:
    """Turn the worker loop's debug mode on (?on=1) or off (?on=0); report it."""
    import gevent

    from greenserve.asgi import bridge

    loop = asyncio.get_running_loop()
    on = _query(scope).get("on")
    if on is not None:
        loop.set_debug(on == "1")
    await _json(send, {"debug": loop.get_debug(),
                       "on_loop_greenlet": gevent.getcurrent() is bridge.current()._greenlet})


BACKGROUND: list[asyncio.Task[Any]] = []


def _asyncio_run_elsewhere() -> dict[str, bool]:
    """asyncio.run on a loop of its own: its task is in all_tasks(), and the one still
    pending when main returns is cancelled by asyncio.run, which finds it there."""
    seen = {"cancelled": False}

    async def forever() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            seen["cancelled"] = True
            raise

    async def main() -> None:
        task = asyncio.create_task(forever())
        seen["seen"] = task in asyncio.all_tasks()
        await asyncio.sleep(0)

    asyncio.run(main())
    return seen


async def tasks(scope: Scope, receive: Receive, send: Send) -> None:
    """asyncio.all_tasks() as apps see it: ?bg=1 starts a background task and looks for it
    and for the request's own task; ?thread=1 runs asyncio.run in a real thread; else the
    names of the loop's tasks and the class of asyncio's set of them."""
    query = _query(scope)
    if query.get("bg") == "1":
        task = asyncio.create_task(asyncio.sleep(30), name=f"bg-{len(BACKGROUND)}")
        BACKGROUND.append(task)
        everything = asyncio.all_tasks()
        await _json(send, {"bg": task in everything,
                           "self": asyncio.current_task() in everything})
    elif query.get("thread") == "1":  # a real OS thread, then a greenlet
        from greenserve.asgi import run_in_hub, run_in_thread
        await _json(send, {"thread": await run_in_thread(_asyncio_run_elsewhere),
                           "greenlet": await run_in_hub(_asyncio_run_elsewhere)})
    else:
        import asyncio.tasks as stdlib_tasks
        names = sorted(task.get_name() for task in asyncio.all_tasks())
        tasks_set = (stdlib_tasks._all_tasks if hasattr(stdlib_tasks, "_all_tasks")
                     else stdlib_tasks._scheduled_tasks)  # (3.12+)
        await _json(send, {"names": names, "set": type(tasks_set).__name__})


ROUTES: dict[str, Callable[[Scope, Receive, Send], Awaitable[None]]] = {
    "/echo": echo, "/stream": stream, "/big": big, "/raise-before": raise_before,
    "/raise-after": raise_after, "/no-response": no_response, "/start-only": start_only,
    "/trailers": trailers, "/pathsend": pathsend, "/early-hint": early_hint,
    "/wait-disconnect": wait_disconnect, "/ignore-disconnect": ignore_disconnect,
    "/events": events, "/progress": progress, "/sleep": sleep, "/threads": threads,
    "/hub": hub, "/blocking": blocking, "/where": where, "/task-factory": task_factory,
    "/generated-headers": generated_headers, "/timer": timer, "/debug": debug,
    "/tasks": tasks, "/state": state, "/switches": switches,
}


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(scope, receive, send)
        return
    path = scope["path"][len(scope["root_path"]):]
    await ROUTES.get(path, scope_view)(scope, receive, send)


# -- other shapes ----------------------------------------------------------------------------------
class Untyped:
    """ASGI 3 whose signature does not say so (``*args``, like some middleware): the guess is
    WSGI, with a warning, unless ``--interface asgi``."""

    def __call__(self, *args: Any) -> Any:
        return app(*args)


untyped = Untyped()


class DoubleCallable:
    """ASGI 2: ``DoubleCallable(scope)`` then ``await instance(receive, send)``."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope

    async def __call__(self, receive: Receive, send: Send) -> None:
        if self.scope["type"] == "http":
            await _json(send, {"asgi2": True, "path": self.scope["path"]})


async def lifespan_failed(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "database unreachable"})
        return
    await _json(send, {})


async def lifespan_raises(scope: Scope, receive: Receive, send: Send) -> None:
    """Like Django's handler: lifespan is not spoken, the app raises."""
    if scope["type"] != "http":
        raise ValueError(f"cannot handle {scope['type']!r}")
    await _json(send, {"lifespan_raises": True, "state": sorted(scope.get("state", {}))})


async def lifespan_slow(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await receive()
        await asyncio.sleep(60)
        return
    await _json(send, {})
