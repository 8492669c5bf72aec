"""``--paste``: a PasteDeploy ini file's app, served by a real greenserve (as gunicorn's)."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from test_cli import greenserve

from conftest import ServerProcess, file_text_with

pytest.importorskip("paste.deploy")

APP = '''\
def make_app(global_conf, **local_conf):
    text = f"{local_conf.get('greeting', '-')} {global_conf.get('who', '-')}".encode()

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(text)))])
        return [text]

    return app
'''
INI = '''\
[app:main]
use = call:pasteapp:make_app
greeting = hello

[app:other]
use = call:pasteapp:make_app
greeting = bonjour
'''
LOGGING = '''
[loggers]
keys = root

[handlers]
keys = file

[formatters]
keys = plain

[logger_root]
level = INFO
handlers = file

[handler_file]
class = FileHandler
args = ('%(here)s/paste.log',)
formatter = plain

[formatter_plain]
format = paste-ini %(levelname)s %(message)s
'''


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pasteapp.py").write_text(APP)
    (tmp_path / "development.ini").write_text(INI)
    return tmp_path


def test_the_ini_files_app_with_global_conf(serve, project: Path) -> None:  # type: ignore[no-untyped-def]
    server: ServerProcess = serve("--chdir", str(project), "--paste",
                                  str(project / "development.ini"), "--paste-global", "who=ann")
    assert requests.get(server.url + "/", timeout=5).text == "hello ann"
    other: ServerProcess = serve("--chdir", str(project), "--paste",
                                 f"{project / 'development.ini'}#other")
    assert requests.get(other.url + "/", timeout=5).text == "bonjour -"


def test_the_ini_files_loggers_configure_logging(serve, project: Path) -> None:  # type: ignore[no-untyped-def]
    (project / "development.ini").write_text(INI + LOGGING)
    serve("--chdir", str(project), "--paste", "development.ini", wait=False)
    log = file_text_with(project / "paste.log", "Booting worker", timeout=20)
    assert "paste-ini INFO Booting worker with pid" in log


def test_a_broken_logging_section_is_one_line(project: Path) -> None:
    (project / "development.ini").write_text(INI + LOGGING.replace("'%(here)s", "%(here)r"))
    result = greenserve("--chdir", str(project), "--paste", "development.ini", "-b",
                        "127.0.0.1:0")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "greenserve: error: --paste development.ini: bad interpolation variable reference "
        "\"%(here)r/paste.log',)\""]


def test_a_missing_file_is_one_line(project: Path) -> None:
    result = greenserve("--chdir", str(project), "--paste", "missing.ini", "--check-config")
    assert result.returncode == 4, result.stderr
    assert result.stderr.splitlines()[-1].endswith(f"--paste: no such file: {project}/missing.ini")
