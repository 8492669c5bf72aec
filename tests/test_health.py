"""Worker health: heartbeat timeout, the blocked-hub monitor, request timeout, recycling."""

from __future__ import annotations

import threading
import time

import requests
from load_client import Load
from master_helpers import children, wait_for


def test_a_blocked_worker_is_aborted_with_stacks_and_replaced(serve) -> None:
    server = serve("-w", "1", "--timeout", "2", "--max-blocking-time", "0", "master_apps:app")
    (first,) = wait_for(lambda: children(server.proc.pid))
    blocked = threading.Thread(
        target=lambda: _quiet_get(server.url + "/block?s=30"), daemon=True)
    blocked.start()
    (second,) = wait_for(lambda: (c := children(server.proc.pid)) and first not in c and c,
                         timeout=20)
    assert server.has_logged("in app"), server.logs()  # the old worker's stack dump
    logs = server.logs()
    assert f"WORKER TIMEOUT (pid:{first})" in logs
    assert "was serving: GET /block?s=30" in logs  # what it was doing
    assert "aborting" in logs and "in app" in logs  # its stacks, dumped on SIGABRT
    assert requests.get(server.url + "/", timeout=10).text == str(second)


def test_blocking_code_is_reported_with_its_stack(serve) -> None:
    server = serve("-w", "1", "--max-blocking-time", "0.3", "master_apps:app")
    idle = [server.connect() for _ in range(50)]  # 50 more greenlets, parked in the hub
    for sock in idle:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    assert requests.get(server.url + "/block?s=1").text == "unblocked"
    wait_for(lambda: "The event loop was blocked for more than 0.30 s" in server.logs())
    assert server.has_logged("master_apps.py"), server.logs()
    time.sleep(0.5)
    # One report for the one blocked second (not one per 0.3 s check), and it shows the
    # blocking stack only: not a line for every parked greenlet.
    logs = server.logs()
    assert logs.count("The event loop was blocked") == 1, logs
    report = logs.split("The event loop was blocked", 1)[1]
    assert len(report.splitlines()) < 60, report


def test_request_timeout_answers_504_and_the_worker_goes_on(serve) -> None:
    server = serve("-w", "1", "--request-timeout", "0.5", "master_apps:app")
    started = time.monotonic()
    resp = requests.get(server.url + "/sleep?s=5")
    assert resp.status_code == 504
    assert time.monotonic() - started < 3
    assert requests.get(server.url + "/sleep?s=0.1").text == "slept"
    assert server.has_logged("Request timed out after 0.5 s: GET /sleep?s=5"), server.logs()


def test_max_requests_recycles_without_failed_requests(serve) -> None:
    server = serve("-w", "1", "--max-requests", "50", "master_apps:app")
    load = Load(server.url + "/", threads=4).start()
    wait_for(lambda: load.ok >= 400, timeout=60)
    load.stop()
    assert load.failures == [], load.failures[:5]
    assert len(load.pids) >= 5  # the worker was replaced several times
    assert server.has_logged("Autorestarting worker"), server.logs()


def test_max_worker_lifetime(serve) -> None:
    server = serve("-w", "1", "--max-worker-lifetime", "1", "master_apps:app")
    (first,) = wait_for(lambda: children(server.proc.pid))
    wait_for(lambda: (c := children(server.proc.pid)) and first not in c, timeout=15)
    assert server.has_logged("max worker lifetime reached"), server.logs()


def test_max_worker_memory(serve) -> None:
    server = serve("-w", "1", "--max-worker-memory", "1", "master_apps:app")
    (first,) = wait_for(lambda: children(server.proc.pid))
    wait_for(lambda: (c := children(server.proc.pid)) and first not in c, timeout=15)
    assert server.has_logged("max worker memory exceeded"), server.logs()


def _quiet_get(url: str) -> None:
    try:
        requests.get(url, timeout=30)
    except requests.RequestException:
        pass
