"""Make asyncio's "running loop" per greenlet instead of per OS thread.

CPython keeps the running event loop in the C thread state. Under gevent every greenlet of
the worker shares that thread, so while the worker's loop greenlet is parked, every other
greenlet sees its loop as *their* running loop: ``asyncio.run()`` refuses to start, Django's
ORM raises ``SynchronousOnlyOperation`` in a plain WSGI view, and asgiref's ``async_to_sync``
refuses to run. The bridge study (``shared/asgi-bridge.md`` §3.5, pitfall 1) found that only
a greenlet switch hook fixes every case: on each switch it saves the running loop of the
greenlet switched away from and restores the one of the greenlet switched to.

The hook is installed once per OS thread and chains any tracer installed before it. It runs
a Python function on every greenlet switch (about 0.4 µs a switch pair, a few µs a request),
so a WSGI worker only *arms* it (:func:`install_on_first_loop`): the hook goes in the moment
an event loop first starts running in the worker's thread, just before asyncio records it as
the running loop, and costs nothing until then. Before a loop runs there is no running loop
to save or restore, so the lazy hook behaves exactly like one installed at boot. An ASGI
worker has its loop from the start and installs it right away (:func:`install`).
"""

from __future__ import annotations

import importlib.machinery
import sys
import threading
import types
from collections.abc import Callable
from typing import Any

import greenlet  # type: ignore[import-untyped]  # no stubs installed

_hooked: set[int] = set()
_armed: set[int] = set()  # threads whose hook waits for their first loop
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


def install_on_first_loop() -> None:
    """Install the hook in the calling OS thread once an event loop first runs there.

    Every asyncio loop (``asyncio.run()``, ``async_to_sync``, ``loop.run_until_complete``)
    goes through ``BaseEventLoop.run_forever``, which calls ``events._set_running_loop``
    through the module attribute; that attribute is wrapped until the first call from this
    thread. asyncio is not imported for this: if nothing imported it yet, the wrap waits for
    its import (an import hook that removes itself).
    """
    ident = _os_thread_ident()
    with _lock:
        if ident in _hooked or ident in _armed:
            return
        _armed.add(ident)
    events = sys.modules.get("asyncio.events")
    if events is not None:
        _wrap_set_running_loop(events, ident)
    else:
        sys.meta_path.insert(0, _EventsImportWatch(ident))


class _EventsImportWatch:
    """A meta path finder that wraps ``asyncio.events`` as it is imported, then leaves."""

    def __init__(self, ident: int) -> None:
        self.ident = ident

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != "asyncio.events":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        loader = getattr(spec, "loader", None)
        if loader is None:
            return None  # not found: the import fails as it would have
        exec_module = loader.exec_module
        ident = self.ident

        def exec_and_wrap(module: types.ModuleType) -> None:
            exec_module(module)
            _wrap_set_running_loop(module, ident)

        loader.exec_module = exec_and_wrap
        return spec


def _wrap_set_running_loop(events: Any, ident: int) -> None:  # asyncio.events
    original: Callable[[Any], None] = events._set_running_loop

    def set_running_loop(loop: Any) -> None:
        if _os_thread_ident() == ident:  # a loop in another OS thread needs no hook here
            install()
            # Unwrap, later loops pay nothing. asyncio re-exports the function: when the
            # wrap happened during asyncio's own import, the package copied the wrapper.
            owners: tuple[Any, ...] = (events, sys.modules.get("asyncio"))
            for owner in owners:
                if getattr(owner, "_set_running_loop", None) is set_running_loop:
                    owner._set_running_loop = original
        original(loop)

    events._set_running_loop = set_running_loop
    package: Any = sys.modules.get("asyncio")
    if package is not None and getattr(package, "_set_running_loop", None) is original:
        package._set_running_loop = set_running_loop


def _os_thread_ident() -> int:
    """The real OS thread id (``threading.get_ident`` returns greenlet ids after patching)."""
    try:
        from gevent.monkey import get_original
    except ImportError:  # pragma: no cover - gevent is a dependency
        return threading.get_ident()
    ident: Callable[[], int] = get_original("_thread", "get_ident")
    return ident()


def _make_tracer(previous: Callable[[str, Any], None] | None) -> Callable[[str, Any], None]:
    # greenlet -> (its running loop, the task it was stepping or None)
    saved: dict[Any, tuple[Any, Any]] = {}
    funcs: list[Callable[..., Any]] = []

    def trace(event: str, args: Any) -> None:
        if event == "switch" or event == "throw":
            if not funcs:
                core = sys.modules.get("_asyncio")
                if core is not None:
                    funcs.extend((core._get_running_loop, core._set_running_loop,
                                  _task_swapper(core)))
            if funcs:
                get_running, set_running, swap_task = funcs
                running = get_running()
                if running is not None:
                    # The current task goes with the greenlet too: a greenlet that blocks
                    # in gevent mid-step (a task stepped outside the loop greenlet, or
                    # blocking code in a coroutine) must not leave its task "current"
                    # for the loop's other tasks, which asyncio would refuse to step.
                    saved[args[0]] = (running, swap_task(running, None))
                if saved:
                    entry = saved.pop(args[1], None)
                    if entry is not None:
                        set_running(entry[0])
                        if entry[1] is not None:
                            swap_task(entry[0], entry[1])
                    elif running is not None:
                        set_running(None)
        if previous is not None:
            previous(event, args)

    return trace


def _task_swapper(core: Any) -> Callable[[Any, Any], Any]:
    """``swap(loop, task)``: make ``task`` (or none) the loop's current task; returns the
    one it replaces. CPython 3.11-3.13 keep current tasks in a dict of ``_asyncio``; later
    ones have ``_swap_current_task``, which 3.12 also has but which raises KeyError there
    when no task is current (checked on 3.11.7, 3.12.1 and 3.13.0)."""
    tasks = getattr(core, "_current_tasks", None)
    if isinstance(tasks, dict):
        current: dict[Any, Any] = tasks

        def swap_in_dict(loop: Any, task: Any) -> Any:
            previous = current.pop(loop, None)
            if task is not None:
                current[loop] = task
            return previous

        return swap_in_dict
    swap: Callable[[Any, Any], Any] = core._swap_current_task

    def swap_safely(loop: Any, task: Any) -> Any:
        try:
            return swap(loop, task)
        except KeyError:  # no task was current
            return None

    return swap_safely
