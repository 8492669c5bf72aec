"""A request's task takes its first step in the connection greenlet that parsed the request.

Most ASGI requests never wait: the app answers in its first step. Running that step right
where :meth:`.LoopBridge.start_task` is called, with the worker's loop as the running loop,
saves two greenlet switches and a loop iteration per request. On CPython 3.12+ that is the
stdlib's eager start (:func:`native_eager_task`). On 3.11, :func:`claimed_eager_task` makes
a plain task while the loop hands the first step it queues to :class:`FirstStep` instead,
and runs it here as the loop's ``Handle._run`` would.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Final

from . import loophook

if TYPE_CHECKING:
    from .bridge import GreenletEventLoop

# (Final: C statics in the compiled build, not module dict lookups per request)
#: the name of a request's task (asyncio would format a "Task-N" string for each otherwise)
TASK_NAME: Final = "greenserve-request"
_Task: Final = asyncio.Task


class FirstStep:
    """What :meth:`.LoopBridge.start_task` reads of its loop on every request, kept by the
    loop in native fields (the loop's own attributes are dict lookups when compiled).

    ``call_soon`` puts a new task's first step here while :func:`claimed_eager_task` makes
    the task (3.11; armed for that call only). ``plain``: the loop is not in debug mode and
    has no task factory (the eager start applies). ``timed``: a timer was scheduled since
    it was last cleared (the loop must recompute its sleep).
    """

    def __init__(self) -> None:
        self.armed = False
        self.step: Callable[[], object] | None = None
        self.context: contextvars.Context | None = None
        self.plain = True
        self.timed = False


if sys.version_info >= (3, 12):
    def native_eager_task(loop: GreenletEventLoop,
                          coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """The stdlib's eager start (3.12+), in C: the step runs in the constructor, and a
        task done in it never joins the weak set of tasks (1.3 µs less per ASGI hello)."""
        return _Task(coro, loop=loop, name=TASK_NAME, eager_start=True)


def claimed_eager_task(loop: GreenletEventLoop, first: FirstStep, hook: loophook.ThreadHook,
                       coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    """A task whose first step (queued with ``call_soon``, claimed into ``first``) runs in
    this greenlet, with ``loop`` as its running loop, as the loop's ``Handle._run`` would,
    errors included."""
    first.armed = True
    try:
        task = _Task(coro, loop=loop, name=TASK_NAME)
    finally:
        first.armed = False
    step, context = first.step, first.context
    first.step = first.context = None  # (the step refers to the task)
    assert step is not None, "asyncio.Task queues its first step with call_soon"
    # ThreadHook.call_running written out: going through it (one call more, its *args) cost
    # 0.6 µs per ASGI hello in tools/request_micro.py, 4 %.
    previous = hook.running
    hook.set_running(loop)
    try:
        if context is None:
            step()
        else:
            context.run(step)
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as exc:  # a task's step catches the coroutine's own errors
        loop.call_exception_handler({"message": "Exception in the first step of a task",
                                     "exception": exc, "task": task})
    finally:
        hook.set_running(previous)
    return task

