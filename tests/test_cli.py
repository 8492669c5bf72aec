"""The ``greenserve`` command, run as a real subprocess."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from greenserve.build import describe

VERSION = describe("0.1.0")

APPS = Path(__file__).resolve().parent / "apps"
# Variables that would change what the child process sees.
_SCRUB = ("PYTHONPATH", "GUNICORN_CMD_ARGS", "GREENSERVE_CMD_ARGS", "WEB_CONCURRENCY", "PORT",
          "FORWARDED_ALLOW_IPS", "SENDFILE", "PYTHONWARNINGS", "NOTIFY_SOCKET", "LISTEN_FDS",
          "LISTEN_PID")


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    env.update(extra)
    return env


def greenserve(*args: str, cwd: Path = APPS, env: dict[str, str] | None = None,
               command: tuple[str, ...] = (sys.executable, "-m", "greenserve"),
               ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*command, *args], cwd=cwd, env=env if env is not None else child_env(),
        capture_output=True, text=True, timeout=60,
    )


def get_root(port: int, retry_for: float = 0.0) -> tuple[int, bytes]:
    """GET / on 127.0.0.1:port: (status, body), or (0, the error) when it failed; connection
    errors are retried for ``retry_for`` seconds (a server still starting)."""
    deadline = time.monotonic() + retry_for
    while True:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        try:
            conn.request("GET", "/")
            response = conn.getresponse()
            return response.status, response.read()
        except OSError as exc:
            if time.monotonic() >= deadline:
                return 0, repr(exc).encode()
            time.sleep(0.2)
        finally:
            conn.close()


def stop(proc: subprocess.Popen[str]) -> str:
    """SIGTERM, wait (SIGKILL after 20 s); the process's stderr."""
    proc.terminate()
    try:
        _, stderr = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, stderr = proc.communicate()
    return stderr


def test_check_config_succeeds_silently() -> None:
    result = greenserve("--check-config", "cfgapp_basic")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_console_script_finds_the_app_in_the_working_directory() -> None:
    script = Path(sys.executable).with_name("greenserve")
    if not script.exists():
        pytest.skip("console script not installed")
    result = greenserve("--check-config", "cfgapp_pkg.web:app", command=(str(script),))
    assert (result.returncode, result.stderr) == (0, "")


def test_print_config_needs_no_app_and_exits_zero() -> None:
    result = greenserve("-w", "3", "--print-config", env=child_env(PORT="5000"))
    assert result.returncode == 0 and result.stderr == ""
    settings = dict(line.split(" = ", 1) for line in result.stdout.splitlines())
    assert {k.strip(): v for k, v in settings.items()}["workers"] == "3"
    assert {k.strip(): v for k, v in settings.items()}["bind"] == "['0.0.0.0:5000']"


def test_version() -> None:
    for flag in ("-v", "--version"):
        result = greenserve(flag)
        # (the compiled build says so: tests/test_build.py)
        assert (result.returncode, result.stdout) == (0, f"greenserve (version {VERSION})\n")


def test_malformed_command_line_shows_usage_and_exits_2() -> None:
    result = greenserve("--no-such-flag", "cfgapp_basic")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "usage: greenserve [OPTIONS] [APP_MODULE]",
        "greenserve: error: unrecognized arguments: --no-such-flag",
    ]


@pytest.mark.parametrize(("args", "line"), [
    (("-w", "0", "cfgapp_basic"), "greenserve: error: argument -w/--workers: must be at least 1, "
                                  "got 0"),
    (("--bind", "[::1", "cfgapp_basic"), "greenserve: error: argument -b/--bind: '[::1': "
                                         "malformed bracketed address"),
    (("--check-config",), "greenserve: error: No application module specified."),
])
def test_bad_settings_are_one_line_and_exit_2(args: tuple[str, ...], line: str) -> None:
    result = greenserve(*args)
    assert (result.returncode, result.stderr.splitlines()) == (2, [line])


def test_bad_cmd_args_name_the_variable() -> None:
    result = greenserve("--check-config", "cfgapp_basic",
                        env=child_env(GUNICORN_CMD_ARGS="--timeout soon"))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "greenserve: error: $GUNICORN_CMD_ARGS: argument -t/--timeout: invalid int value: 'soon'"
    ]


def test_gunicorn_27_flags_all_run_without_a_warning() -> None:
    """Every gunicorn 27 setting is implemented (the pending machinery is tested in
    test_config.py with stand-ins)."""
    result = greenserve("--check-config", "--dirty-workers", "2", "--dirty-threads", "2",
                        "--http-protocols", "h2,h1", "--certfile", __file__,
                        "cfgapp_basic",
                        env=child_env(GUNICORN_CMD_ARGS="--dirty-timeout 10"))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_bind_failure_is_tried_5_times_then_one_error_line_and_exit_1() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        started = time.monotonic()
        result = greenserve("-b", f"127.0.0.1:{port}", "cfgapp_basic")
        elapsed = time.monotonic() - started
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[-1] == (
        f"greenserve: error: cannot bind 127.0.0.1:{port}: [Errno 98] Address already in use")
    assert len(lines) == 5
    assert all(line.endswith(f"[ERROR] Connection in use: 127.0.0.1:{port}")
               for line in lines[:-1]), lines
    assert elapsed >= 4  # gunicorn's 5 tries, a second apart


def test_a_port_freed_during_the_bind_retries_is_served() -> None:
    # A restart race: the old server still holds the port when the new one starts.
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "greenserve", "-b", f"127.0.0.1:{port}", "cfgapp_basic"],
        cwd=APPS, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    time.sleep(1.5)
    busy.close()
    try:
        answer = get_root(port, retry_for=20)
    finally:
        stderr = stop(proc)
    assert answer == (200, b"cfgapp_basic\n"), stderr
    assert f"[ERROR] Connection in use: 127.0.0.1:{port}" in stderr


def test_serves_requests_on_an_inherited_fd() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "greenserve", "-b", f"fd://{listener.fileno()}", "cfgapp_basic"],
        cwd=APPS, env=child_env(), pass_fds=(listener.fileno(),),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    listener.close()
    try:
        answer = get_root(port)
    finally:
        stderr = stop(proc)
    assert answer == (200, b"cfgapp_basic\n"), stderr


def test_cli_module_names_no_setting() -> None:
    """Settings are declared once, in greenserve/config; the CLI only drives them."""
    import ast

    from greenserve import cli
    from greenserve.config import SETTINGS

    tree = ast.parse(Path(cli.__file__).read_text(encoding="utf-8"))
    names = set(SETTINGS) | {f for s in SETTINGS.values() for f in s.spec.flags}
    used = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    used |= {node.value for node in ast.walk(tree)
             if isinstance(node, ast.Constant) and isinstance(node.value, str)}
    assert not used & names


def test_config_file_imports_are_early_imports(tmp_path: Path) -> None:
    """A gunicorn.conf.py runs in the master before any patching: its imports are flagged."""
    conf = tmp_path / "conf.py"
    conf.write_text("import ssl\nworkers = 1\n")
    result = greenserve("-c", str(conf), "--check-config", "cfgapp_basic")
    assert result.returncode == 0
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "modules imported before gevent patching: ssl" in lines[0]


def test_config_module_next_to_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / "deploy_conf.py").write_text("workers = 3\n")
    result = greenserve("-c", "python:deploy_conf", "--print-config", cwd=tmp_path)
    assert result.returncode == 0
    assert any(line.split() == ["workers", "=", "3"] for line in result.stdout.splitlines())
