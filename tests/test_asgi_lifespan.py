"""The ASGI lifespan through a real server: startup before accepting, state, failures,
shutdown on a graceful stop, and ``--asgi-lifespan auto|on|off``."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import requests

from conftest import ServerProcess

WORKER_BOOT_ERROR = 3


def _boot_failure(server: ServerProcess) -> str:
    """Wait for the master to give up; returns its logs."""
    rc = server.wait(timeout=30)
    logs = server.logs()
    assert rc == WORKER_BOOT_ERROR, logs
    assert "Shutting down: Worker failed to boot." in logs
    return logs


def test_startup_state_is_shared_into_each_scope(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve("asgi_apps:app")
    first = requests.get(server.url + "/scope", timeout=10).json()
    second = requests.get(server.url + "/scope", timeout=10).json()
    assert set(first["state"]) == {"started_at", "pid"}
    assert first["state"] == second["state"]


def test_each_request_gets_a_copy_of_the_state(serve) -> None:  # type: ignore[no-untyped-def]
    """A shallow copy (the spec's word): what one request sets in its ``state`` is not seen
    by the next."""
    server = serve("asgi_apps:app")
    with requests.Session() as session:  # one connection: the same worker
        before = session.get(server.url + "/state?scribble=1", timeout=10).json()["state"]
        after = session.get(server.url + "/state", timeout=10).json()["state"]
    assert set(before) == {"started_at", "pid"}
    assert after == before


def test_a_request_sent_during_a_slow_startup_waits_for_it(serve) -> None:  # type: ignore[no-untyped-def]
    """The worker accepts only once startup is complete: a request sent as soon as the master
    listens (the worker is still booting, then starting up for 1.5 s) sees the full state."""
    server = serve("asgi_apps:app", env={"ASGI_STARTUP_DELAY": "1.5"})
    sent = time.time()
    got = requests.get(server.url + "/state", timeout=30).json()
    assert set(got["state"]) == {"started_at", "pid"}
    assert sent < got["state"]["started_at"] <= got["now"]


def test_shutdown_runs_on_graceful_stop(serve, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    marker = tmp_path / "shutdown"
    server = serve("asgi_apps:app", env={"ASGI_SHUTDOWN_MARKER": str(marker)})
    assert requests.get(server.url + "/scope", timeout=10).status_code == 200
    server.signal(signal.SIGTERM)
    assert server.wait() == 0
    assert marker.read_text() == "shutdown complete"


def test_lifespan_off_does_not_run_it(serve, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    marker = tmp_path / "shutdown"
    server = serve("asgi_apps:app", "--asgi-lifespan", "off",
                   env={"ASGI_SHUTDOWN_MARKER": str(marker)})
    assert requests.get(server.url + "/scope", timeout=10).json()["state"] == {}
    server.signal(signal.SIGTERM)
    assert server.wait() == 0
    assert not marker.exists()


def test_startup_failed_stops_the_worker_as_a_boot_failure(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve("asgi_apps:lifespan_failed", wait=False)
    logs = _boot_failure(server)
    assert "ASGI lifespan startup failed: database unreachable" in logs


def test_app_without_lifespan_support_in_auto_mode(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve("asgi_apps:lifespan_raises")
    assert requests.get(server.url + "/", timeout=10).json() == {
        "lifespan_raises": True, "state": []}
    assert server.has_logged("ASGI 'lifespan' protocol appears unsupported"), server.logs()


def test_app_without_lifespan_support_in_on_mode_fails(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve("asgi_apps:lifespan_raises", "--asgi-lifespan", "on", wait=False)
    logs = _boot_failure(server)
    assert "ASGI lifespan startup failed: ValueError: cannot handle 'lifespan'" in logs


def test_startup_that_never_finishes_is_bounded_by_timeout(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve("asgi_apps:lifespan_slow", "--timeout", "2", wait=False)
    logs = _boot_failure(server)
    assert "ASGI lifespan startup did not complete within 2 s (--timeout)" in logs
    assert "WORKER TIMEOUT" not in logs  # the heartbeat kept beating meanwhile
