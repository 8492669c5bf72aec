"""Dirty apps (gunicorn 25's dirty arbiters): slow-to-load, blocking or CPU-bound work kept
out of the HTTP workers, in a pool of processes of its own.

``--dirty-app module:Class[:N] --dirty-workers 2`` makes the master start a dirty arbiter
with two dirty workers; request code calls the app's actions by name::

    from greenserve.dirty import get_dirty_client
    result = get_dirty_client().execute("myapp.ml:Model", "predict", [1, 2, 3])

The names, the messages on the socket and the errors are gunicorn's, so code written
against ``gunicorn.dirty`` runs unchanged with gunicorn's own client too.
"""

from __future__ import annotations

import importlib
from typing import Any

# Lazy: the master imports the supervisor from this package, and should not pay for asyncio
# (the client) or import app code it never runs.
_WHERE = {
    "DirtyApp": "app",
    **dict.fromkeys(("AsyncDirtyClient", "DirtyClient", "close_dirty_client",
                     "close_dirty_client_async", "get_dirty_client", "get_dirty_client_async",
                     "set_dirty_socket_path"), "client"),
    **dict.fromkeys(("DirtyAppError", "DirtyAppNotFoundError", "DirtyConnectionError",
                     "DirtyError", "DirtyNoWorkersAvailableError", "DirtyProtocolError",
                     "DirtyTimeoutError", "DirtyWorkerError"), "errors"),
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'greenserve.dirty' has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
