"""The loop bridge in a patched process (tests/apps/asgi_bridge_probe.py runs each scenario
in its own interpreter, as a worker would: patched, one loop in its own greenlet)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from conftest import PACKAGE_ROOT, TESTS


def probe(name: str) -> Any:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS / "apps"), str(PACKAGE_ROOT)])}
    done = subprocess.run([sys.executable, "-W", "error", "asgi_bridge_probe.py", name],
                          cwd=TESTS / "apps", env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_greenlet_wakes_an_idle_loop() -> None:
    # call_soon from a greenlet alone would never wake a parked loop (the study's lost
    # wake-up); greenserve's wake makes a round trip take microseconds.
    assert probe("idle_wake")["max_ms"] < 50


def test_run_in_loop_blocks_only_the_calling_greenlet() -> None:
    assert probe("run_in_loop_blocks_only_the_caller") == {"result": "slow result", "ticks": 10}


def test_run_in_loop_errors_and_cancellation() -> None:
    result = probe("run_in_loop_errors")
    assert result["raised"] == "KeyError('from the loop')"
    assert result["nested"] == "run_in_loop() from the event loop's greenlet: await it instead"
    assert result["cancelled"] == ["cancelled"]  # killing the waiting greenlet cancels it


def test_run_in_hub_runs_blocking_code_beside_the_loop() -> None:
    result = probe("run_in_hub_from_a_coroutine")
    assert result["results"] == [0, 2, 4, 6, 8]
    assert result["beats"] >= 5  # the loop kept running while the greenlets blocked


def test_a_spinning_coroutine_does_not_starve_greenlets() -> None:
    # The loop yields to the hub after each 2 ms of continuous work.
    assert probe("fairness")["max_late_ms"] < 50


def test_running_loop_is_per_greenlet() -> None:
    result = probe("running_loop_is_per_greenlet")
    assert result["seen"] == ["none"] * 3  # get_running_loop() raises outside the loop
    assert result["own_loops"] == 3 and result["shared"] is False  # 3 concurrent asyncio.run
    assert result["thread"] == "none"  # Thread.start() inside a coroutine does not leak it


def test_real_thread_results_wake_the_loop() -> None:
    assert probe("real_thread_wakes_the_loop")["other_thread"] is True


@pytest.mark.parametrize("name", ["stop_cancels_and_closes"])
def test_stop_cancels_tasks_and_closes_the_loop(name: str) -> None:
    assert probe(name) == {"cancelled": ["yes"], "closed": True, "running": False}


def test_a_task_done_in_its_first_step_never_joins_the_set_of_tasks() -> None:
    # (CPython 3.11: greenserve.asgi.registry defers registrations; 3.12+: the stdlib's
    # eager start.) [done, registered] for each task.
    result = probe("registrations")
    assert result["quick"] == [True, False]
    assert result["waits"] == [False, True]
    assert result["spawns"] == [True, False]
    assert result["spawned"] == [False, True]  # a task made in the first step, waiting
    assert result["task_like"] is True  # registered though its done() fails (3.11: settled)
    assert result["loop_runs"] is True  # an object asyncio cannot register stops nothing
    deferred = sys.version_info < (3, 12)
    assert result["class"] == ("DeferredTaskSet" if deferred else "WeakSet")
    assert result["after_stop"] == "WeakSet"  # stop() restores asyncio's set
