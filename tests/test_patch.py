"""gevent patching: once, before the app is imported, with one warning when it came too late.

Everything that patches runs in a subprocess: patching the test runner would change it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from greenserve._patch import early_import_message, imported_early

APPS = Path(__file__).resolve().parent / "apps"
_SCRUB = ("PYTHONPATH", "GUNICORN_CMD_ARGS", "GREENSERVE_CMD_ARGS", "PYTHONWARNINGS")
# Importing any of these before patching defeats the point of patching first.
_MUST_NOT_IMPORT = ["gevent", "socket", "ssl", "threading", "asyncio", "selectors",
                    "concurrent.futures"]


def run(args: list[str], *, pythonpath: Path | None = None,
        cwd: Path = APPS) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=60)


def probe(result: subprocess.CompletedProcess[str]) -> dict[str, object]:
    (line,) = [ln for ln in result.stdout.splitlines() if ln.startswith("PROBE ")]
    data: dict[str, object] = json.loads(line.removeprefix("PROBE "))
    return data


@pytest.mark.parametrize("modules", [
    "greenserve",
    "greenserve.cli, greenserve.config, greenserve.config.docs",
    "greenserve.sockets, greenserve.app.loading, greenserve._patch",
])
def test_importing_greenserve_imports_no_networking_or_threads(modules: str) -> None:
    code = f"import sys; import {modules}; print([m for m in {_MUST_NOT_IMPORT!r} " \
           "if m in sys.modules])"
    result = run(["-c", code])
    assert (result.returncode, result.stdout.strip(), result.stderr) == (0, "[]", "")


def test_loading_the_configuration_imports_no_networking_or_threads() -> None:
    code = textwrap.dedent(f"""\
        import sys
        from greenserve.config import load
        load(["-b", "[::1]:0", "-b", "unix:/tmp/x", "--forwarded-allow-ips", "10.0.0.0/8"], {{}})
        print([m for m in {_MUST_NOT_IMPORT!r} if m in sys.modules])
    """)
    result = run(["-c", code])
    assert (result.returncode, result.stdout.strip(), result.stderr) == (0, "[]", "")


def test_the_app_sees_patched_modules_and_no_warning_is_printed() -> None:
    result = run(["-m", "greenserve", "--check-config", "cfgapp_probe"])
    assert (result.returncode, result.stderr) == (0, "")
    data = probe(result)
    for key in ("socket_patched", "ssl_patched", "threading_patched", "time_patched",
                "socket_is_gevent", "sslcontext_is_gevent", "lock_is_gevent",
                "sleep_is_gevent"):
        assert data[key] is True, key


def test_early_import_gives_one_warning_naming_the_importer(tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text("import ssl\n")
    result = run(["-m", "greenserve", "--check-config", "cfgapp_probe"], pythonpath=tmp_path)
    assert result.returncode == 0
    (line,) = result.stderr.splitlines()
    assert line.startswith("greenserve: warning: modules imported before gevent patching: "
                           "ssl, socket")
    assert "(imported by: sitecustomize)" in line
    assert "MonkeyPatchWarning" not in result.stderr


def test_early_concurrent_futures_is_reported(tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text(
        "from concurrent.futures import ThreadPoolExecutor\n")
    result = run(["-m", "greenserve", "--check-config", "cfgapp_basic"], pythonpath=tmp_path)
    assert result.returncode == 0
    (line,) = result.stderr.splitlines()
    assert "before gevent patching: concurrent.futures;" in line
    assert "(imported by: sitecustomize)" in line


def test_no_warning_when_someone_patched_first(tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text(
        "from gevent import monkey\nmonkey.patch_all()\nimport ssl\n")
    result = run(["-m", "greenserve", "--check-config", "cfgapp_probe"], pythonpath=tmp_path)
    assert (result.returncode, result.stderr) == (0, "")
    assert probe(result)["socket_is_gevent"] is True


def test_patch_is_idempotent() -> None:
    code = textwrap.dedent("""\
        from gevent import monkey
        calls = []
        original = monkey.patch_all
        def counting(*args, **kwargs):
            calls.append(1)
            return original(*args, **kwargs)
        monkey.patch_all = counting
        from greenserve import _patch
        _patch.patch()
        _patch.patch()
        import socket, gevent.socket
        print(len(calls), socket.socket is gevent.socket.socket)
    """)
    result = run(["-c", code])
    assert (result.returncode, result.stdout.strip()) == (0, "1 True")


def test_message_helpers() -> None:
    assert imported_early(["socket", "json", "ssl", "asyncio"]) == ["ssl", "socket", "asyncio"]
    message = early_import_message(["ssl"], [])
    assert message.startswith("modules imported before gevent patching: ssl; they may hold "
                              "unpatched references — ")
    assert "imported by" not in message and "\n" not in message


def test_package_api_is_lazy() -> None:
    import greenserve

    assert greenserve.__version__ == "0.1.0"
    assert set(greenserve.__all__) == {"Server", "run", "__version__"}
    with pytest.raises(AttributeError):
        greenserve.no_such_name  # noqa: B018
