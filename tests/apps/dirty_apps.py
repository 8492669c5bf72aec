"""Dirty apps and the WSGI/ASGI apps that call them (tests/test_dirty.py)."""

from __future__ import annotations

import ctypes
import json
import os
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from greenserve.dirty import DirtyApp, get_dirty_client, get_dirty_client_async
from greenserve.dirty.errors import DirtyError


class Model(DirtyApp):
    """Loads something "slow" once per dirty worker, then answers calls."""

    def init(self) -> None:
        self.loaded_in = os.getpid()
        self.weights = [0.5, 2.0]
        marker = os.environ.get("DIRTY_MARKER")
        if marker:
            with open(marker, "a") as out:
                out.write(f"init {os.getpid()}\n")

    def predict(self, xs: list[float]) -> dict[str, Any]:
        return {"ys": [x * self.weights[1] for x in xs], "pid": self.loaded_in}

    def slow(self, seconds: float, started: str = "") -> int:
        if started:  # a file that says the call is in this worker (tests then signal)
            Path(started).touch()
        time.sleep(seconds)
        return os.getpid()

    def tokens(self, n: int) -> Iterator[str]:
        for i in range(n):
            yield f"tok{i}"

    async def atokens(self, n: int) -> AsyncIterator[str]:
        for i in range(n):
            yield f"a{i}"

    def boom(self) -> None:
        raise ValueError("the model broke")

    def crash(self) -> None:
        os._exit(3)

    def freeze(self, seconds: int = 20) -> None:
        """Hold the GIL in C code (libc's sleep through ``ctypes.PyDLL``, which keeps the
        GIL): every thread of this worker stops, its heartbeat too (a stuck worker). Not
        SIGSTOP to itself: a group stop reaches the calling thread only on its way back
        from a system call, so the call's answer could leave before the worker stopped
        (one run in three: the caller got ``None``, and the arbiter killed the worker)."""
        ctypes.PyDLL(None).sleep(seconds)

    def remember(self, key: str, value: Any) -> int:
        from greenserve.dirty import stash

        stash.put("memo", key, value)
        return os.getpid()


class Big(DirtyApp):
    """Too big for every worker: at most one loads it."""

    workers = 1

    def where(self) -> int:
        return os.getpid()


def wsgi(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """/call?action=...&arg=<json> calls Model; /stream streams tokens; errors as JSON."""
    query = dict(parse_qsl(environ["QUERY_STRING"]))
    client = get_dirty_client(timeout=float(query.get("timeout", "30")))
    app_path = query.get("app", "dirty_apps:Model")
    try:
        if environ["PATH_INFO"] == "/first":  # stop reading a stream early, call again
            first = next(iter(client.stream(app_path, "tokens", 5)))
            result = [first, client.execute(app_path, "predict", [1])["ys"]]
        elif environ["PATH_INFO"] == "/stream":
            result: Any = list(client.stream(app_path, query.get("action", "tokens"),
                                             int(query.get("n", "3"))))
        else:
            args = json.loads(query["arg"]) if "arg" in query else []
            result = client.execute(app_path, query.get("action", "predict"), *args)
        body = {"result": result}
    except DirtyError as exc:
        body = {"error": type(exc).__name__, "message": str(exc),
                "details": {k: v for k, v in exc.details.items() if k != "traceback"}}
    data = json.dumps(body).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [data]


async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    client = await get_dirty_client_async()
    result = await client.execute_async("dirty_apps:Model", "predict", [1, 2])
    streamed = [item async for item in client.stream_async("dirty_apps:Model", "tokens", 2)]
    body = json.dumps({"result": result, "streamed": streamed}).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


def wsgi_gunicorn_client(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """The same call through gunicorn's own client, against greenserve's dirty arbiter."""
    from gunicorn.dirty import get_dirty_client as gunicorn_client

    result = gunicorn_client().execute("dirty_apps:Model", "predict", [3])
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({"result": result}).encode()]


def wsgi_stash(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """A dirty worker fills the stash; this reads it, through greenserve's client and
    through gunicorn's."""
    from gunicorn.dirty import stash as gunicorn_stash

    from greenserve.dirty import stash

    get_dirty_client().execute("dirty_apps:Model", "remember", "answer", [42, "x"])
    table = stash.table("memo")
    table["other"] = {"nested": True}
    body = {
        "get": stash.get("memo", "answer"),
        "missing": stash.get("memo", "nope", "default"),
        "keys": sorted(stash.keys("memo")),
        "glob": stash.keys("memo", "ans*"),
        "info": stash.info("memo"),
        "exists": [stash.exists("memo"), stash.exists("memo", "other"), stash.exists("none")],
        "tables": stash.tables(),
        "in": "other" in table,
        "len": len(table),
        "gunicorn_get": gunicorn_stash.get("memo", "answer"),
        "gunicorn_missing": gunicorn_stash.get("memo", "nope", "dflt"),
        "deleted": [stash.delete("memo", "other"), stash.delete("memo", "other")],
        "dropped": stash.delete_table("memo"),
    }
    try:
        stash.info("memo")
    except stash.StashTableNotFoundError as exc:
        body["after"] = str(exc)
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(body).encode()]
