"""Application loading: ``module[:expression]`` parsing and every load error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from greenserve.app.loading import AppLoadError, AppRef, import_app, parse_app_uri

APPS = Path(__file__).resolve().parent / "apps"
_SCRUB = ("PYTHONPATH", "GUNICORN_CMD_ARGS", "GREENSERVE_CMD_ARGS", "WEB_CONCURRENCY", "PORT",
          "PYTHONWARNINGS")


def greenserve(*args: str, cwd: Path = APPS) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    return subprocess.run([sys.executable, "-m", "greenserve", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


# -- parsing (no imports) ----------------------------------------------------------------------
@pytest.mark.parametrize(("uri", "expected"), [
    ("app", AppRef("app", ("application",))),
    ("pkg.mod:app", AppRef("pkg.mod", ("app",), expression="app")),
    ("mod:obj.app", AppRef("mod", ("obj", "app"), expression="obj.app")),
    ("mod:create()", AppRef("mod", ("create",), (), {}, "create()")),
    ('mod:create("x", debug=True)',
     AppRef("mod", ("create",), ("x",), {"debug": True}, 'create("x", debug=True)')),
    ("mod:f(1, [2, 3], {'a': None}, k=-1.5)",
     AppRef("mod", ("f",), (1, [2, 3], {"a": None}), {"k": -1.5},
            "f(1, [2, 3], {'a': None}, k=-1.5)")),
    (" mod : app ", AppRef("mod", ("app",), expression="app")),
])
def test_parse_app_uri(uri: str, expected: AppRef) -> None:
    assert parse_app_uri(uri) == expected


@pytest.mark.parametrize(("uri", "message"), [
    ("app.py", "Failed to find application, did you mean 'app:application'?"),
    ("path/to/app.py:create()", "Failed to find application, did you mean "
                                "'path.to.app:create()'?"),
    ("./app.py", "did you mean 'app:application'?"),
    ("mod:create(", "Failed to parse 'create(' as an attribute name or function call."),
    ("mod:1 + 2", "Failed to parse '1 + 2' as an attribute name or function call."),
    ("mod:a[0]", "Failed to parse 'a[0]' as an attribute name or function call."),
    ("mod:create(x)", "Failed to parse arguments as literal values: 'create(x)'."),
    ("mod:create(*args)", "Failed to parse arguments as literal values: 'create(*args)'."),
    ("mod:create(**kw)", "Failed to parse arguments as literal values: 'create(**kw)'."),
    ("mod:create(open('f'))", "Failed to parse arguments as literal values"),
    ("mod:factories[0]()", "Function reference must be a simple name: 'factories[0]()'."),
    (":app", "'' is not a valid module name"),
    ("my-app:app", "'my-app' is not a valid module name"),
])
def test_parse_app_uri_errors(uri: str, message: str) -> None:
    with pytest.raises(AppLoadError) as info:
        parse_app_uri(uri)
    assert message in str(info.value) and "\n" not in str(info.value)


# -- importing, in this process (harmless fixture modules only) -------------------------------
@pytest.fixture
def apps_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(APPS))


@pytest.mark.usefixtures("apps_on_path")
def test_import_app_forms() -> None:
    import cfgapp_basic  # type: ignore[import-not-found]

    assert import_app("cfgapp_basic") is cfgapp_basic.application
    assert import_app("cfgapp_basic:application") is cfgapp_basic.application
    assert import_app("cfgapp_basic:holder.app") is cfgapp_basic.application
    made = import_app('cfgapp_basic:create_app("prod", debug=True)')
    assert made.created_with == ("prod", True)  # type: ignore[attr-defined]
    assert import_app("cfgapp_basic:create_app()").created_with == (  # type: ignore[attr-defined]
        "default", False)
    assert import_app("cfgapp_pkg.web:app").__module__ == "cfgapp_pkg.web"


@pytest.mark.usefixtures("apps_on_path")
@pytest.mark.parametrize(("uri", "message"), [
    ("cfgapp_basic:missing", "Failed to find attribute 'missing' in 'cfgapp_basic'."),
    ("cfgapp_basic:holder.missing", "Failed to find attribute 'holder.missing' in "
                                    "'cfgapp_basic'."),
    ("cfgapp_basic:not_callable", "Application object must be callable: "
                                  "cfgapp_basic:not_callable is int."),
    ("cfgapp_basic:nothing", "Failed to find application object: 'nothing'."),
    ("cfgapp_basic:none_factory()", "Failed to find application object: 'none_factory()'."),
    ("cfgapp_basic:not_callable()", "Application factory 'not_callable' in 'cfgapp_basic' is "
                                    "not callable."),
    ("cfgapp_basic:create_app(1, 2, 3)", "Failed to call 'create_app(1, 2, 3)': too many "
                                         "positional arguments."),
    ("cfgapp_basic:create_app(color=1)", "Failed to call 'create_app(color=1)': got an "
                                         "unexpected keyword argument 'color'."),
    ("cfgapp_no_such_module", "Failed to find module 'cfgapp_no_such_module': No module named "
                              "'cfgapp_no_such_module'."),
    ("cfgapp_pkg.nope:app", "Failed to find module 'cfgapp_pkg.nope': No module named "
                            "'cfgapp_pkg.nope'."),
    ("cfgapp_nopkg.web:app", "Failed to find module 'cfgapp_nopkg.web': No module named "
                             "'cfgapp_nopkg'."),
])
def test_import_app_errors(uri: str, message: str) -> None:
    with pytest.raises(AppLoadError) as info:
        import_app(uri)
    assert str(info.value) == message
    assert info.value.user_error is None


@pytest.mark.usefixtures("apps_on_path")
def test_factory_that_raises_is_the_users_bug() -> None:
    with pytest.raises(AppLoadError) as info:
        import_app("cfgapp_basic:broken_factory()")
    assert str(info.value) == ("Failed to call 'broken_factory()': RuntimeError: factory "
                               "exploded")
    assert isinstance(info.value.user_error, RuntimeError)


# -- through the command line ------------------------------------------------------------------
@pytest.mark.parametrize(("spec", "line"), [
    ("cfgapp_basic:missing", "Failed to find attribute 'missing' in 'cfgapp_basic'."),
    ("cfgapp_basic:not_callable", "Application object must be callable: "
                                  "cfgapp_basic:not_callable is int."),
    ("cfgapp_basic:create_app(1, 2, 3)", "Failed to call 'create_app(1, 2, 3)': too many "
                                         "positional arguments."),
    ("cfgapp_basic:create_app(x)", "Failed to parse arguments as literal values: "
                                   "'create_app(x)'."),
    ("cfgapp_basic:create_app(", "Failed to parse 'create_app(' as an attribute name or "
                                 "function call."),
    ("cfgapp_basic.py", "Failed to find application, did you mean 'cfgapp_basic:application'?"),
    ("cfgapp_no_such_module:app", "Failed to find module 'cfgapp_no_such_module': No module "
                                  "named 'cfgapp_no_such_module'."),
])
def test_load_errors_are_one_line_exit_4(spec: str, line: str) -> None:
    result = greenserve("--check-config", spec)
    assert result.returncode == 4
    assert result.stderr.splitlines() == [f"greenserve: error: {line}"]


@pytest.mark.parametrize(("spec", "line", "frame"), [
    ("cfgapp_boom", "Failed to import 'cfgapp_boom': RuntimeError: cfgapp_boom exploded at "
                    "import", "cfgapp_boom.py"),
    ("cfgapp_badimport", "Failed to import 'cfgapp_badimport': ModuleNotFoundError: No module "
                         "named 'cfgapp_no_such_dependency'", "cfgapp_badimport.py"),
    ("cfgapp_basic:broken_factory()", "Failed to call 'broken_factory()': RuntimeError: "
                                      "factory exploded", "cfgapp_basic.py"),
])
def test_errors_in_user_code_show_their_traceback(spec: str, line: str, frame: str) -> None:
    result = greenserve("--check-config", spec)
    lines = result.stderr.splitlines()
    assert result.returncode == 4
    assert lines[0] == "Traceback (most recent call last):"
    assert lines[-1] == f"greenserve: error: {line}"
    # The user's frames are shown; greenserve's and importlib's are trimmed.
    assert frame in lines[1]
    assert not any("greenserve/app" in ln or "importlib" in ln for ln in lines)


def test_chdir_env_and_pythonpath_apply_before_import(tmp_path: Path) -> None:
    result = greenserve("--check-config", "--chdir", str(APPS), "-e", "CFGAPP_PROBE_ENV=hello",
                        "cfgapp_probe", cwd=tmp_path)
    assert (result.returncode, result.stderr) == (0, "")
    probe = json.loads(result.stdout.removeprefix("PROBE "))
    assert probe["env"] == "hello" and probe["cwd"] == str(APPS)
    result = greenserve("--check-config", "--pythonpath", f"{tmp_path},{APPS}",
                        "cfgapp_pkg.web:app", cwd=tmp_path)
    assert (result.returncode, result.stderr) == (0, "")


def test_a_relative_chdir_is_taken_from_where_greenserve_starts(serve, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # gunicorn makes --chdir absolute before it changes directory; the app directory put on
    # sys.path (in the master and in each worker) must be that one, not DIR/DIR.
    result = greenserve("--check-config", "--chdir", "apps", "cfgapp_probe", cwd=APPS.parent)
    assert (result.returncode, result.stderr) == (0, "")
    assert json.loads(result.stdout.removeprefix("PROBE "))["cwd"] == str(APPS)
    (tmp_path / "relchdir_app.py").write_text(
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [b'found']\n")
    relative = os.path.relpath(tmp_path, APPS)  # test servers start in tests/apps
    server = serve("--chdir", relative, "relchdir_app:app")
    assert requests.get(server.url + "/", timeout=10).text == "found"


def test_chdir_that_does_not_exist(tmp_path: Path) -> None:
    result = greenserve("--check-config", "--chdir", str(tmp_path / "nope"), "cfgapp_basic")
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("greenserve: error: cannot prepare the process: ")
