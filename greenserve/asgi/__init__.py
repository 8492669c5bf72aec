"""ASGI apps on the worker's gevent hub: the loop bridge, HTTP, lifespan.

For apps: ``from greenserve.asgi import run_in_thread, run_in_hub, run_in_loop`` (see
:mod:`greenserve.asgi.bridge`). The names load lazily, so importing this package imports
neither asyncio nor gevent until one is used.
"""

from __future__ import annotations

from typing import Any

__all__ = ["run_in_hub", "run_in_loop", "run_in_thread"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import bridge

        return getattr(bridge, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
