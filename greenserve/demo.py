"""The built-in demo app that ``make run`` serves: shows it is greenserve, with a few links."""

from __future__ import annotations

import html
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

StartResponse = Callable[..., Any]

_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>greenserve</title>
<style>body{{font-family:system-ui,sans-serif;max-width:40em;margin:3em auto;line-height:1.5}}
code{{background:#eef}}</style></head>
<body><h1>greenserve {version} is serving</h1>
<p>A WSGI app on a gevent hub, one greenlet per connection. You reached it from
<code>{client}</code> with <code>{protocol}</code>.</p>
<ul>
<li><a href="/hello">/hello</a>: plain text</li>
<li><a href="/stream">/stream</a>: a chunked response, one line every 0.2 s</li>
<li><a href="/slow?seconds=1">/slow?seconds=1</a>: sleeps without blocking other requests</li>
<li><a href="/environ">/environ</a>: the WSGI environ of your request</li>
</ul></body></html>
"""


def _text(start_response: StartResponse, body: str, status: str = "200 OK") -> list[bytes]:
    data = body.encode()
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"),
                            ("Content-Length", str(len(data)))])
    return [data]


def _stream() -> Iterator[bytes]:
    for i in range(10):
        yield f"line {i}\n".encode()
        time.sleep(0.2)  # cooperative under gevent's patching


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """The demo WSGI application."""
    from greenserve import __version__

    path = environ.get("PATH_INFO", "/")
    if path == "/":
        page = _PAGE.format(
            version=__version__,
            client=html.escape(environ.get("REMOTE_ADDR", "?")),
            protocol=html.escape(environ.get("SERVER_PROTOCOL", "?")),
        ).encode()
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [page]
    if path == "/hello":
        return _text(start_response, "Hello from greenserve!\n")
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
        return _stream()
    if path == "/slow":
        query = dict(p.partition("=")[::2] for p in environ.get("QUERY_STRING", "").split("&"))
        try:
            seconds = min(max(float(query.get("seconds", "1")), 0.0), 30.0)
        except ValueError:
            return _text(start_response, "seconds must be a number\n", "400 Bad Request")
        time.sleep(seconds)
        return _text(start_response, f"slept {seconds:g} s\n")
    if path == "/environ":
        lines = (f"{k}: {v!r}" for k, v in sorted(environ.items()))
        return _text(start_response, "\n".join(lines) + "\n")
    return _text(start_response, "not found\n", "404 Not Found")
