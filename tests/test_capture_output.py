"""``--capture-output``: what the app prints goes to the error log file (real processes)."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import requests

from conftest import ServerProcess, file_text_with

APP = '''\
import sys

def app(environ, start_response):
    word = environ["QUERY_STRING"]
    print("stdout:" + word, flush=True)
    print("stderr:" + word, file=sys.stderr, flush=True)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]
'''


def _start(serve, tmp_path: Path, *args: str) -> tuple[ServerProcess, str]:  # type: ignore[no-untyped-def]
    """A server whose logs go to a file (so not through the pipe the fixture watches)."""
    (tmp_path / "printapp.py").write_text(APP)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = serve("--chdir", str(tmp_path), "--error-logfile", str(tmp_path / "error.log"),
                   *args, "printapp:app", bind=f"127.0.0.1:{port}", wait=False)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            requests.get(url + "/?ready", timeout=5)
            return server, url
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_prints_go_to_the_error_log_and_follow_usr1(serve, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server, url = _start(serve, tmp_path, "--capture-output")
    log = tmp_path / "error.log"
    assert requests.get(url + "/?one", timeout=5).text == "ok"
    content = file_text_with(log, "stderr:one")
    assert "stdout:one" in content and "stderr:one" in content
    assert "Booting worker with pid" in content  # greenserve's own lines are there too
    # logrotate: move the file away, USR1, and the prints follow to the new file.
    log.rename(tmp_path / "error.log.1")
    os.kill(server.proc.pid, signal.SIGUSR1)
    time.sleep(1.0)
    assert requests.get(url + "/?two", timeout=5).text == "ok"
    content = file_text_with(log, "stderr:two")
    assert "stdout:two" in content and "stderr:two" in content
    assert "two" not in (tmp_path / "error.log.1").read_text()


def test_without_capture_output_prints_stay_on_stdout(serve, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server, url = _start(serve, tmp_path)
    log = tmp_path / "error.log"
    assert requests.get(url + "/?three", timeout=5).text == "ok"
    assert server.has_logged("stdout:three")  # the pipe the test reads
    assert "three" not in log.read_text()
