"""``--reload``: a real server picks up code changes (development), as gunicorn's does."""

from __future__ import annotations

import os
import time
from pathlib import Path

import requests

from conftest import ServerProcess
from greenserve.autoreload import CodeWatcher

APP = '''\
import os
VERSION = {version!r}

def app(environ, start_response):
    body = f"{{VERSION}} {{os.getpid()}}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
'''


def _write(path: Path, text: str) -> None:
    path.write_text(text)
    later = time.time() + 2  # a new modification time even on a coarse file system
    os.utime(path, (later, later))


def _until(server: ServerProcess, want: str, timeout: float = 20) -> requests.Response:
    deadline = time.monotonic() + timeout
    while True:
        try:
            response = requests.get(server.url + "/", timeout=5)
            if want in response.text or time.monotonic() > deadline:
                return response
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.2)


def test_a_changed_module_is_served_by_a_new_worker(serve, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _write(tmp_path / "reloadapp.py", APP.format(version="v1"))
    server: ServerProcess = serve("--reload", "--chdir", str(tmp_path), "reloadapp:app")
    first = requests.get(server.url + "/", timeout=5).text.split()
    assert first[0] == "v1"
    _write(tmp_path / "reloadapp.py", APP.format(version="v2"))
    second = _until(server, "v2").text.split()
    assert second[0] == "v2"
    assert second[1] != first[1]  # another worker process
    assert server.has_logged(f"Worker reloading: {tmp_path / 'reloadapp.py'} modified")


def test_a_syntax_error_is_served_until_the_file_is_fixed(serve, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    broken = tmp_path / "reloadapp.py"
    _write(broken, "def app(:\n")
    server: ServerProcess = serve("--reload", "--chdir", str(tmp_path), "reloadapp:app")
    response = requests.get(server.url + "/", timeout=5)
    assert response.status_code == 500
    assert "SyntaxError" in response.text
    _write(broken, APP.format(version="fixed"))
    response = _until(server, "fixed")
    assert response.status_code == 200
    assert response.text.startswith("fixed ")


def test_an_extra_file_pattern_restarts_the_worker(serve, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _write(tmp_path / "reloadapp.py", APP.format(version="v1"))
    (tmp_path / "templates").mkdir()
    server: ServerProcess = serve("--reload", "--chdir", str(tmp_path),
                                  "--reload-extra-file", str(tmp_path / "templates/**/*.html"),
                                  "reloadapp:app")
    pid = requests.get(server.url + "/", timeout=5).text.split()[1]
    # A file created after the start matches the pattern too: seen, then watched.
    # (Written whole, then renamed: a check between a plain create and its write would see
    # the write as a change.)
    (tmp_path / "page.tmp").write_text("<p>hi</p>")
    os.replace(tmp_path / "page.tmp", tmp_path / "templates" / "page.html")
    time.sleep(2.5)
    assert requests.get(server.url + "/", timeout=5).text.split()[1] == pid, server.logs()
    _write(tmp_path / "templates" / "page.html", "<p>hello</p>")
    assert server.has_logged(f"Worker reloading: {tmp_path / 'templates/page.html'} modified")
    deadline = time.monotonic() + 20
    now = pid
    while now == pid and time.monotonic() < deadline:
        try:
            now = requests.get(server.url + "/", timeout=5).text.split()[1]
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    assert now != pid


def test_without_reload_nothing_is_watched(serve, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _write(tmp_path / "reloadapp.py", APP.format(version="v1"))
    server: ServerProcess = serve("--chdir", str(tmp_path), "reloadapp:app")
    pid = requests.get(server.url + "/", timeout=5).text.split()[1]
    _write(tmp_path / "reloadapp.py", APP.format(version="v2"))
    time.sleep(2.5)
    assert requests.get(server.url + "/", timeout=5).text == f"v1 {pid}"


def test_watcher_sees_a_new_modification_time_once(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    _write(path, "a")
    watcher = CodeWatcher(files=[str(path)])
    assert watcher.changed() is None  # first look: the times as they are
    assert watcher.changed() is None
    _write(path, "b")
    assert watcher.changed() == str(path)
