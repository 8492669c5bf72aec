"""Dirty apps (gunicorn's dirty arbiters): real dirty worker processes, called from WSGI and
ASGI apps through greenserve's client and through gunicorn's own."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from master_helpers import wait_for

from conftest import PACKAGE_ROOT, TESTS, ServerProcess

DIRTY = ("--dirty-app", "dirty_apps:Model", "--dirty-app", "dirty_apps:Big",
         "--dirty-workers", "2")


def _call(server: ServerProcess, query: str, path: str = "/call") -> dict:  # type: ignore[type-arg]
    response = requests.get(f"{server.url}{path}?{query}", timeout=30)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_calls_return_results_from_another_process(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve(*DIRTY, "dirty_apps:wsgi")
    data = _call(server, "arg=[[1,2.5]]")
    assert data["result"]["ys"] == [2.0, 5.0]
    assert data["result"]["pid"] not in (server.proc.pid, os.getpid())
    assert server.has_logged("Dirty arbiter started (pid: ")


def test_generators_stream(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve(*DIRTY, "dirty_apps:wsgi")
    assert _call(server, "n=4", "/stream")["result"] == ["tok0", "tok1", "tok2", "tok3"]
    assert _call(server, "action=atokens&n=2", "/stream")["result"] == ["a0", "a1"]


def test_a_stream_left_early_or_executed_leaves_the_next_call_alone(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve(*DIRTY, "dirty_apps:wsgi")
    assert _call(server, "", "/first")["result"] == ["tok0", [2.0]]
    data = _call(server, "action=tokens&arg=[3]")
    assert data["error"] == "DirtyError" and "call it with stream()" in data["message"]
    assert _call(server, "arg=[[2]]")["result"]["ys"] == [4.0]


@pytest.mark.parametrize(("query", "error", "message"), [
    ("action=boom", "DirtyAppError", "the model broke"),
    ("action=nope", "DirtyAppError", "Unknown action: nope"),
    ("action=_private", "DirtyAppError", "Unknown action: _private"),
    ("app=nowhere:Nothing", "DirtyNoWorkersAvailableError",
     "No dirty workers available for app: nowhere:Nothing"),
])
def test_errors_come_back_as_gunicorns_classes(serve, query, error, message) -> None:  # type: ignore[no-untyped-def]
    server = serve(*DIRTY, "dirty_apps:wsgi")
    data = _call(server, query)
    assert data["error"] == error and data["message"] == message
    assert _call(server, "arg=[[1]]")["result"]["ys"] == [2.0]  # and calls go on


def test_dirty_timeout(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve(*DIRTY, "--dirty-timeout", "1", "dirty_apps:wsgi")
    data = _call(server, "action=slow&arg=[3]")
    assert data["error"] == "DirtyTimeoutError" and data["message"] == "Worker timeout"


def test_calls_run_in_parallel_across_workers_and_threads(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve(*DIRTY, "--dirty-threads", "2", "dirty_apps:wsgi")
    _call(server, "arg=[[1]]")  # both dirty workers are up
    results: list[int] = []

    def one() -> None:
        results.append(_call(server, "action=slow&arg=[1]")["result"])

    threads = [threading.Thread(target=one) for _ in range(4)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    elapsed = time.monotonic() - started
    assert len(results) == 4
    assert len(set(results)) == 2  # both dirty workers answered
    assert elapsed < 3.5, elapsed  # four 1-second calls, one after another, would take 4 s


def test_worker_limit_and_placement(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve(*DIRTY, "dirty_apps:wsgi")
    bigs = {_call(server, "action=where&app=dirty_apps:Big")["result"] for _ in range(6)}
    models = {_call(server, "arg=[[1]]")["result"]["pid"] for _ in range(6)}
    assert len(bigs) == 1  # Big.workers = 1
    assert len(models) == 2 and bigs <= models


def test_a_dead_dirty_worker_is_replaced(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve(*DIRTY, "dirty_apps:wsgi")
    before = {_call(server, "arg=[[1]]")["result"]["pid"] for _ in range(4)}
    crashed = _call(server, "action=crash")
    assert crashed["error"] == "DirtyWorkerError"
    assert server.has_logged("Dirty worker (pid:")
    deadline = time.monotonic() + 15
    while True:
        after = {_call(server, "arg=[[1]]")["result"]["pid"] for _ in range(4)}
        if len(after) == 2 and after != before:
            break
        assert time.monotonic() < deadline, (before, after)
        time.sleep(0.2)


def test_a_stuck_dirty_worker_is_killed_and_replaced(serve) -> None:  # type: ignore[no-untyped-def]
    # gunicorn's dirty monitor: a worker whose heartbeat is older than --dirty-timeout gets
    # ABRT, then KILL, with "DIRTY WORKER TIMEOUT (pid:N)"; the arbiter starts another.
    server = serve(*DIRTY, "--dirty-timeout", "1", "dirty_apps:wsgi")
    before = {_call(server, "arg=[[1]]")["result"]["pid"] for _ in range(4)}
    assert len(before) == 2
    frozen = _call(server, "action=freeze")  # the relay gives up after --dirty-timeout
    assert frozen.get("error") == "DirtyTimeoutError", (frozen, server.logs())
    assert server.has_logged("DIRTY WORKER TIMEOUT (pid:", timeout=15)
    found = re.search(r"DIRTY WORKER TIMEOUT \(pid:(\d+)\)", server.logs())
    assert found is not None
    stuck = int(found.group(1))
    assert stuck in before
    deadline = time.monotonic() + 15
    while True:  # ended (by ABRT, or KILL a second later) and replaced
        # (a call may still meet the stuck worker, or its corpse: those answer with errors)
        answers = [_call(server, "arg=[[1]]") for _ in range(4)]
        after = {a["result"]["pid"] for a in answers if "result" in a}
        if len(after) == 2 and stuck not in after and not os.path.exists(f"/proc/{stuck}"):
            break
        assert time.monotonic() < deadline, (before, after)
        time.sleep(0.2)


def test_hooks_and_signals(serve, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    events = tmp_path / "events"
    conf = tmp_path / "conf.py"
    conf.write_text(
        "import os\n"
        f"EVENTS = {str(events)!r}\n"
        "def _log(*words):\n"
        "    with open(EVENTS, 'a') as out:\n"
        "        out.write(' '.join(str(w) for w in words) + '\\n')\n"
        "def on_dirty_starting(arbiter):\n"
        "    _log('starting', os.getpid(), arbiter.pid)\n"
        "def dirty_post_fork(arbiter, worker):\n"
        "    _log('post_fork', worker.pid, worker.age)\n"
        "def dirty_worker_init(worker):\n"
        "    _log('worker_init', os.getpid(), sorted(worker.apps))\n"
        "def dirty_worker_exit(arbiter, worker):\n"
        "    _log('worker_exit', worker.pid)\n")
    server = serve("-c", str(conf), "--dirty-app", "dirty_apps:Model", "--dirty-workers", "1",
                   "dirty_apps:wsgi")
    _call(server, "arg=[[1]]")
    arbiter_pid = int(re.search(r"Dirty arbiter started \(pid: (\d+)\)",
                                server.logs()).group(1))  # type: ignore[union-attr]
    lines = events.read_text().splitlines()
    assert lines[0] == f"starting {arbiter_pid} {arbiter_pid}"
    # dirty_post_fork runs in the arbiter and dirty_worker_init in the new process, after
    # the same fork: either may write first (in gunicorn too).
    (post_fork,) = [line for line in lines if line.startswith("post_fork ")]
    assert post_fork.endswith(" 1")
    worker_pid = post_fork.split()[1]
    assert f"worker_init {worker_pid} ['dirty_apps:Model']" in lines
    os.kill(arbiter_pid, signal.SIGTTIN)  # one more dirty worker
    deadline = time.monotonic() + 15
    while events.read_text().count("worker_init") < 2:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    server.signal(signal.SIGTERM)
    assert server.wait(30) == 0
    text = events.read_text()
    assert text.count("worker_exit") == 2
    with pytest.raises(ProcessLookupError):
        os.kill(arbiter_pid, 0)  # the dirty arbiter is gone with the master


def test_gunicorns_own_client_talks_to_greenserve(serve) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("gunicorn.dirty")
    server = serve(*DIRTY, "dirty_apps:wsgi_gunicorn_client")
    data = requests.get(server.url + "/", timeout=30).json()
    assert data["result"]["ys"] == [6.0]


def test_asgi_async_client(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve(*DIRTY, "dirty_apps:asgi")
    data = requests.get(server.url + "/", timeout=30).json()
    assert data == {"result": {"ys": [2.0, 4.0], "pid": data["result"]["pid"]},
                    "streamed": ["tok0", "tok1"]}


def test_an_app_that_cannot_be_imported_stops_the_start() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS / "apps"), str(PACKAGE_ROOT)])}
    result = subprocess.run(
        [sys.executable, "-m", "greenserve", "-b", "127.0.0.1:0", "--dirty-app",
         "no_such_module:Thing", "--dirty-workers", "1", "dirty_apps:wsgi"],
        capture_output=True, text=True, timeout=60, env=env, cwd=str(TESTS / "apps"))
    assert result.returncode == 4
    assert "Dirty app failed to load: ModuleNotFoundError: No module named 'no_such_module'" \
        in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_spec_is_a_usage_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "greenserve", "--dirty-app", "justamodule", "--check-config",
         "x:y"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "expected module:Class or module:Class:N" in result.stderr


def test_control_socket_shows_and_resizes_the_dirty_workers(serve, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from master_helpers import wait_for
    from test_control import data

    path = tmp_path / "ctl.sock"
    server = serve("--control-socket", str(path), *DIRTY, "dirty_apps:wsgi")
    _call(server, "arg=[[1]]")
    dirty = wait_for(lambda: (d := data(path, "show", "dirty"))["enabled"] and
                     all(w["booted"] for w in d["workers"]) and d)
    assert len(dirty["workers"]) == 2
    assert all(0 <= w["last_heartbeat"] < 5 for w in dirty["workers"])  # seconds since
    apps = {app["import_path"]: app for app in dirty["apps"]}
    assert apps["dirty_apps:Big"]["worker_count"] == 1
    assert apps["dirty_apps:Big"]["current_workers"] == 1
    assert apps["dirty_apps:Model"]["current_workers"] == 2
    assert data(path, "show", "stats")["dirty_arbiter_pid"] == dirty["pid"]
    everything = data(path, "show", "all")
    assert everything["dirty_arbiter"]["pid"] == dirty["pid"]
    assert everything["dirty_worker_count"] == 2
    assert data(path, "dirty", "add", "1") == {"success": True, "previous": 2, "total": 3}
    wait_for(lambda: len(data(path, "show", "dirty")["workers"]) == 3)
    assert data(path, "dirty", "remove", "5")["total"] == 1  # never below the largest :N
    wait_for(lambda: len(data(path, "show", "dirty")["workers"]) == 1)


def test_hup_replaces_dirty_workers_after_their_calls(serve, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """HUP replaces the dirty workers; a call under way in an old one still gets its answer."""
    server = serve(*DIRTY, "dirty_apps:wsgi")
    before = {_call(server, "arg=[[1]]")["result"]["pid"] for _ in range(4)}
    results: list[dict] = []  # type: ignore[type-arg]
    started = tmp_path / "started"
    query = f"action=slow&arg=[2,\"{started}\"]"
    thread = threading.Thread(target=lambda: results.append(_call(server, query)))
    thread.start()
    wait_for(started.exists)  # HUP only once the call is in an old dirty worker
    server.signal(signal.SIGHUP)
    thread.join(30)
    assert results and results[0].get("result") in before, results
    deadline = time.monotonic() + 20
    while {_call(server, "arg=[[1]]")["result"]["pid"] for _ in range(4)} & before:
        assert time.monotonic() < deadline, "the old dirty workers still answer"
        time.sleep(0.2)


def test_the_stash_is_shared_by_dirty_and_http_workers(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve(*DIRTY, "dirty_apps:wsgi_stash")
    data = requests.get(server.url + "/", timeout=30).json()
    assert data["get"] == [42, "x"]
    assert data["missing"] == "default"
    assert data["keys"] == ["answer", "other"] and data["glob"] == ["answer"]
    assert data["info"] == {"size": 2, "table": "memo"}
    assert data["exists"] == [True, True, False]
    assert data["tables"] == ["memo"]
    assert data["in"] is True and data["len"] == 2
    assert data["gunicorn_get"] == [42, "x"]
    assert data["gunicorn_missing"] == "dflt"  # gunicorn's own arbiter raises here instead
    assert data["deleted"] == [True, False] and data["dropped"] is True
    assert data["after"] == "Table not found: memo"
