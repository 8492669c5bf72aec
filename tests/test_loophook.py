"""The running-loop hook is in only while some greenlet has a running event loop.

The hook (greenserve/asgi/loophook.py) runs on every greenlet switch, so it goes in when a
loop starts running and comes out when none runs. The first loop must already be covered:
while it is parked, other greenlets' ``asyncio.run()`` still has to work.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from test_asgi_frameworks import concurrent_gets

from conftest import ServerProcess

#: the trace function's name as the app reports it: pure, then compiled by mypyc (a closure
#: becomes an object of a generated class)
HOOKS = ("greenserve.asgi.loophook._make_tracer.<locals>.trace",
         "greenserve.asgi.loophook.trace__make_tracer_obj")


def _json(response: bytes) -> Any:
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), response[:300]
    return json.loads(body)


@pytest.mark.parametrize("import_asyncio", ["0", "1"], ids=["lazy-import", "app-imports"])
def test_wsgi_worker_hooks_switches_only_while_a_view_runs_asyncio(
        serve, import_asyncio: str) -> None:  # type: ignore[no-untyped-def]
    # Default settings: the blocked-hub monitor (on) traces no switch either.
    server: ServerProcess = serve("loophook_app:app", env={"IMPORT_ASYNCIO": import_asyncio})
    before = requests.get(server.url + "/trace", timeout=10).json()
    assert before == {"trace": None, "asyncio_imported": import_asyncio == "1"}
    # The first loops of the worker, parked together: each asyncio.run() in another greenlet
    # only starts because the first loop put the hook in before it became "running".
    responses = concurrent_gets(server, ["/asyncio?s=0.5"] * 5 + ["/asyncio?s=0"] * 5)
    loops = [_json(r)["loop"] for r in responses]
    assert len(set(loops[:5])) == 5
    # No loop runs any more: the hook is out again, switches cost nothing.
    after = requests.get(server.url + "/trace", timeout=10).json()
    assert after == {"trace": None, "asyncio_imported": True}
    # While a loop is parked in a view, it is in.
    with ThreadPoolExecutor(1) as pool:
        parked = pool.submit(requests.get, server.url + "/asyncio?s=1", timeout=10)
        time.sleep(0.4)
        during = requests.get(server.url + "/trace", timeout=10).json()
        assert parked.result().status_code == 200
    assert during["asyncio_imported"] is True and during["trace"] in HOOKS
    again = concurrent_gets(server, ["/asyncio?s=0.2"] * 3)  # later loops work the same
    assert len({_json(r)["loop"] for r in again}) == 3
    assert requests.get(server.url + "/trace", timeout=10).json()["trace"] is None


def test_task_swapper_takes_the_current_task_out_and_puts_it_back() -> None:
    # The hook moves asyncio's current task with each greenlet. On this interpreter, and
    # on the shape later CPythons have (_swap_current_task, raising KeyError on 3.12 when
    # nothing is current), swap(loop, None) must take it out and swap(loop, task) restore.
    import _asyncio
    import asyncio
    import types

    from greenserve.asgi.loophook import _task_swapper

    loop = asyncio.new_event_loop()
    tasks: dict[Any, Any] = {}

    def strict_swap(loop_: Any, task: Any) -> Any:  # 3.12.1's behaviour
        if task is None:
            return tasks.pop(loop_)
        previous, tasks[loop_] = tasks.get(loop_), task
        return previous

    shapes = [_asyncio, types.SimpleNamespace(_swap_current_task=strict_swap)]
    seen = []

    async def main() -> None:
        me = asyncio.current_task()
        for core in shapes:
            tasks.clear()
            if core is not _asyncio:
                tasks[loop] = me
            swap = _task_swapper(core)
            assert swap(loop, None) is me
            assert swap(loop, None) is None  # nothing current: no error
            assert swap(loop, me) is None
            if core is _asyncio:
                assert asyncio.current_task() is me
            seen.append(core is _asyncio)
        await asyncio.sleep(0)  # the task still steps: it is current again

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    assert seen == [True, False]
