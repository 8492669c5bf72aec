"""A small but realistic Flask app served by greenserve in tests/test_flask.py.

Module-level state is shared by every request: the server runs one gevent worker process.
"""

from __future__ import annotations

import hashlib
import io
import os
import time
from collections.abc import Iterator
from typing import Any

from flask import (
    Flask,
    Response,
    abort,
    jsonify,
    request,
    send_file,
    session,
    stream_with_context,
)
from werkzeug.exceptions import HTTPException, InternalServerError

app = Flask(__name__)
app.secret_key = "greenserve-tests-not-a-secret"

ITEMS: dict[int, dict[str, Any]] = {1: {"id": 1, "name": "first"}}
RELEASED = {"stream": False}


class PaymentRequired(Exception):
    """A domain error turned into a JSON 402 by an error handler."""

    def __init__(self, amount: int) -> None:
        super().__init__(amount)
        self.amount = amount


@app.errorhandler(PaymentRequired)
def payment_required(exc: PaymentRequired) -> tuple[Response, int]:
    return jsonify(error="payment required", amount=exc.amount), 402


@app.errorhandler(404)
def not_found(exc: HTTPException) -> tuple[Response, int]:
    return jsonify(error="not found", path=request.path), 404


@app.errorhandler(InternalServerError)
def internal_error(exc: InternalServerError) -> tuple[Response, int]:
    original = exc.original_exception
    return jsonify(error="internal", kind=type(original).__name__), 500


# -- JSON API --------------------------------------------------------------------------------
@app.get("/api/items")
def list_items() -> Response:
    return jsonify(sorted(ITEMS.values(), key=lambda item: item["id"]))


@app.post("/api/items")
def create_item() -> tuple[Response, int, dict[str, str]]:
    data = request.get_json()
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        abort(400)
    item = {"id": max(ITEMS, default=0) + 1, "name": data["name"], "tags": data.get("tags", [])}
    ITEMS[item["id"]] = item
    return jsonify(item), 201, {"Location": f"/api/items/{item['id']}"}


@app.get("/api/items/<int:item_id>")
def get_item(item_id: int) -> Response:
    if item_id not in ITEMS:
        abort(404)
    return jsonify(ITEMS[item_id])


@app.delete("/api/items/<int:item_id>")
def delete_item(item_id: int) -> tuple[str, int]:
    ITEMS.pop(item_id, None)
    return "", 204


@app.post("/api/echo")
def echo_json() -> Response:
    """Echo a JSON body (works for Content-Length and chunked uploads alike)."""
    return jsonify(
        received=request.get_json(),
        content_length=request.content_length,
        transfer_encoding=request.headers.get("Transfer-Encoding"),
    )


@app.get("/hello/<name>")
def hello(name: str) -> Response:
    return jsonify(greeting=f"hello {name}", path=request.path, args=request.args.to_dict())


# -- forms and uploads -----------------------------------------------------------------------
@app.post("/form")
def form() -> Response:
    return jsonify(form=request.form.to_dict(flat=False), content_type=request.mimetype)


@app.post("/upload")
def upload() -> Response:
    files = []
    for field, storage in request.files.items(multi=True):
        data = storage.read()
        files.append({
            "field": field,
            "filename": storage.filename,
            "mimetype": storage.mimetype,
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        })
    return jsonify(files=files, form=request.form.to_dict())


# -- streaming and files ---------------------------------------------------------------------
@app.get("/stream")
def stream() -> Response:
    """Yield a first line at once, then wait (cooperatively) until /stream/release is hit."""
    RELEASED["stream"] = False
    count = request.args.get("n", 3, type=int)

    def generate() -> Iterator[str]:
        # request is still usable here thanks to stream_with_context
        yield f"start {request.args.get('tag', '-')}\n"
        deadline = time.monotonic() + 5
        while not RELEASED["stream"] and time.monotonic() < deadline:
            time.sleep(0.01)
        yield "released\n" if RELEASED["stream"] else "timeout\n"
        for i in range(count):
            yield f"line {i}\n"

    return Response(stream_with_context(generate()), mimetype="text/plain")


@app.post("/stream/release")
def release_stream() -> str:
    RELEASED["stream"] = True
    return "ok"


@app.get("/download/source")
def download_source() -> Response:
    """A real file on disk: Flask hands ``wsgi.file_wrapper`` an open file."""
    return send_file(os.path.abspath(__file__), mimetype="text/x-python")


@app.get("/download/memory")
def download_memory() -> Response:
    size = request.args.get("size", 100_000, type=int)
    data = bytes(i % 251 for i in range(size))
    return send_file(io.BytesIO(data), mimetype="application/octet-stream",
                     as_attachment=True, download_name="data.bin")


@app.get("/download/empty")
def download_empty() -> Response:
    return send_file(io.BytesIO(b""), mimetype="text/plain", download_name="empty.txt")


@app.get("/download/shrinking")
def download_shrinking() -> Response:
    """A file that shrinks after its size was taken (e.g. a log rotated mid-request)."""
    data = io.BytesIO(b"0123456789")
    response = send_file(data, mimetype="text/plain", download_name="shrinking.txt")
    data.truncate(5)
    return response


# -- cooperative sleep, sessions, errors -----------------------------------------------------
@app.get("/slow")
def slow() -> Response:
    started = time.monotonic()
    time.sleep(0.5)  # gevent-patched: other requests run meanwhile
    return jsonify(slept=round(time.monotonic() - started, 3), pid=os.getpid())


@app.post("/session/login")
def login() -> Response:
    session["user"] = request.form["user"]
    session["visits"] = 0
    return jsonify(ok=True)


@app.get("/session/me")
def me() -> Response:
    if "user" not in session:
        abort(401)
    session["visits"] = session.get("visits", 0) + 1
    return jsonify(user=session["user"], visits=session["visits"])


@app.post("/session/logout")
def logout() -> Response:
    session.clear()
    return jsonify(ok=True)


@app.get("/pay")
def pay() -> Response:
    raise PaymentRequired(request.args.get("amount", 5, type=int))


@app.get("/boom")
def boom() -> Response:
    raise ValueError("flask view exploded")


@app.get("/pid")
def pid() -> Response:
    return jsonify(pid=os.getpid())
