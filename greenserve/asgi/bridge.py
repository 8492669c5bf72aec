"""The worker's asyncio loop, run on the gevent hub.

Design A of the bridge study (``shared/asgi-bridge.md``): one event loop per worker process,
created after the fork, running ``run_forever()`` in a greenlet of its own. Connection
greenlets keep the sockets; the app's coroutines run on the loop.

- **Selector.** The loop polls a real (unpatched) epoll of its own. ``select(0)`` is an
  ``epoll_wait(0)`` syscall, not a hub round trip; only when the loop has nothing to do does
  it park, with a hub io watcher on the epoll fd and a timer for its next deadline. After
  :data:`SLICE` seconds of continuous loop work it yields to the hub once, so greenlets run.
- **Wake.** ``call_soon_threadsafe`` from a greenlet of this thread resumes a parked loop
  with one hub callback instead of a self-pipe write (the pipe stays for real threads).
- **Running loop.** :mod:`.loophook` makes ``get_running_loop()`` per greenlet.

Primitives: :func:`run_in_loop` (a greenlet runs a coroutine on the loop and waits, blocking
only itself), :func:`run_in_hub` (a coroutine runs a blocking function in a new greenlet),
:func:`run_in_thread` (a coroutine runs a function in a real OS thread); the hand-offs the
request cycles use are in :mod:`.handoff`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import importlib
import importlib.util
import logging
import os
import selectors
import sys
import time
from collections import deque
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Final, Generic, TypeVar, TypeVarTuple, Unpack

import gevent
import gevent.event
import gevent.monkey
import gevent.threadpool
from gevent import getcurrent

from . import loophook, registry
from .eager import TASK_NAME, FirstStep, claimed_eager_task
from .handoff import READ_EVENT, settle, settle_exception

if sys.version_info >= (3, 12):
    from .eager import native_eager_task

T = TypeVar("T")
Ts = TypeVarTuple("Ts")
log = logging.getLogger("greenserve.error")

_real_get_ident: Callable[[], int] = gevent.monkey.get_original("_thread", "get_ident")
_RealSelector: type[selectors.BaseSelector] = gevent.monkey.get_original(
    "selectors", "DefaultSelector")
#: continuous loop work (seconds) after which the loop lets the hub run other greenlets
SLICE = 0.002
#: seconds between settles of deferred task registrations (:mod:`.registry`, 3.11)
SETTLE_INTERVAL = 1.0
# (Final: the compiled build reads these as C statics, not from the module's dict)
#: greenlet "threads" of the default executor (``asyncio.to_thread``), anyio's limit too
EXECUTOR_SIZE = 40
#: ``current_task_of(loop)``, bound once (every request calls it)
current_task_of: Final = loophook.current_task_getter()
#: the stdlib's eager task start exists (3.12+)
_NATIVE_EAGER: Final = sys.version_info >= (3, 12)

#: the running bridge of each OS thread (a worker has one; embedded servers one per thread)
_bridges: dict[int, LoopBridge] = {}


class HubSelector(selectors.BaseSelector):
    """The loop's selector: a real epoll that the hub watches only while the loop is parked."""

    def __init__(self, hub: Any, loophook: loophook.ThreadHook) -> None:
        self._sel = _RealSelector()
        #: the switch hook of the loop's thread (the loop's park and eager steps tell it)
        self.loophook = loophook
        fileno = getattr(self._sel, "fileno", None)
        if fileno is None:
            raise RuntimeError(f"{_RealSelector.__name__} has no pollable fd: the asyncio "
                               "bridge needs epoll or kqueue")
        self._hub = hub
        self._io = hub.loop.io(fileno(), READ_EVENT)
        # Wakes are a zero timer, not a hub callback: it fires after the hub's next I/O
        # poll, so every connection with a request waiting starts its task before the loop
        # runs (one batch), and a chain of callbacks (wake the loop, wake a connection,
        # which reads its next request and wakes the loop...) cannot keep the hub from
        # polling for up to a switch interval, which left some connections waiting (the
        # ASGI p99 tail at 50 connections).
        self._wake = hub.loop.timer(0)
        self._parked: Any = None
        self._woken = False
        self._wake_scheduled = False
        self._last_yield = time.perf_counter()

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._sel.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._sel.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._sel.modify(fileobj, events, data)

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._sel.get_map()

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if registry.deferred:  # 3.11: tasks made since the last iteration join asyncio's set
            registry.settle()
        ready = self._sel.select(0)
        if ready or self._woken or (timeout is not None and timeout <= 0):
            self._woken = False
            now = time.perf_counter()
            if now - self._last_yield < SLICE:
                return ready
            # The loop has been busy for a whole slice: let the hub run the greenlets. Not
            # gevent.sleep(0), which polls no I/O and fires no timers (study, pitfall 4).
            gevent.sleep(1e-6)
            self._last_yield = time.perf_counter()
            return self._sel.select(0)
        self._park(timeout)
        self._last_yield = time.perf_counter()
        return self._sel.select(0)

    def _park(self, timeout: float | None) -> None:
        hub = self._hub
        self._parked = getcurrent()
        self._io.start(self._resume)
        timer = None
        if timeout is not None:
            timer = hub.loop.timer(timeout)
            timer.start(self._resume)
        # Parked, the loop is nobody's running loop: the switch hook can come out while no
        # other greenlet has one (see loophook).
        hook = self.loophook
        loop = hook.running
        if loop is not None:
            hook.set_running(None)
        try:
            hub.switch()
        finally:
            if loop is not None:
                hook.set_running(loop)
            self._parked = None
            self._woken = False
            self._io.stop()
            if self._wake_scheduled:
                self._wake_scheduled = False
                self._wake.stop()
            if timer is not None:
                timer.close()

    def _resume(self) -> None:
        """Hub callback: switch back into the parked loop greenlet."""
        self._wake_scheduled = False
        parked = self._parked
        if parked is not None:
            self._parked = None
            parked.switch()

    def wakeup(self) -> None:
        """Make the loop run its ready callbacks soon (from any greenlet of its thread)."""
        if self._parked is None:
            self._woken = True
        elif not self._wake_scheduled:
            self._wake_scheduled = True
            self._wake.start(self._resume)

    def close(self) -> None:
        self._io.stop()
        self._wake.close()
        self._sel.close()


class GreenletEventLoop(asyncio.SelectorEventLoop):
    """``call_soon_threadsafe`` from this OS thread wakes the loop with a hub callback."""

    def __init__(self, selector: HubSelector) -> None:
        self._first_step = FirstStep()  # (before the base's __init__, which calls set_debug)
        super().__init__(selector)
        self._hub_selector = selector
        self._os_thread = _real_get_ident()
        self._claimed = asyncio.Handle(lambda: None, (), self)  # what call_soon returns then
        self._claimed.cancel()

    def set_debug(self, enabled: bool) -> None:
        super().set_debug(enabled)
        self._note_plain()
        # Every Task and Future asks its loop get_debug() as it is made: a C callable in the
        # instance saves a Python frame per ASGI request (instance attributes win over
        # methods in method calls too).
        self.get_debug = (True if enabled else False).__bool__  # type: ignore[method-assign]

    def set_task_factory(self, factory: Any) -> None:
        super().set_task_factory(factory)
        self._note_plain()

    def _note_plain(self) -> None:
        """Tell the eager start whether it applies: no debug mode and no task factory."""
        # (getattr: the base's __init__ calls set_debug before it sets _task_factory)
        self._first_step.plain = (not self._debug  # type: ignore[attr-defined]
                                  and getattr(self, "_task_factory", None) is None)

    def call_at(self, when: float, callback: Callable[[Unpack[Ts]], object], *args: *Ts,
                context: contextvars.Context | None = None) -> asyncio.TimerHandle:
        self._first_step.timed = True  # (call_later comes here too)
        return super().call_at(when, callback, *args, context=context)

    def call_soon(self, callback: Callable[[Unpack[Ts]], object], *args: *Ts,
                  context: contextvars.Context | None = None) -> asyncio.Handle:
        first = self._first_step
        if first.armed and not args:
            # LoopBridge.start_task: the new task's first step, handed to the caller to run in
            # its own greenlet (or to queue after all); no Handle, no trip through _ready.
            first.armed = False
            first.step, first.context = callback, context
            return self._claimed
        return super().call_soon(callback, *args, context=context)

    def _write_to_self(self) -> None:
        if _real_get_ident() == self._os_thread:
            self._hub_selector.wakeup()
        else:  # a real thread (gevent's threadpool): the self-pipe, which the epoll watches
            super()._write_to_self()  # type: ignore[misc]


class Pending(Generic[T]):
    """A coroutine submitted from a greenlet; :meth:`wait` blocks that greenlet only."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._done = gevent.event.Event()
        self._task: asyncio.Task[T] | None = None

    def _start(self, coro: Coroutine[Any, Any, T]) -> None:
        self._task = self._loop.create_task(coro)
        self._task.add_done_callback(lambda _: self._done.set())

    def wait(self, timeout: float | None = None) -> bool:
        """True once the coroutine has finished (or was cancelled)."""
        return bool(self._done.wait(timeout))

    def result(self) -> T:
        """Wait, then return the coroutine's result or raise its exception."""
        self._done.wait()
        assert self._task is not None
        return self._task.result()

    def cancel(self) -> None:
        """Cancel the coroutine (it may still run its cleanup)."""
        self._loop.call_soon_threadsafe(self._cancel)

    def _cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()


class LoopBridge:
    """One worker's asyncio loop in its own greenlet: :meth:`start` after the fork."""

    def __init__(self, executor_size: int = EXECUTOR_SIZE) -> None:
        self.executor_size = executor_size
        self._loop: GreenletEventLoop | None = None
        self._greenlet: gevent.Greenlet | None = None
        self._thread_slots: asyncio.Semaphore | None = None
        self._real_pool: gevent.threadpool.ThreadPool | None = None
        self._unshare: Callable[[], None] = lambda: None
        #: the gevent hub of the thread that started the loop
        self.hub: Any = None
        # Read by every eager start (set by start()): here they are native fields of the
        # compiled build, where the loop's are dict lookups. asyncio never replaces a loop's
        # deque of ready callbacks.
        self._hook = loophook.ThreadHook()
        self._ready: deque[asyncio.Handle] = deque()
        self._first_step = FirstStep()
        #: :data:`.registry.deferred` while registrations are deferred (3.11)
        self._deferred: list[asyncio.Task[Any]] | None = None

    @property
    def loop(self) -> GreenletEventLoop:
        """The running loop (after :meth:`start`)."""
        if self._loop is None:
            raise RuntimeError("the asyncio loop bridge is not started")
        return self._loop

    @property
    def running(self) -> bool:
        return self._loop is not None and not self._loop.is_closed()

    def in_loop_greenlet(self) -> bool:
        """Whether the caller runs in the loop's own greenlet."""
        return getcurrent() is self._greenlet

    def start(self) -> None:
        """Create the loop and its greenlet; returns once the loop runs."""
        self.hub = gevent.get_hub()
        self._hook = loophook.install()
        loop = GreenletEventLoop(HubSelector(self.hub, self._hook))
        loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(
            max_workers=self.executor_size, thread_name_prefix="asyncio-executor"))
        self._loop = loop
        self._ready = loop._ready  # type: ignore[attr-defined]
        self._first_step = loop._first_step
        if registry.install():
            self._deferred = registry.deferred
            loop.call_later(SETTLE_INTERVAL, self._settle_periodically)
        self._greenlet = gevent.spawn(self._main)
        started = gevent.event.Event()
        loop.call_soon_threadsafe(started.set)
        started.wait()
        self._unshare = _share_with_asgiref(loop)
        _bridges[_real_get_ident()] = self

    def _settle_periodically(self) -> None:
        # (tasks other threads make are deferred too: they join the set within a second)
        registry.settle()
        self.loop.call_later(SETTLE_INTERVAL, self._settle_periodically)

    def _main(self) -> None:
        loop = self.loop
        asyncio.set_event_loop(loop)
        while True:
            try:
                loop.run_forever()
                return
            except (SystemExit, KeyboardInterrupt):  # raised in a task: asyncio re-raises
                if loop.is_closed():
                    raise
                log.exception("Exception escaped the asyncio loop; it keeps running")

    def start_task(self, coro: Coroutine[Any, Any, None], *,
                   eager: bool = False) -> asyncio.Task[None] | None:
        """Run ``coro`` as a task of the loop, from a greenlet of this thread; returns it
        (None in debug mode, which refuses loop calls from another "thread": the task is
        made on the loop).

        With ``eager`` the first step runs right here (3.12+: the stdlib's eager start): a
        coroutine that never waits finishes before this returns. The loop is this greenlet's
        running loop meanwhile, so ``current_task()``, ``get_running_loop()`` and contextvars
        are what the task sees on the loop. Not eager with an app's task factory, or when
        another task is mid-step. What the step leaves for the loop wakes it.
        """
        loop = self.loop
        first = self._first_step
        if not first.plain:
            if loop.get_debug():
                loop.call_soon_threadsafe(loop.create_task, coro)
                return None
            task = loop.create_task(coro)  # (a task factory's) first step queued on the loop
            loop._hub_selector.wakeup()
            return task
        if not eager or current_task_of(loop) is not None:
            task = loop.create_task(coro, name=TASK_NAME)
            loop._hub_selector.wakeup()
            return task
        ready = len(self._ready)
        first.timed = False
        # (_NATIVE_EAGER first: compiled code evaluates the version test at run time)
        if _NATIVE_EAGER and sys.version_info >= (3, 12):
            task = self._hook.call_running(loop, native_eager_task, loop, coro)
        else:
            task = claimed_eager_task(loop, first, self._hook, coro)
            deferred = self._deferred
            if deferred:  # 3.11: the task (done: never registered) and what its step made
                if len(deferred) == 1 and deferred[0] is task and task.done():
                    deferred.clear()
                else:
                    registry.settle()
        if not task.done() or len(self._ready) != ready or first.timed:
            loop._hub_selector.wakeup()
        return task

    def call_soon(self, callback: Callable[..., object], *args: Any) -> None:
        """Run ``callback(*args)`` on the loop soon (safe from any greenlet or thread)."""
        self.loop.call_soon_threadsafe(callback, *args)

    def submit(self, coro: Coroutine[Any, Any, T]) -> Pending[T]:
        """Run ``coro`` on the loop; the returned :class:`Pending` waits for it."""
        pending: Pending[T] = Pending(self.loop)
        self.loop.call_soon_threadsafe(pending._start, coro)
        return pending

    def real_threads(self) -> tuple[gevent.threadpool.ThreadPool, asyncio.Semaphore]:
        """The pool of real OS threads (one per core, made on first use) for
        :func:`run_in_thread`, and the semaphore that keeps its ``spawn`` from blocking."""
        if self._real_pool is None or self._thread_slots is None:
            self._real_pool = gevent.threadpool.ThreadPool(os.cpu_count() or 1)
            self._thread_slots = asyncio.Semaphore(self._real_pool.maxsize)
        return self._real_pool, self._thread_slots

    def stop(self, timeout: float) -> None:
        """Cancel what still runs, close async generators and the executor, close the loop."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if loop.is_running():
            self.submit(self._drain(timeout)).wait(timeout + 1)
            loop.call_soon_threadsafe(loop.stop)
            if self._greenlet is not None:
                self._greenlet.join(timeout=max(timeout, 1.0))
                if not self._greenlet.dead:
                    self._greenlet.kill(block=True, timeout=1)
        loop.close()
        if self._deferred is not None:
            self._deferred = None
            registry.uninstall()
        if self._real_pool is not None:
            self._real_pool.kill()
        self._unshare()
        if _bridges.get(loop._os_thread) is self:
            del _bridges[loop._os_thread]

    async def _drain(self, timeout: float) -> None:
        me = asyncio.current_task()
        tasks = [task for task in asyncio.all_tasks() if task is not me]
        for task in tasks:
            task.cancel()
        if tasks:
            _, still = await asyncio.wait(tasks, timeout=timeout)
            if still:
                log.warning("%d asyncio tasks did not finish after cancellation", len(still))
        loop = self.loop
        try:
            await asyncio.wait_for(loop.shutdown_asyncgens(), timeout)
            await asyncio.wait_for(loop.shutdown_default_executor(), timeout)
        except TimeoutError:
            log.warning("asyncio executor or async generators did not close in %g s", timeout)


def current() -> LoopBridge:
    """The bridge of this worker; RuntimeError when none runs."""
    bridge = _bridges.get(_real_get_ident())
    if bridge is None or not bridge.running:
        raise RuntimeError("no greenserve asyncio loop runs in this thread")
    return bridge


def _share_with_asgiref(loop: asyncio.AbstractEventLoop) -> Callable[[], None]:
    """Make asgiref's ``async_to_sync`` in plain greenlets run on this loop.

    asgiref looks for "the main event loop" in a thread-local set by ``sync_to_async``;
    greenlets that were not started by it have none, so each call would start a private loop
    (which cannot use the app's loop-bound resources). A class-level default fixes that for
    every greenlet; ``sync_to_async`` threads still set their own. Returns the undo.
    """
    sync = sys.modules.get("asgiref.sync")
    if sync is None:
        if importlib.util.find_spec("asgiref") is None:
            return lambda: None
        sync = importlib.import_module("asgiref.sync")  # apps often import it lazily
    original = sync.SyncToAsync.threadlocal
    shared = type("SharedLoopLocal", (type(original),), {
        "main_event_loop": loop, "main_event_loop_pid": os.getpid()})
    sync.SyncToAsync.threadlocal = shared()

    def undo() -> None:
        sync.SyncToAsync.threadlocal = original

    return undo


# -- the primitives --------------------------------------------------------------------------
def run_in_loop(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on the worker's loop from a greenlet and return its result.

    Blocks the calling greenlet only (the hub and the loop keep running). If the greenlet is
    killed or times out meanwhile, the coroutine is cancelled. Calling it from the loop's
    own greenlet would deadlock, so that raises RuntimeError.
    """
    bridge = current()
    if getcurrent() is bridge._greenlet:
        coro.close()
        raise RuntimeError("run_in_loop() from the event loop's greenlet: await it instead")
    pending = bridge.submit(coro)
    try:
        return pending.result()
    except BaseException:
        pending.cancel()
        raise


async def run_in_hub(fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)`` in a new greenlet and await its result, from a coroutine.

    For code that blocks in gevent's way (patched sockets, ``gevent.sleep``, gevent
    locks): the loop keeps serving other tasks meanwhile. Cancelling the await kills the
    greenlet.
    """
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[T] = loop.create_future()

    def target() -> None:
        try:
            result = fn(*args)
        except BaseException as exc:
            loop.call_soon_threadsafe(settle_exception, fut, exc)
        else:
            loop.call_soon_threadsafe(settle, fut, result)

    runner = gevent.spawn(target)
    try:
        return await fut
    except asyncio.CancelledError:
        runner.kill(block=False)
        raise


async def run_in_thread(fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)`` in a real OS thread and await its result (CPU-bound work).

    ``asyncio.to_thread`` and friends run in greenlets under gevent patching, so CPU-bound
    work there freezes the worker; here it runs in gevent's pool of real threads and the hub
    keeps serving (the GIL still serialises Python bytecode). The function must not touch
    gevent objects of the worker (patched locks, queues, sockets). Outside greenserve's
    worker it falls back to ``asyncio.to_thread``.
    """
    bridge = _bridges.get(_real_get_ident())
    if bridge is None or not bridge.running:
        return await asyncio.to_thread(fn, *args)
    loop = asyncio.get_running_loop()
    pool, slots = bridge.real_threads()
    async with slots:
        fut: asyncio.Future[T] = loop.create_future()
        result = pool.spawn(fn, *args)

        def done(res: Any) -> None:  # runs in the hub
            if res.successful():
                loop.call_soon_threadsafe(settle, fut, res.value)
            else:
                loop.call_soon_threadsafe(settle_exception, fut, res.exception)

        result.rawlink(done)
        return await fut
