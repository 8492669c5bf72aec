"""Bridge scenarios run in a patched process: ``python asgi_bridge_probe.py NAME`` prints JSON.

The tests (tests/test_asgi_bridge.py) run each scenario in its own interpreter, patched like
a worker, so the running-loop hook and the loop never leak into the pytest process.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import asyncio  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402

from greenserve.asgi import bridge  # noqa: E402

SCENARIOS: dict[str, Callable[[bridge.LoopBridge], Any]] = {}


def scenario(fn: Callable[[bridge.LoopBridge], Any]) -> Callable[[bridge.LoopBridge], Any]:
    SCENARIOS[fn.__name__] = fn
    return fn


@scenario
def idle_wake(b: bridge.LoopBridge) -> Any:
    """A greenlet submits to an idle loop: how long until it ran (the wake is not lost)."""
    gevent.sleep(0.2)  # the loop is parked now
    latencies = []
    for _ in range(20):
        started = time.perf_counter()
        bridge.run_in_loop(asyncio.sleep(0))
        latencies.append(time.perf_counter() - started)
        gevent.sleep(0.01)
    return {"max_ms": max(latencies) * 1000}


@scenario
def run_in_loop_blocks_only_the_caller(b: bridge.LoopBridge) -> Any:
    ticks: list[float] = []

    def ticker() -> None:
        for _ in range(10):
            ticks.append(time.monotonic())
            gevent.sleep(0.02)

    worker = gevent.spawn(ticker)

    async def slow() -> str:
        await asyncio.sleep(0.2)
        return "slow result"

    result = bridge.run_in_loop(slow())
    worker.join()
    return {"result": result, "ticks": len(ticks)}


@scenario
def run_in_loop_errors(b: bridge.LoopBridge) -> Any:
    async def boom() -> None:
        raise KeyError("from the loop")

    try:
        bridge.run_in_loop(boom())
    except KeyError as exc:
        raised = repr(exc)

    async def nested() -> str:
        try:
            bridge.run_in_loop(asyncio.sleep(0))
        except RuntimeError as exc:
            return str(exc)
        return "no error"

    cancelled: list[str] = []

    async def forever() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.append("cancelled")
            raise

    waiter = gevent.spawn(bridge.run_in_loop, forever())
    gevent.sleep(0.1)
    waiter.kill()
    gevent.sleep(0.1)
    return {"raised": raised, "nested": bridge.run_in_loop(nested()), "cancelled": cancelled}


@scenario
def run_in_hub_from_a_coroutine(b: bridge.LoopBridge) -> Any:
    def blocking(n: int) -> int:
        gevent.sleep(0.1)  # gevent-blocking: fine in a greenlet, not on the loop
        return n * 2

    async def main() -> dict[str, Any]:
        beats = 0

        async def beat() -> None:
            nonlocal beats
            while True:
                beats += 1
                await asyncio.sleep(0.01)

        beater = asyncio.get_running_loop().create_task(beat())
        results = await asyncio.gather(*(bridge.run_in_hub(blocking, i) for i in range(5)))
        beater.cancel()
        return {"results": results, "beats": beats}

    return bridge.run_in_loop(main())


@scenario
def fairness(b: bridge.LoopBridge) -> Any:
    """A coroutine that never sleeps for real must not starve the greenlets."""
    stop = False

    async def spin() -> None:
        while not stop:
            await asyncio.sleep(0)

    b.call_soon(lambda: b.loop.create_task(spin()))
    gevent.sleep(0.05)
    lateness = []
    for _ in range(20):
        started = time.perf_counter()
        gevent.sleep(0.005)
        lateness.append(time.perf_counter() - started - 0.005)
    stop = True
    return {"max_late_ms": max(lateness) * 1000}


@scenario
def running_loop_is_per_greenlet(b: bridge.LoopBridge) -> Any:
    """While the worker's loop runs, other greenlets have no running loop and run their own."""
    seen = []

    def look() -> None:
        try:
            asyncio.get_running_loop()
            seen.append("running loop visible")
        except RuntimeError:
            seen.append("none")

    async def own() -> int:
        await asyncio.sleep(0.1)
        return id(asyncio.get_running_loop())

    def run_own() -> int:
        return asyncio.run(own())

    gevent.joinall([gevent.spawn(look) for _ in range(3)])
    runs = [g.get() for g in gevent.joinall([gevent.spawn(run_own) for _ in range(3)])]

    async def thread_sees() -> str:
        result: list[str] = []

        def target() -> None:
            try:
                asyncio.get_running_loop()
                result.append("leaked")
            except RuntimeError:
                result.append("none")

        thread = threading.Thread(target=target)
        thread.start()  # switches greenlets from inside a coroutine
        await bridge.run_in_hub(thread.join)
        return result[0]

    return {"seen": seen, "own_loops": len(set(runs)), "shared": id(b.loop) in runs,
            "thread": bridge.run_in_loop(thread_sees())}


@scenario
def real_thread_wakes_the_loop(b: bridge.LoopBridge) -> Any:
    async def main() -> dict[str, Any]:
        started = time.perf_counter()
        ident = await bridge.run_in_thread(threading.get_native_id)
        return {"other_thread": ident != threading.get_native_id(),
                "ms": (time.perf_counter() - started) * 1000}

    return bridge.run_in_loop(main())


@scenario
def stop_cancels_and_closes(b: bridge.LoopBridge) -> Any:
    cancelled: list[str] = []

    async def forever() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.append("yes")
            raise

    b.call_soon(lambda: b.loop.create_task(forever()))
    gevent.sleep(0.05)
    loop = b.loop
    b.stop(2.0)
    return {"cancelled": cancelled, "closed": loop.is_closed(), "running": b.running}


@scenario
def registrations(b: bridge.LoopBridge) -> Any:
    """Which tasks join asyncio's weak set of tasks, read without settling (``data``):
    on 3.11 the deferred set (greenserve.asgi.registry), on 3.12+ the stdlib's set of
    scheduled tasks (its eager start keeps a task done in its first step out)."""
    import asyncio.tasks as stdlib
    import weakref

    # (not `or`: an empty WeakSet is false)
    tasks_set = (stdlib._all_tasks if hasattr(stdlib, "_all_tasks")
                 else stdlib._scheduled_tasks)
    held: list[asyncio.Task[None]] = []

    def registered(task: asyncio.Task[None]) -> bool:
        return weakref.ref(task) in tasks_set.data

    async def quick() -> None:
        pass

    async def waits() -> None:
        await asyncio.sleep(0.05)

    async def spawns() -> None:  # its first step starts a task that waits
        held.append(asyncio.create_task(waits()))

    result: dict[str, Any] = {"class": type(tasks_set).__name__}
    for name, coro in (("quick", quick), ("waits", waits), ("spawns", spawns)):
        task = b.start_task(coro(), eager=True)
        assert task is not None
        result[name] = [task.done(), registered(task)]
    result["spawned"] = [held[0].done(), registered(held[0])]

    class TaskLike:  # what a library may hand asyncio._register_task: done() fails here
        def done(self) -> bool:
            raise RuntimeError("not a real task")

    odd = TaskLike()
    asyncio.tasks._register_task(odd)  # type: ignore[arg-type]
    bridge.run_in_loop(asyncio.sleep(0))  # a loop iteration settles it
    result["task_like"] = registered(odd)  # type: ignore[arg-type]
    try:  # no weak reference to it: 3.11 defers the refusal to the settle, which logs it
        asyncio.tasks._register_task(1)  # type: ignore[arg-type]
    except TypeError:
        pass
    bridge.run_in_loop(asyncio.sleep(0))
    result["loop_runs"] = b.loop.is_running()
    b.stop(2.0)
    result["after_stop"] = type(tasks_set).__name__
    return result


def main() -> None:
    b = bridge.LoopBridge()
    b.start()
    try:
        result = SCENARIOS[sys.argv[1]](b)
    finally:
        b.stop(2.0)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
