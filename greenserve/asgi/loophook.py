"""Make asyncio's "running loop" per greenlet instead of per OS thread.

CPython keeps the running event loop in the C thread state. Under gevent every greenlet of
the worker shares that thread, so while the worker's loop greenlet is parked, every other
greenlet sees its loop as *their* running loop: ``asyncio.run()`` refuses to start, Django's
ORM raises ``SynchronousOnlyOperation`` in a plain WSGI view, and asgiref's ``async_to_sync``
refuses to run. The bridge study (``shared/asgi-bridge.md`` §3.5, pitfall 1) found that only
a greenlet switch hook fixes every case: on each switch it saves the running loop (and
asyncio's current task) of the greenlet switched away from and restores the one of the
greenlet switched to.

The hook runs a Python function on every greenlet switch (0.5-1 µs of a hello request, two
or more switches each), yet it only has work while some greenlet of the thread has a
running loop. So it is in only then (:class:`ThreadHook`): it goes in when a loop becomes
running in the thread and comes out when none is running and none is saved. asyncio's
``events._set_running_loop`` (every ``run_forever`` calls it) is wrapped for that, and the
worker's own loop says so where it parks (:mod:`.bridge`) and around a task's eager first
step. A loop that waits in the hub without being parked there (a coroutine blocking in
gevent) keeps the hook in: it is switched away from with its loop still running.

The running loop is tracked here (:attr:`ThreadHook.running`), not asked of asyncio: on
CPython 3.11 every ``_set_running_loop`` call, and every ``get_running_loop`` while a loop
is set, makes a ``getpid()`` system call, and system calls cost this server far more than
their own time.
"""

from __future__ import annotations

import importlib.machinery
import sys
import threading
import types
from collections.abc import Callable
from typing import Any, Final, TypeVar

import greenlet  # type: ignore[import-untyped]  # no stubs installed

#: the hook of each OS thread whose running loop is kept per greenlet
_hooks: dict[int, ThreadHook] = {}
_lock = threading.Lock()
Tracer = Callable[[str, Any], None]
T = TypeVar("T")
# (Final: C statics in the compiled build, where the module's attributes are dict lookups)
_settrace: Final[Callable[[Tracer | None], Tracer | None]] = greenlet.settrace
_gettrace: Final[Callable[[], Tracer | None]] = greenlet.gettrace


class ThreadHook:
    """The switch hook of one OS thread, in while any of its greenlets has a running loop.

    :meth:`set_running` is how greenserve changes the thread's running loop; asyncio's own
    ``_set_running_loop`` is wrapped to report here too. Both are called from the thread
    the hook belongs to.
    """

    def __init__(self) -> None:
        #: greenlet -> (its running loop, the task it was stepping or None)
        self.saved: dict[Any, tuple[Any, Any]] = {}
        #: the thread's running loop, as last set (see the module docstring)
        self.running: Any = None
        self.tracing = False
        self.previous: Tracer | None = None  # the trace function that was in before ours
        self.trace: Tracer | None = None  # made when a loop first runs
        self._setter: Callable[[Any], None] | None = None

    def entered(self) -> None:
        """A loop is running now: switches must carry it (the hook goes in)."""
        if not self.tracing:
            if self.trace is None:
                self.trace = _make_tracer(self)
            self.previous = _settrace(self.trace)
            self.tracing = True

    def left(self) -> None:
        """No loop is running now: the hook comes out unless a parked greenlet has one."""
        if self.tracing and not self.saved and _gettrace() is self.trace:
            # (another trace function put in over ours may call ours: then it stays in)
            _settrace(self.previous)
            self.previous = None
            self.tracing = False

    def set_running(self, loop: Any) -> None:
        """Make ``loop`` (or None) the thread's running loop (asyncio is imported)."""
        setter = self._setter
        if setter is None:
            setter = self._setter = _c_set_running_loop()
        setter(loop)
        self.running = loop
        if loop is None:
            self.left()
        else:
            self.entered()


    def call_running(self, loop: Any, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` with ``loop`` as the thread's running loop (the hook in meanwhile,
        for code that blocks in gevent), then the previous one again."""
        previous = self.running
        self.set_running(loop)
        try:
            return fn(*args)
        finally:
            self.set_running(previous)


def install() -> ThreadHook:
    """Keep the running loop per greenlet in the calling OS thread; idempotent.

    asyncio is not imported for this (a WSGI worker calls it at boot): if nothing imported
    it yet, ``_set_running_loop`` is wrapped as ``asyncio.events`` is imported (an import
    hook that removes itself).
    """
    ident = _os_thread_ident_function()()
    with _lock:
        hook = _hooks.get(ident)
        if hook is not None:
            return hook
        hook = _hooks[ident] = ThreadHook()
    events = sys.modules.get("asyncio.events")
    if events is not None:
        _wrap_set_running_loop(events)
        running = events._get_running_loop()
        if running is not None:  # installed from inside a running loop
            hook.running = running
            hook.entered()
    elif not any(isinstance(finder, _EventsImportWatch) for finder in sys.meta_path):
        sys.meta_path.insert(0, _EventsImportWatch())
    return hook


class _EventsImportWatch:
    """A meta path finder that wraps ``asyncio.events`` as it is imported, then leaves."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != "asyncio.events":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        loader = getattr(spec, "loader", None)
        if loader is None:
            return None  # not found: the import fails as it would have
        exec_module = loader.exec_module

        def exec_and_wrap(module: types.ModuleType) -> None:
            exec_module(module)
            _wrap_set_running_loop(module)

        loader.exec_module = exec_and_wrap
        return spec


def _wrap_set_running_loop(events: Any) -> None:  # asyncio.events
    original: Callable[[Any], None] = events._set_running_loop
    if getattr(original, "greenserve_hook", False):
        return
    hooks, ident = _hooks, _os_thread_ident_function()

    def set_running_loop(loop: Any) -> None:
        original(loop)
        hook = hooks.get(ident())
        if hook is not None:  # a thread that keeps loops per greenlet
            hook.running = loop
            if loop is None:
                hook.left()
            else:
                hook.entered()

    set_running_loop.greenserve_hook = True  # type: ignore[attr-defined]
    set_running_loop.__wrapped__ = original  # type: ignore[attr-defined]
    events._set_running_loop = set_running_loop
    # asyncio re-exports the function; when the wrap happens during asyncio's own import,
    # the package copies the wrapper itself.
    package: Any = sys.modules.get("asyncio")
    if package is not None and getattr(package, "_set_running_loop", None) is original:
        package._set_running_loop = set_running_loop


def _os_thread_ident_function() -> Callable[[], int]:
    """``get_ident`` of the real OS thread (``threading.get_ident`` returns greenlet ids
    after patching)."""
    try:
        from gevent.monkey import get_original
    except ImportError:  # pragma: no cover - gevent is a dependency
        return threading.get_ident
    ident: Callable[[], int] = get_original("_thread", "get_ident")
    return ident


def _make_tracer(hook: ThreadHook) -> Tracer:
    """The trace function, made when a loop first runs (asyncio is imported by then)."""
    current_task = current_task_getter()
    core = sys.modules.get("_asyncio")
    swap_task = _task_swapper(core if core is not None else sys.modules["asyncio.tasks"])
    set_running = _c_set_running_loop()  # not hook.set_running: the hook stays in here
    saved = hook.saved

    def trace(event: str, args: Any) -> None:  # event: "switch" or "throw"
        running = hook.running
        if running is not None:
            # The current task goes with the greenlet too: a greenlet that blocks in gevent
            # mid-step (a task stepped outside the loop greenlet, or blocking code in a
            # coroutine) must not leave its task "current" for the loop's other tasks,
            # which asyncio would refuse to step.
            saved[args[0]] = (running, swap_task(running, None)
                              if current_task(running) is not None else None)
        if saved:
            entry = saved.pop(args[1], None)
            if entry is not None:
                if entry[0] is not running:
                    set_running(entry[0])
                    hook.running = entry[0]
                if entry[1] is not None:
                    swap_task(entry[0], entry[1])
            elif running is not None:
                set_running(None)
                hook.running = None
        previous = hook.previous
        if previous is not None:
            previous(event, args)

    return trace


def _c_set_running_loop() -> Callable[[Any], None]:
    """asyncio's unwrapped ``_set_running_loop`` (the C one where there is one)."""
    core = sys.modules.get("_asyncio")
    if core is not None:
        setter: Callable[[Any], None] = core._set_running_loop
        return setter
    events: Any = sys.modules["asyncio.events"]
    original: Callable[[Any], None] = getattr(events._set_running_loop, "__wrapped__",
                                              events._set_running_loop)
    return original


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


def current_task_getter() -> Callable[[Any], Any]:
    """``current_task_of(loop)``: asyncio's current task of ``loop``, with no Python call on
    CPython 3.11-3.13 (the bound ``get`` of the C module's dict of current tasks, the one
    :func:`_task_swapper` changes). Imports asyncio: call it where a loop is in use."""
    import asyncio

    tasks = getattr(sys.modules.get("_asyncio"), "_current_tasks", None)
    if isinstance(tasks, dict):
        get: Callable[[Any], Any] = tasks.get
        return get
    return asyncio.current_task
