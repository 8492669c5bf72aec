"""The FastAPI hello of ``loadtests/bench.py``: ``/hello`` returns the same 13 bytes as the
Flask app, as ``text/plain``. It is the FastAPI row of the ASGI table and the ASGI twin of
``flask_bench_app.py`` in the WSGI table.
"""

from __future__ import annotations

from bench_app import HELLO
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
_TEXT = HELLO.decode()


@app.get("/hello", response_class=PlainTextResponse)
async def hello() -> str:
    return _TEXT
