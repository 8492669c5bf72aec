"""WSGI apps used by the integration tests (served by a real greenserve subprocess)."""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
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


def _routes(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    query = dict(p.partition("=")[::2] for p in environ["QUERY_STRING"].split("&") if p)
    text = [("Content-Type", "text/plain")]
    if path == "/hello":
        start_response("200 OK", text)
        return [b"hello"]
    if path == "/big":
        start_response("200 OK", text)
        return [b"a" * 10240]
    if path == "/stream":
        start_response("200 OK", text)
        return (b"chunk%d\n" % i for i in range(5))
    if path == "/write":
        write = start_response("200 OK", text)
        write(b"written ")
        return [b"then returned"]
    if path == "/sleep":
        time.sleep(float(query.get("s", "1")))
        start_response("200 OK", text)
        return [b"slept"]
    if path == "/status":
        code = query.get("code", "200")
        start_response(f"{code} Whatever", [] if code in ("204", "304") else text)
        return [b"" if code in ("204", "304") else b"body"]
    if path == "/error-before":
        raise RuntimeError("boom before the response")
    if path == "/error-after":
        start_response("200 OK", text)
        return _fail_after()
    if path == "/exc-info":
        try:
            raise ValueError("handled")
        except ValueError:
            import sys
            start_response("200 OK", text)
            start_response("503 Service Unavailable", text, sys.exc_info())
        return [b"recovered"]
    if path == "/tracked":
        start_response("200 OK", text)
        return _Tracked(query.get("name", "t"), _slow_chunks(int(query.get("n", "3")),
                                                           float(query.get("d", "0"))))
    if path == "/closed":
        start_response("200 OK", text)
        return [",".join(CLOSED).encode()]
    if path == "/file":
        return _file(environ, start_response, with_length=query.get("len") != "0")
    if path == "/readline":
        stream = environ["wsgi.input"]
        lines = [line.decode() for line in stream]
        return _json(start_response, lines)
    if path == "/ignore-body":
        start_response("200 OK", text)
        return [b"ignored"]
    if path == "/read-some":
        data = environ["wsgi.input"].read(int(query.get("n", "5")))
        start_response("200 OK", text)
        return [data]
    if path == "/pid":
        start_response("200 OK", text)
        return [str(os.getpid()).encode()]
    start_response("404 Not Found", text)
    return [b"not found"]


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
