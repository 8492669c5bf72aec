"""Interface detection: WSGI, ASGI 3 or ASGI 2, decided once at load time, ``--interface``
overriding an uncertain guess, and a one-line error for an impossible one."""

from __future__ import annotations

import functools
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
import requests

from conftest import PACKAGE_ROOT
from greenserve.app.loading import AppLoadError, detect_interface

APPS = Path(__file__).resolve().parent / "apps"


# -- shapes --------------------------------------------------------------------------------------
def wsgi_function(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    return [b""]


class WSGIClassApp:
    """PEP 3333 allows a class: the call constructs the iterable."""

    def __init__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> None:
        pass


class WSGIObject:
    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        return [b""]


async def asgi_function(scope: Any, receive: Any, send: Any) -> None:
    pass


class ASGIObject:
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        pass


class ASGISubclass(ASGIObject):
    pass


class ASGI2Class:
    def __init__(self, scope: Any) -> None:
        pass

    async def __call__(self, receive: Any, send: Any) -> None:
        pass


def asgi2_function(scope: Any) -> Callable[..., Any]:
    return asgi_function


def sync_asgi3(scope: Any, receive: Any, send: Any) -> Any:
    return asgi_function(scope, receive, send)


def anything(*args: Any) -> Any:
    return None


class Marked:
    _asgi_single_callable = True

    def __call__(self, *args: Any) -> Any:
        return None


@pytest.mark.parametrize(("app", "expected"), [
    (wsgi_function, "wsgi"),
    (WSGIClassApp, "wsgi"),
    (WSGIObject(), "wsgi"),
    (asgi_function, "asgi"),
    (ASGIObject(), "asgi"),
    (ASGISubclass(), "asgi"),
    (functools.partial(asgi_function), "asgi"),
    (ASGI2Class, "asgi2"),
    (asgi2_function, "asgi2"),
    (sync_asgi3, "asgi"),
    (anything, "wsgi"),
    (Marked(), "asgi"),
])
def test_auto_detection(app: object, expected: str) -> None:
    assert detect_interface(app) == expected


@pytest.mark.parametrize(("app", "wanted"), [
    (anything, "asgi"), (anything, "asgi2"), (anything, "wsgi"), (sync_asgi3, "asgi3"),
])
def test_an_explicit_interface_wins_over_an_uncertain_guess(app: object, wanted: str) -> None:
    assert detect_interface(app, wanted) == ("asgi" if wanted == "asgi3" else wanted)


@pytest.mark.parametrize(("app", "wanted", "found"), [
    (asgi_function, "wsgi", "asgi"),
    (ASGIObject(), "asgi2", "asgi"),
    (wsgi_function, "asgi", "wsgi"),
    (ASGI2Class, "asgi", "asgi2"),
    (WSGIObject(), "asgi2", "wsgi"),
])
def test_an_impossible_interface_is_refused(app: object, wanted: str, found: str) -> None:
    with pytest.raises(AppLoadError) as info:
        detect_interface(app, wanted)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"--interface {wanted} does not fit the application")
    assert message.endswith(f"use --interface {found} or auto.")


# -- through the command line and a real server ----------------------------------------------
def _greenserve(*args: str) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": f"{APPS}:{PACKAGE_ROOT}", "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "greenserve", *args], cwd=APPS, env=env,
                          capture_output=True, text=True, timeout=60)


def test_wrong_interface_is_one_line_at_check_config() -> None:
    done = _greenserve("--check-config", "--interface", "wsgi", "asgi_apps:app")
    assert done.returncode == 4
    assert done.stderr.strip().splitlines() == [
        "greenserve: error: --interface wsgi does not fit the application: it is an ASGI 3 "
        "application (async def); use --interface asgi or auto."]


def test_wrong_interface_in_a_worker_is_an_app_load_error(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve("--interface", "asgi", "wsgi_apps:routes", wait=False)
    assert server.wait(timeout=30) == 4
    logs = server.logs()
    assert "--interface asgi does not fit the application: it is a WSGI application" in logs
    assert "Shutting down: App failed to load." in logs
    assert "Traceback" not in logs


def test_an_uncertain_guess_is_a_warning_that_names_the_option(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve("asgi_apps:untyped")
    assert server.has_logged("[WARNING] asgi_apps:untyped: its signature does not say whether "
                             "it is WSGI or ASGI (it can be called with 1, 2 or 3 positional "
                             "arguments); serving it as WSGI. Pass --interface asgi (or asgi2) "
                             "if it is an ASGI app.")
    assert requests.get(server.url + "/x", timeout=10).status_code == 500  # served as WSGI


def test_an_uncertain_guess_at_check_config_is_a_warning_line() -> None:
    done = _greenserve("--check-config", "asgi_apps:untyped")
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines() == [
        "greenserve: warning: asgi_apps:untyped: its signature does not say whether it is WSGI "
        "or ASGI (it can be called with 1, 2 or 3 positional arguments); serving it as WSGI. "
        "Pass --interface asgi (or asgi2) if it is an ASGI app."]


def test_an_uncertain_app_is_served_as_asgi_when_told(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve("--interface", "asgi", "asgi_apps:untyped")
    assert requests.get(server.url + "/x", timeout=10).json()["type"] == "http"
    assert "its signature does not say" not in server.logs()


def test_asgi2_app_is_served(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve("asgi_apps:DoubleCallable")
    assert requests.get(server.url + "/two", timeout=10).json() == {"asgi2": True,
                                                                     "path": "/two"}


@pytest.mark.parametrize("flag", ["auto", "wsgi"])
def test_wsgi_apps_stay_wsgi(serve, flag: str) -> None:  # type: ignore[no-untyped-def]
    server = serve("--interface", flag, "wsgi_apps:routes")
    assert requests.get(server.url + "/hello", timeout=10).text == "hello"


def test_asgi3_alias(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve("--interface", "asgi3", "asgi_apps:app")
    assert requests.get(server.url + "/x", timeout=10).json()["type"] == "http"


def test_embedded_server_serves_an_asgi_app_object() -> None:
    """``greenserve.Server(app)`` in thread mode (no patching): the loop runs in the server's
    thread, and lifespan state reaches the requests."""
    import greenserve

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            scope["state"]["ready"] = "yes"
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = scope["state"]["ready"].encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    with greenserve.Server(app, mode="thread") as server:
        assert requests.get(server.url + "/", timeout=10).text == "yes"
