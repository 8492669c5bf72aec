"""Mixed deploys: several apps, WSGI and ASGI, mounted by path prefix in one worker.

Real server, real clients: a Flask app at ``/`` and a FastAPI app at ``/api`` (plus a bare
WSGI app at ``/api/wsgi`` for the longest-prefix rule), from the command line, a config file
and the embedding API; bad mount specs are one-line errors.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests
import websocket

import greenserve
from conftest import RawClient, ServerProcess
from greenserve.app.loading import AppLoadError

APPS = Path(__file__).resolve().parent / "apps"
MIXED = ("--mount", "/api=mount_apps:api", "--mount", "/=mount_apps:legacy",
         "--mount", "/api/wsgi=mount_apps:environ_app")


def _get(server: Any, path: str) -> requests.Response:
    return requests.get(server.url + path, timeout=10)


def _echo(url: str, message: str) -> str:
    ws = websocket.create_connection(url, timeout=10)
    try:
        ws.send(message)
        answer: str = ws.recv()
        return answer
    finally:
        ws.close()


def _check_mixed(server: Any) -> None:
    """What a Flask app at /, FastAPI at /api and a WSGI app at /api/wsgi must each see."""
    flask = _get(server, "/hello/there").json()
    assert flask == {"app": "flask", "script_name": "", "path_info": "/hello/there",
                     "url_for": "/x/y"}
    assert _get(server, "/apix").json()["path_info"] == "/apix"  # a segment, not a string
    item = _get(server, "/api/items/3").json()
    assert item["app"] == "fastapi" and item["item"] == 3
    assert (item["root_path"], item["path"]) == ("/api", "/api/items/3")
    assert item["url_for"] == f"http://127.0.0.1:{server.port}/api/items/4"
    assert item["started"].startswith("pid ")
    # Matching is on the decoded path, as routing inside the apps is.
    assert _get(server, "/%61pi/items/5").json()["item"] == 5
    assert _get(server, "/api/wsgi/x/y").text == "wsgi /api/wsgi|/x/y"
    assert _get(server, "/api/wsgi").text == "wsgi /api/wsgi|"
    assert _get(server, "/api/nothing").status_code == 404  # FastAPI's own 404


def test_a_wsgi_app_sees_no_running_loop_after_asgi_requests(serve) -> None:  # type: ignore[no-untyped-def]
    """ASGI requests' first steps run in connection greenlets with the worker's loop as
    their running loop; a WSGI request on the same connection, or one that waits while ASGI
    requests run on others, must never see it as its own. (A guard for any design that
    leaves the loop set in the thread between steps: see docs/architecture.md.)"""
    server = serve(*MIXED, "--mount", "/probe=mount_apps:loop_probe")
    client = RawClient(server.connect())  # one keep-alive connection: one greenlet
    for _ in range(2):
        client.send(b"GET /api/items/1 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert client.response()[0] == 200
        client.send(b"GET /probe?0.5 HTTP/1.1\r\nHost: x\r\n\r\n")
        # ASGI requests on other connections while the probe waits
        others = [_get(server, f"/api/items/{n}").status_code for n in range(10)]
        status, _, body = client.response()
        assert (status, others) == (200, [200] * 10)
        assert json.loads(body) == {"at_once": False, "after_a_wait": False, "spawned": False}


def test_flask_and_fastapi_in_one_worker(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve(*MIXED)
    _check_mixed(server)
    assert _get(server, "/api/openapi.json").json()["paths"].keys() >= {"/items/{item_id}"}
    ws_base = f"ws://127.0.0.1:{server.port}"
    assert _echo(ws_base + "/ws", "one") == "flask '' one"
    assert _echo(ws_base + "/api/ws", "two") == "fastapi '/api' two"


def test_preloaded_mounts_in_two_workers(serve) -> None:  # type: ignore[no-untyped-def]
    # --preload imports the apps in the master; each forked worker builds its own runtime.
    server = serve("--preload", "-w", "2", *MIXED)
    for _ in range(4):
        _check_mixed(server)


def test_paths_outside_every_mount_are_404(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve("--mount", "/api=mount_apps:api", "--mount", "/legacy/=mount_apps:legacy",
                   "--access-logfile", "-")
    response = _get(server, "/")
    assert (response.status_code, response.text) == (404, "404 Not Found\n")
    assert _get(server, "/legacyx").status_code == 404
    flask = _get(server, "/legacy/page").json()
    assert (flask["script_name"], flask["path_info"]) == ("/legacy", "/page")
    assert flask["url_for"] == "/legacy/x/y"
    assert _echo(f"ws://127.0.0.1:{server.port}/legacy/ws", "hi") == "flask '/legacy' hi"
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(f"ws://127.0.0.1:{server.port}/elsewhere", timeout=10)
    assert refused.value.status_code == 404
    assert server.has_logged('"GET / HTTP/1.1" 404')


def test_root_mount_takes_every_other_target(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve("--mount", "/=mount_apps:environ_app", "--mount", "/api=mount_apps:api")
    sock = server.connect()
    sock.sendall(b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"
                 b"GET http://x/api/items/2 HTTP/1.1\r\nHost: x\r\n\r\n")
    client = RawClient(sock)
    assert client.response()[::2] == (200, b"wsgi |*")
    status, _, body = client.response()
    assert (status, json.loads(body)["path"]) == (200, "/api/items/2")


def test_every_asgi_mount_runs_its_lifespan(serve, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    marker = tmp_path / "shutdown"
    server = serve(*MIXED, "--mount", "/v2=mount_apps:api",
                   env={"MOUNT_SHUTDOWN_MARKER": str(marker)})
    assert _get(server, "/v2/items/1").json()["started"].startswith("pid ")
    server.signal(signal.SIGTERM)
    assert server.wait() == 0
    assert marker.read_text() == "api shutdown"


def test_failing_lifespan_stops_the_worker_naming_the_mount(serve, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    marker = tmp_path / "shutdown"
    server = serve(*MIXED, "--mount", "/broken=mount_apps:broken_lifespan", wait=False,
                   env={"MOUNT_SHUTDOWN_MARKER": str(marker)})
    assert server.wait(timeout=30) == 3  # WORKER_BOOT_ERROR
    assert ("mount '/broken' (mount_apps:broken_lifespan): ASGI lifespan startup failed: "
            "no database") in server.logs()
    # /api started before /broken failed: it got its shutdown.
    assert marker.read_text() == "api shutdown"


@pytest.mark.parametrize("form", [
    'mount = {"/api": "mount_apps:api", "/": "mount_apps:legacy",\n'
    '         "/api/wsgi": "mount_apps:environ_app"}\n',
    'mount = ["/api=mount_apps:api", "/=mount_apps:legacy",\n'
    '         "/api/wsgi=mount_apps:environ_app"]\n',
], ids=["dict", "list"])
def test_config_file_forms(serve, tmp_path: Path, form: str) -> None:  # type: ignore[no-untyped-def]
    conf = tmp_path / "gunicorn.conf.py"
    conf.write_text(form)
    _check_mixed(serve("-c", str(conf)))


def test_positional_app_is_mounted_at_the_root(serve) -> None:  # type: ignore[no-untyped-def]
    # --interface applies to APP_MODULE only: the FastAPI mount is still detected as ASGI.
    server = serve("--interface", "wsgi", "mount_apps:legacy",
                   "--mount", "/api=mount_apps:api", "--mount", "/api/wsgi=mount_apps:environ_app")
    _check_mixed(server)


@pytest.fixture
def importable_apps(monkeypatch: pytest.MonkeyPatch) -> None:
    """``mount_apps`` importable here and in a child process."""
    monkeypatch.syspath_prepend(str(APPS))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(APPS), *sys.path]))


@pytest.mark.usefixtures("importable_apps")
def test_embedding_with_objects_and_specs() -> None:
    from mount_apps import api, environ_app

    mounts = {"/api": api, "/": "mount_apps:legacy", "/api/wsgi": environ_app}
    with greenserve.Server(mount=mounts) as server:  # objects: thread mode
        _check_mixed(server)


@pytest.mark.usefixtures("importable_apps")
def test_embedding_in_a_child_process() -> None:
    from mount_apps import environ_app

    # The child reads a generated config file: a function object becomes its import path.
    with greenserve.Server("mount_apps:legacy",
                           mount={"/api": "mount_apps:api", "/api/wsgi": environ_app},
                           mode="process") as server:
        _check_mixed(server)
        assert requests.get(server.url + "/api/items/1", timeout=10).json()["started"] != (
            f"pid {os.getpid()}")


@pytest.mark.usefixtures("importable_apps")
def test_embedding_refuses_two_roots() -> None:
    from mount_apps import environ_app

    with pytest.raises(AppLoadError, match="mounted at '/', but the mount setting also"):
        greenserve.Server(environ_app, mount={"/": "mount_apps:legacy"}).start()


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "GUNICORN_CMD_ARGS", "GREENSERVE_CMD_ARGS")}
    return subprocess.run([sys.executable, "-m", "greenserve", *args], cwd=APPS, env=env,
                          capture_output=True, text=True, timeout=60)


_BAD = [
    (("--mount", "/api"), 2,
     "argument --mount: expected PREFIX=APP_MODULE, got '/api'"),
    (("--mount", "api=mount_apps:api"), 2,
     "argument --mount: a mount prefix must start with '/', got 'api'"),
    (("--mount", "/api=mount_apps:api", "--mount", "/api/=mount_apps:legacy"), 2,
     "argument --mount: prefix '/api' is mounted more than once"),
    (("--mount", "/=mount_apps:api", "mount_apps:legacy"), 2,
     "APP_MODULE 'mount_apps:legacy' would be mounted at '/', but --mount also mounts '/': "
     "give one of them"),
    (("--mount", "/api=mount_apps.py"), 4,
     "mount '/api': Failed to find application, did you mean 'mount_apps:application'?"),
]
# Only a master that imports the apps (--check-config, --preload) sees these; without it
# the worker does (test_unloadable_mount_in_a_worker_names_the_mount).
_UNLOADABLE = [
    (("--mount", "/api=no_such_module:app"), 4,
     "mount '/api': Failed to find module 'no_such_module': No module named 'no_such_module'."),
    (("--mount", "/api=mount_apps:nope"), 4,
     "mount '/api': Failed to find attribute 'nope' in 'mount_apps'."),
]


@pytest.mark.parametrize(("check", "args", "code", "line"), [
    *[(True, *case) for case in _BAD + _UNLOADABLE],
    *[(False, *case) for case in _BAD],
])
def test_bad_mounts_are_one_line_errors(check: bool, args: tuple[str, ...], code: int,
                                        line: str) -> None:
    result = _run(*(("--check-config",) if check else ()), "-b", "127.0.0.1:0", *args)
    assert (result.returncode, result.stderr.splitlines()) == (code, [f"greenserve: error: {line}"])


def test_config_file_mount_errors_name_the_file(tmp_path: Path) -> None:
    conf = tmp_path / "gunicorn.conf.py"
    conf.write_text('mount = {"api": "mount_apps:api"}\n')
    result = _run("-c", str(conf), "--check-config")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"greenserve: error: {conf}: mount: a mount prefix must start with '/', got 'api'"]


def test_unloadable_mount_in_a_worker_names_the_mount(serve) -> None:  # type: ignore[no-untyped-def]
    server: ServerProcess = serve("--mount", "/api=mount_apps:nope", wait=False)
    assert server.wait(timeout=30) == 4  # APP_LOAD_ERROR
    assert "mount '/api': Failed to find attribute 'nope' in 'mount_apps'." in server.logs()
