"""Make asyncio's "running loop" per greenlet instead of per OS thread.

CPython keeps the running event loop in the C thread state. Under gevent every greenlet of
the worker shares that thread, so while the worker's loop greenlet is parked, every other
greenlet sees its loop as *their* running loop: ``asyncio.run()`` refuses to start, Django's
ORM raises ``SynchronousOnlyOperation`` in a plain WSGI view, and asgiref's ``async_to_sync``
refuses to run. The bridge study (``shared/asgi-bridge.md`` §3.5, pitfall 1) found that only
a greenlet switch hook fixes every case: on each switch it saves the running loop of the
greenlet switched away from and restores the one of the greenlet switched to.

The hook is installed once per OS thread and chains any tracer installed before it
(gevent's monitor thread installs one). It does not import asyncio: until something imports
``_asyncio`` (asyncio's C core) there is no running loop to juggle and the hook only chains.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any

import greenlet  # type: ignore[import-untyped]  # no stubs installed

_hooked: set[int] = set()
_lock = threading.Lock()


def install() -> bool:
    """Install the switch hook in the calling OS thread; False if it was already there."""
    ident = _os_thread_ident()
    with _lock:
        if ident in _hooked:
            return False
        _hooked.add(ident)
    greenlet.settrace(_make_tracer(greenlet.gettrace()))
    return True


def _os_thread_ident() -> int:
    """The real OS thread id (``threading.get_ident`` returns greenlet ids after patching)."""
    try:
        from gevent.monkey import get_original
    except ImportError:  # pragma: no cover - gevent is a dependency
        return threading.get_ident()
    ident: Callable[[], int] = get_original("_thread", "get_ident")
    return ident()


def _make_tracer(previous: Callable[[str, Any], None] | None) -> Callable[[str, Any], None]:
    saved: dict[Any, object] = {}
    funcs: list[Callable[..., Any]] = []

    def trace(event: str, args: Any) -> None:
        if event == "switch" or event == "throw":
            if not funcs:
                core = sys.modules.get("_asyncio")
                if core is not None:
                    funcs.extend((core._get_running_loop, core._set_running_loop))
            if funcs:
                get_running, set_running = funcs
                running = get_running()
                if running is not None:
                    saved[args[0]] = running
                    set_running(saved.pop(args[1], None))
                elif saved:
                    target_loop = saved.pop(args[1], None)
                    if target_loop is not None:
                        set_running(target_loop)
        if previous is not None:
            previous(event, args)

    return trace
