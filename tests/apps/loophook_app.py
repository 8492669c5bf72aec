"""A plain WSGI app for the lazy running-loop hook (tests/test_loophook.py).

``/trace`` tells which greenlet trace function the worker has; ``/asyncio?s=`` runs an
event loop in the view with ``asyncio.run()``. asyncio is imported by the first loop view
unless ``IMPORT_ASYNCIO=1`` makes the module import it up front.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any

import greenlet  # type: ignore[import-untyped]  # no stubs installed

if os.environ.get("IMPORT_ASYNCIO") == "1":
    import asyncio  # noqa: F401  # imported before the worker arms the hook


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if environ["PATH_INFO"] == "/asyncio":
        body = _run_loop(float(environ["QUERY_STRING"].partition("=")[2] or "0"))
    else:
        body = {"trace": _name(greenlet.gettrace()), "asyncio_imported": "asyncio" in sys.modules}
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(body).encode()]


def _name(trace: Any) -> str | None:
    if trace is None:
        return None
    kind = trace if hasattr(trace, "__qualname__") else type(trace)
    return f"{kind.__module__}.{kind.__qualname__}"


def _run_loop(seconds: float) -> dict[str, Any]:
    import asyncio

    async def work() -> int:
        await asyncio.sleep(seconds)  # the loop stays parked while other greenlets run
        return id(asyncio.get_running_loop())

    return {"loop": asyncio.run(work())}
