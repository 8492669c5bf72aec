"""CPython 3.11: a task done in its first step never joins asyncio's set of all tasks.

Every ``asyncio.Task`` registers itself as it is made: on 3.11 the C ``Task`` calls
``add`` on the module-wide ``WeakSet`` that ``asyncio.all_tasks()`` reads. That is a weak
reference with a callback and two Python frames per task (``WeakSet.add``, then the removal
callback as the task is freed), 3 % of the instructions of an ASGI hello request. 3.12's
eager start skips the set for a task that finishes in its first step, which is what most
ASGI requests do; this does the same on 3.11.

:func:`install` turns the set's ``add`` into a C ``list.append`` onto a list of deferred
tasks. :func:`settle` moves the deferred tasks that are not done into the set. The bridge
settles after each eager start and on each loop iteration (the loop wakes at least once a
second), and every read of the set settles first, so ``asyncio.all_tasks()`` from any
thread sees every task that is not done, as before. What changes: a deferred task is held
by a strong reference until it is settled, and a task created and finished between two
settles is never in the set (nobody could have seen it there).

Not on 3.12+, where the eager start already keeps those tasks out (the set is only for
tasks that wait there).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import weakref
from collections.abc import Callable
from types import MethodType
from typing import Any

log = logging.getLogger("greenserve.error")
#: tasks made since the last :func:`settle` (the set's ``add`` appends here)
deferred: list[asyncio.Task[Any]] = []
_add_now: Callable[[Any, Any], None] = weakref.WeakSet.add
_lock = threading.Lock()
_installs = 0
_registry: weakref.WeakSet[asyncio.Task[Any]] | None = None


def settle() -> None:
    """Put the deferred tasks that are not done into the set (any thread)."""
    registry = _registry
    while deferred:
        try:
            task = deferred.pop()
        except IndexError:  # another thread settled the last one meanwhile
            return
        if registry is not None and not _done(task):
            try:
                _add_now(registry, task)
            except TypeError:  # no weak reference to it: asyncio would have refused it too
                log.warning("cannot register %r as an asyncio task", task)


def _done(task: Any) -> bool:
    try:
        return bool(task.done())
    except Exception:  # a library's task-like object: registered as asyncio would
        return False


class DeferredTaskSet(weakref.WeakSet):  # type: ignore[type-arg]
    """The class asyncio's set of tasks takes while installed: ``add`` defers, every
    other method settles first. Copies and results of set operations are sets of this class
    whose ``add`` adds at once (an instance attribute, which wins over the class's)."""

    # A builtin method is no descriptor: the set's add(task) is deferred.append(task), in C.
    add = deferred.append  # type: ignore[assignment]

    def __init__(self, data: Any = None) -> None:
        self.add = MethodType(_add_now, self)  # type: ignore[method-assign]
        super().__init__(data)


def _settling(name: str) -> Callable[..., Any]:
    method = getattr(weakref.WeakSet, name)

    def settled(self: weakref.WeakSet[Any], *args: Any) -> Any:
        settle()
        return method(self, *args)

    settled.__name__ = settled.__qualname__ = name
    settled.__doc__ = method.__doc__
    return settled


# Every method of WeakSet that reads or changes its data, except add.
for _name in ("__iter__", "__len__", "__contains__", "__reduce__", "clear", "copy", "pop",
              "remove", "discard", "update", "__ior__", "difference", "__sub__",
              "difference_update", "__isub__", "intersection", "__and__",
              "intersection_update", "__iand__", "issubset", "__le__", "__lt__", "issuperset",
              "__ge__", "__gt__", "__eq__", "symmetric_difference", "__xor__",
              "symmetric_difference_update", "__ixor__", "union", "__or__", "isdisjoint",
              "__repr__"):
    setattr(DeferredTaskSet, _name, _settling(_name))
DeferredTaskSet.__hash__ = None  # (as WeakSet: it defines __eq__)


def install() -> bool:
    """Defer registrations (CPython 3.11 with the C ``_asyncio`` only); True if in.

    Counted: each :func:`install` that returned True needs one :func:`uninstall`.
    """
    global _installs, _registry
    if sys.version_info >= (3, 12):
        return False
    core = sys.modules.get("_asyncio")
    registry = getattr(core, "_all_tasks", None)
    with _lock:
        if _installs:
            _installs += 1
            return True
        if type(registry) is not weakref.WeakSet:  # no C Task, or someone else's set
            return False
        _registry = registry
        registry.__class__ = DeferredTaskSet
        _installs = 1
        return True


def uninstall() -> None:
    """Undo one :func:`install`; the last one settles and restores the set's class."""
    global _installs, _registry
    with _lock:
        _installs -= 1
        if _installs or _registry is None:
            return
        settle()
        _registry.__class__ = weakref.WeakSet
        _registry = None
