"""``logconfig_dict``, ``--log-config-json`` and ``--log-config``, with a real server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests
from test_cli import APPS, child_env

from conftest import ServerProcess, file_text_with


def _gunicorn_style(tmp_path: Path) -> dict[str, object]:
    """What a gunicorn deploy's logconfig_dict looks like: the gunicorn.* loggers to files."""
    return {
        "version": 1,
        # (The user's handlers replace gunicorn's default ones, which the default root logger
        # names: a configuration without a root of its own fails, in gunicorn too.)
        "root": {"level": "WARNING", "handlers": []},
        "formatters": {"plain": {"format": "%(levelname)s|%(name)s|%(message)s"}},
        "handlers": {
            "errors": {"class": "logging.FileHandler", "formatter": "plain",
                       "filename": str(tmp_path / "error.log")},
            "access": {"class": "logging.FileHandler", "formatter": "plain",
                       "filename": str(tmp_path / "access.log")},
        },
        "loggers": {
            "gunicorn.error": {"level": "DEBUG", "handlers": ["errors"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": ["access"], "propagate": False},
        },
    }


def test_a_gunicorn_logconfig_dict_gets_greenserves_lines(serve, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    conf = tmp_path / "gunicorn.conf.py"
    conf.write_text(f"logconfig_dict = {_gunicorn_style(tmp_path)!r}\n")
    server: ServerProcess = serve("-c", str(conf), "wsgi_apps:routes", wait=False)
    deadline = time.monotonic() + 20
    while True:  # the "Listening at" line goes to the file, not to the pipe the fixture reads
        content = file_text_with(tmp_path / "error.log", "Booting worker")
        if "Booting worker" in content or time.monotonic() > deadline:
            break
    assert "INFO|gunicorn.error|Listening at: http://127.0.0.1:" in content
    port = content.split("Listening at: http://127.0.0.1:")[1].split()[0]
    assert requests.get(f"http://127.0.0.1:{port}/hello", timeout=5).text == "hello"
    # Access lines without --access-logfile, as gunicorn logs them with a log config.
    access = file_text_with(tmp_path / "access.log", "/hello")
    assert access.startswith("INFO|gunicorn.access|127.0.0.1 - - [")
    assert '"GET /hello HTTP/1.1" 200 5' in access
    os.kill(server.proc.pid, signal.SIGWINCH)  # the master logs a debug line about it
    errors = file_text_with(tmp_path / "error.log", "DEBUG|")
    # The configuration's level, not --log-level's (info).
    assert "DEBUG|gunicorn.error|SIGWINCH ignored: not daemonized" in errors
    assert server.proc.poll() is None


def test_log_config_json_and_greenserves_own_logger_names(serve, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config = _gunicorn_style(tmp_path)
    config["loggers"] = {"greenserve.error": {"level": "INFO", "handlers": ["errors"],
                                              "propagate": False}}
    (tmp_path / "log.json").write_text(json.dumps(config))
    serve("--log-config-json", str(tmp_path / "log.json"), "wsgi_apps:routes", wait=False)
    content = file_text_with(tmp_path / "error.log", "Booting worker", timeout=20)
    assert "INFO|greenserve.error|Booting worker with pid" in content


def test_log_config_ini_file(serve, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "ini.log"
    (tmp_path / "logging.ini").write_text(f"""\
[loggers]
keys=root,gunicorn.error

[handlers]
keys=file

[formatters]
keys=plain

[logger_root]
level=WARNING
handlers=

[logger_gunicorn.error]
level=INFO
handlers=file
propagate=0
qualname=gunicorn.error

[handler_file]
class=FileHandler
formatter=plain
args=({str(log)!r},)

[formatter_plain]
format=ini:%(levelname)s:%(message)s
""")
    serve("--log-config", str(tmp_path / "logging.ini"), "wsgi_apps:routes", wait=False)
    content = file_text_with(log, "Booting worker", timeout=20)
    assert "ini:INFO:Booting worker with pid" in content


def test_a_broken_log_config_is_one_line_and_exit_1(tmp_path: Path) -> None:
    conf = tmp_path / "gunicorn.conf.py"
    conf.write_text("logconfig_dict = {'version': 1, 'handlers': "
                    "{'x': {'class': 'no.such.Handler'}}}\n")
    missing = tmp_path / "missing.ini"
    for args in (["-c", str(conf)], ["--log-config", str(missing)]):
        result = subprocess.run(
            [sys.executable, "-m", "greenserve", "-b", "127.0.0.1:0", *args, "cfgapp_basic"],
            cwd=APPS, env=child_env(), capture_output=True, text=True, timeout=60)
        assert result.returncode == 1, result.stderr
        lines = result.stderr.splitlines()
        assert len(lines) == 1, lines
        assert lines[0].startswith("greenserve: error: ")
    assert lines[0] == f"greenserve: error: log config '{missing}' not found"


def test_a_logger_class_of_ones_own(serve, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A gunicorn Logger subclass writes the access lines (JSON here) and the error log
    (its own format), in the master and the workers; USR1 reopens its files."""
    errors, access = tmp_path / "error.log", tmp_path / "access.log"
    server: ServerProcess = serve(
        "--logger-class", "custom_logger.JsonLogger", "--error-logfile", str(errors),
        "--access-logfile", str(access), "wsgi_apps:routes", wait=False)
    content = file_text_with(errors, "Booting worker")
    assert "CUSTOM INFO Listening at: http://127.0.0.1:" in content  # the master's line
    assert "CUSTOM INFO Booting worker with pid" in content  # and a worker's
    port = content.split("Listening at: http://127.0.0.1:")[1].split()[0]
    reply = requests.get(f"http://127.0.0.1:{port}/hello?x=1", timeout=5,
                         headers={"User-Agent": "probe", "X-Trace": "t-1"})
    assert reply.text == "hello"
    line = json.loads(file_text_with(access, "/hello").splitlines()[0])
    assert line["method"] == "GET" and line["path"] == "/hello" and line["query"] == "x=1"
    assert line["status"] == "200 OK" and line["sent"] == 5 and line["agent"] == "probe"
    assert line["header"] == "t-1" and line["micros"] >= 0
    access.rename(tmp_path / "access.log.1")  # logrotate, then USR1
    os.kill(server.proc.pid, signal.SIGUSR1)
    deadline = time.monotonic() + 10
    while "/hello" not in file_text_with(access, "/hello", timeout=0.2) \
            and time.monotonic() < deadline:  # until the worker has reopened its file
        requests.get(f"http://127.0.0.1:{port}/hello", timeout=5)
    assert json.loads(file_text_with(access, "/hello").splitlines()[0])["path"] == "/hello"


def test_a_logger_class_that_fails_is_one_line_and_exit_1() -> None:
    for name, says in (("custom_logger.Nope", "cannot import it"),
                       ("custom_logger.Broken", "RuntimeError: no logs today")):
        result = subprocess.run(
            [sys.executable, "-m", "greenserve", "-b", "127.0.0.1:0", "--logger-class", name,
             "cfgapp_basic"], cwd=APPS, env=child_env(), capture_output=True, text=True,
            timeout=60)
        assert result.returncode == 1, result.stderr
        assert result.stderr.splitlines() == [
            f"greenserve: error: --logger-class {name}: " + result.stderr.split(": ", 3)[-1]
            .strip()]
        assert says in result.stderr
