"""The embedding API: greenserve.run, greenserve.Server, and the pytest fixture."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

import greenserve
from greenserve.config import ConfigError
from greenserve.embed import Server

pytest_plugins = ["greenserve.testing"]
APPS = Path(__file__).resolve().parent / "apps"


def hello(environ: dict[str, object], start_response: object) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])  # type: ignore[operator]
    return [b"hello from " + str(environ["PATH_INFO"]).encode()]


def test_public_api_is_lazy() -> None:
    code = "import sys, greenserve; print('gevent' in sys.modules, greenserve.__version__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", greenserve.__version__]
    assert greenserve.Server is Server


def test_thread_mode_with_an_app_object() -> None:
    with Server(hello) as server:
        assert server.port > 0 and server.host == "127.0.0.1"
        assert requests.get(server.url + "/x").text == "hello from /x"
    with pytest.raises(requests.ConnectionError):
        requests.get(server.url + "/x", timeout=2)


def test_thread_mode_stop_waits_for_in_flight_requests() -> None:
    def slow(environ: dict[str, object], start_response: object) -> list[bytes]:
        import gevent

        gevent.sleep(0.5)  # cooperative: thread mode does not patch time.sleep
        return hello(environ, start_response)

    server = Server(slow).start()
    results: list[str] = []
    thread = threading.Thread(target=lambda: results.append(requests.get(server.url).text))
    thread.start()
    time.sleep(0.2)
    server.stop()
    thread.join(5)
    assert results == ["hello from /"]


def test_process_mode_with_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(APPS), *sys.path]))
    with Server("wsgi_apps:routes", keepalive=7, limit_request_line=100) as server:
        assert requests.get(server.url + "/hello").text == "hello"
        pid = int(requests.get(server.url + "/pid").text)
        assert pid != os.getpid()
        assert requests.get(server.url + "/" + "a" * 200).status_code == 414


def test_unknown_setting_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="keep_alive.*did you mean 'keepalive'"):
        Server(hello, keep_alive=5).start()


def test_pytest_fixture(greenserve_server) -> None:  # type: ignore[no-untyped-def]
    server = greenserve_server(hello)
    assert requests.get(server.url + "/f").text == "hello from /f"


def test_run_blocks_until_sigterm(tmp_path: Path) -> None:
    script = tmp_path / "serve.py"
    script.write_text(
        "import greenserve, wsgi_apps\n"
        "greenserve.run(wsgi_apps.routes, bind='127.0.0.1:0')\n"
        "print('returned', flush=True)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(APPS), *sys.path])}
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, text=True)
    try:
        assert proc.stderr is not None
        url = ""
        for line in proc.stderr:
            if "Listening at: " in line:
                url = line.split("Listening at: ")[1].split()[0]
                break
        assert requests.get(url + "/hello").text == "hello"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=15)
        assert proc.returncode == 0 and "returned" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
