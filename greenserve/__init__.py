"""greenserve: a production HTTP server for Python on gevent.

The public API is :data:`__version__`, ``Server`` and ``run``. The latter two load lazily, so
``import greenserve`` imports neither gevent nor asyncio, and creates no locks or threads:
the server must be able to patch the process with gevent before any of that happens.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"
__all__ = ["Server", "__version__", "run"]

_LAZY = {"Server": "greenserve.embed", "run": "greenserve.embed"}


def __getattr__(name: str) -> Any:
    """Import ``Server`` and ``run`` on first use (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'greenserve' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value
