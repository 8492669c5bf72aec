"""The Flask row of ``loadtests/bench.py``: a Flask app whose ``/hello`` returns 13 bytes.

Its ASGI twin, for the ASGI servers in the same row, is ``fastapi_bench_app.py``.
"""

from __future__ import annotations

from bench_app import HELLO
from flask import Flask

app = Flask(__name__)
_TEXT = HELLO.decode()


@app.get("/hello")
def hello() -> tuple[str, int, dict[str, str]]:
    return _TEXT, 200, {"Content-Type": "text/plain"}
