"""Apps that report the worker's garbage-collection thresholds (``--gc-threshold``)."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable
from typing import Any


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    body = ",".join(str(n) for n in gc.get_threshold()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]


def tuned() -> Callable[..., Iterable[bytes]]:
    """The same app, loaded by an app factory that sets its own thresholds."""
    gc.set_threshold(1234, 5, 5)
    return app
