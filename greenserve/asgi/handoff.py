"""How the worker's loop and the gevent hub hand work and results to each other.

:class:`Mailbox` (a task hands blocking work to the one greenlet waiting for it),
:func:`settle` and :func:`settle_exception` (a greenlet's result reaches a future, as a loop
callback) and :func:`watch_readable` (a hub watcher on a file descriptor). Used by the
bridge (:mod:`.bridge`) and by the HTTP and WebSocket cycles.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, TypeVar

import gevent
from gevent import getcurrent

if TYPE_CHECKING:
    import asyncio

    from .bridge import LoopBridge

T = TypeVar("T")
#: libev/libuv EV_READ
READ_EVENT: Final = 1


def settle(fut: asyncio.Future[T], value: T) -> None:
    """Resolve ``fut`` unless it was cancelled meanwhile (a loop callback)."""
    if not fut.done():
        fut.set_result(value)


def settle_exception(fut: asyncio.Future[Any], exc: BaseException) -> None:
    """Fail ``fut`` unless it was cancelled meanwhile (a loop callback)."""
    if not fut.done():
        fut.set_exception(exc)


#: the last item a task puts in its :class:`Mailbox`: no more work for the greenlet
DONE = "done"


class Mailbox:
    """Work the loop hands to one greenlet, which waits in :meth:`get` (FIFO)."""

    __slots__ = ("_items", "_waiter", "_hub", "_scheduled")

    def __init__(self, hub: Any = None) -> None:
        self._items: deque[Any] = deque()
        self._waiter: Any = None
        self._hub = gevent.get_hub() if hub is None else hub
        self._scheduled = False

    def put(self, item: Any) -> None:
        """Queue ``item`` and wake the waiting greenlet (from the loop or the hub)."""
        self._items.append(item)
        if self._waiter is not None and not self._scheduled:
            self._scheduled = True
            self._hub.loop.run_callback(self._wake)

    def _wake(self) -> None:
        self._scheduled = False
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            waiter.switch()

    def get(self) -> Any:
        """The next item, waiting in the hub for one (timeouts and kills interrupt it)."""
        items = self._items
        while not items:
            self._waiter = getcurrent()
            try:
                self._hub.switch()
            finally:
                self._waiter = None
        return items.popleft()

    def serve(self, bridge: LoopBridge, do: Callable[[str, Any], Any]) -> None:
        """Run each ``(kind, payload, future)`` a task hands over until ``DONE``.

        ``do(kind, payload)`` does the blocking work in this greenlet; its result (or its
        exception) settles the task's future on the loop.
        """
        get = self.get
        while True:
            kind, payload, fut = get()
            if kind == DONE:
                return
            try:
                result = do(kind, payload)
            except Exception as exc:
                bridge.call_soon(settle_exception, fut, exc)
                continue
            bridge.call_soon(settle, fut, result)


def watch_readable(fd: int, callback: Callable[[], None]) -> Callable[[], None]:
    """Call ``callback()`` in the hub whenever ``fd`` is readable; returns the stop function."""
    watcher = gevent.get_hub().loop.io(fd, READ_EVENT)
    watcher.start(callback)

    def stop() -> None:
        watcher.stop()
        watcher.close()

    return stop
