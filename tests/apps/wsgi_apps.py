"""WSGI apps used by the integration tests (served by a real greenserve subprocess)."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from wsgiref.validate import validator

StartResponse = Callable[..., Any]
CLOSED: list[str] = []


def _json(start_response: StartResponse, data: object, status: str = "200 OK") -> list[bytes]:
    body = json.dumps(data).encode()
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))])
    return [body]


def _echo(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    stream = environ["wsgi.input"]
    body = b""
    while chunk := stream.read(8192):
        body += chunk
    headers = {k: v for k, v in environ.items()
               if k.startswith("HTTP_") or k in ("CONTENT_TYPE", "CONTENT_LENGTH")}
    return _json(start_response, {
        "method": environ["REQUEST_METHOD"],
        "path": environ["PATH_INFO"],
        "script_name": environ["SCRIPT_NAME"],
        "raw_uri": environ.get("RAW_URI"),
        "query": environ["QUERY_STRING"],
        "headers": headers,
        "body": body.decode("latin-1"),
        "protocol": environ["SERVER_PROTOCOL"],
        "scheme": environ["wsgi.url_scheme"],
        "remote": [environ.get("REMOTE_ADDR"), environ.get("REMOTE_PORT")],
        "server": [environ.get("SERVER_NAME"), environ.get("SERVER_PORT")],
        "multithread": environ["wsgi.multithread"],
        "multiprocess": environ["wsgi.multiprocess"],
        "run_once": environ["wsgi.run_once"],
        "input_terminated": environ.get("wsgi.input_terminated"),
    })


echo = validator(_echo)


class _Tracked:
    """An iterable whose close() is recorded, to prove the server always calls it."""

    def __init__(self, name: str, chunks: Iterator[bytes]) -> None:
        self.name = name
        self.chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        return self.chunks

    def close(self) -> None:
        CLOSED.append(self.name)


def _slow_chunks(n: int, delay: float) -> Iterator[bytes]:
    for i in range(n):
        yield b"x" * 1024 + b"%d\n" % i
        time.sleep(delay)


Query = dict[str, str]
Route = Callable[[dict[str, Any], StartResponse, Query], Iterable[bytes]]
TEXT = [("Content-Type", "text/plain")]


def _plain(body: bytes) -> Route:
    def route(environ: dict[str, Any], start_response: StartResponse, q: Query) -> list[bytes]:
        start_response("200 OK", TEXT)
        return [body]
    return route


def _stream(environ: dict[str, Any], start_response: StartResponse, q: Query) -> Iterable[bytes]:
    start_response("200 OK", TEXT)
    return (b"chunk%d\n" % i for i in range(5))


def _write(environ: dict[str, Any], start_response: StartResponse, q: Query) -> Iterable[bytes]:
    write = start_response("200 OK", TEXT)
    write(b"written ")
    return [b"then returned"]


def _sleep(environ: dict[str, Any], start_response: StartResponse, q: Query) -> Iterable[bytes]:
    if "started" in q:  # a file that says the request is in the app (tests then signal)
        Path(q["started"]).touch()
    time.sleep(float(q.get("s", "1")))
    start_response("200 OK", TEXT)
    return [b"slept"]


def _status(environ: dict[str, Any], start_response: StartResponse, q: Query) -> Iterable[bytes]:
    code = q.get("code", "200")
    start_response(f"{code} Whatever", [] if code in ("204", "304") else TEXT)
    return [b"" if code in ("204", "304") else b"body"]


def _error_before(environ: dict[str, Any], start_response: StartResponse,
                  q: Query) -> Iterable[bytes]:
    raise RuntimeError("boom before the response")


def _error_after(environ: dict[str, Any], start_response: StartResponse,
                 q: Query) -> Iterable[bytes]:
    start_response("200 OK", TEXT)
    return _fail_after()


def _exc_info(environ: dict[str, Any], start_response: StartResponse,
              q: Query) -> Iterable[bytes]:
    try:
        raise ValueError("handled")
    except ValueError:
        start_response("200 OK", TEXT)
        start_response("503 Service Unavailable", TEXT, sys.exc_info())
    return [b"recovered"]


def _tracked(environ: dict[str, Any], start_response: StartResponse,
             q: Query) -> Iterable[bytes]:
    start_response("200 OK", TEXT)
    chunks = _slow_chunks(int(q.get("n", "3")), float(q.get("d", "0")))
    return _Tracked(q.get("name", "t"), chunks)


def _closed(environ: dict[str, Any], start_response: StartResponse, q: Query) -> Iterable[bytes]:
    start_response("200 OK", TEXT)
    return [",".join(CLOSED).encode()]


def _file_route(environ: dict[str, Any], start_response: StartResponse,
                q: Query) -> Iterable[bytes]:
    return _file(environ, start_response, with_length=q.get("len") != "0")


def _readline(environ: dict[str, Any], start_response: StartResponse,
              q: Query) -> Iterable[bytes]:
    return _json(start_response, [line.decode() for line in environ["wsgi.input"]])


def _read_some(environ: dict[str, Any], start_response: StartResponse,
               q: Query) -> Iterable[bytes]:
    data = environ["wsgi.input"].read(int(q.get("n", "5")))
    start_response("200 OK", TEXT)
    return [data]


def _short(environ: dict[str, Any], start_response: StartResponse, q: Query) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "10")])
    return [b"hello"]  # five bytes of the ten declared


def _pid(environ: dict[str, Any], start_response: StartResponse, q: Query) -> Iterable[bytes]:
    start_response("200 OK", TEXT)
    return [str(os.getpid()).encode()]


ROUTES: dict[str, Route] = {
    "/hello": _plain(b"hello"),
    "/big": _plain(b"a" * 10240),
    "/ignore-body": _plain(b"ignored"),
    "/stream": _stream,
    "/write": _write,
    "/sleep": _sleep,
    "/status": _status,
    "/error-before": _error_before,
    "/error-after": _error_after,
    "/exc-info": _exc_info,
    "/tracked": _tracked,
    "/closed": _closed,
    "/file": _file_route,
    "/readline": _readline,
    "/read-some": _read_some,
    "/pid": _pid,
    "/short": _short,
}


def _routes(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    query = dict(p.partition("=")[::2] for p in environ["QUERY_STRING"].split("&") if p)
    route = ROUTES.get(environ["PATH_INFO"])
    if route is None:
        start_response("404 Not Found", TEXT)
        return [b"not found"]
    return route(environ, start_response, query)


def _fail_after() -> Iterator[bytes]:
    yield b"partial"
    raise RuntimeError("boom after the response started")


_FILE_DATA = bytes(range(256)) * 400  # 102,400 bytes


def _file(environ: dict[str, Any], start_response: StartResponse,
          with_length: bool) -> Iterable[bytes]:
    handle = tempfile.TemporaryFile()
    handle.write(_FILE_DATA)
    handle.seek(0)
    headers = [("Content-Type", "application/octet-stream")]
    if with_length:
        headers.append(("Content-Length", str(len(_FILE_DATA))))
    start_response("200 OK", headers)
    wrapper: Iterable[bytes] = environ["wsgi.file_wrapper"](handle, 8192)
    return wrapper


routes = _routes
validated_routes = validator(_routes)
