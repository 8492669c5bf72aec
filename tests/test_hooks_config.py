"""Server hooks: declared as config-file-only settings, validated like gunicorn; hook objects."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from greenserve.config import SETTINGS, Config, ConfigError, build_parser, from_mapping, load
from greenserve.config.hooks import DefaultHooks, PostRequestHook, arity, is_default
from greenserve.hooks import (
    RequestInfo,
    ResponseInfo,
    call_post_request,
    request_hooks_enabled,
    safe_call,
)
from greenserve.protocol.events import Headers, Request
from greenserve.streams import ConnectionInfo

APPS = Path(__file__).resolve().parent / "apps"

#: every gunicorn server hook with its parameters, in gunicorn's order, plus post_patch
HOOKS = {
    "on_starting": ("server",),
    "on_reload": ("server",),
    "when_ready": ("server",),
    "pre_fork": ("server", "worker"),
    "post_fork": ("server", "worker"),
    "post_patch": ("worker",),
    "post_worker_init": ("worker",),
    "worker_int": ("worker",),
    "worker_abort": ("worker",),
    "pre_exec": ("server",),
    "pre_request": ("worker", "req"),
    "post_request": ("worker", "req", "environ", "resp"),
    "child_exit": ("server", "worker"),
    "worker_exit": ("server", "worker"),
    "nworkers_changed": ("server", "new_value", "old_value"),
    "on_exit": ("server",),
    "ssl_context": ("config", "default_ssl_context_factory"),
}


def run_greenserve(*args: str, cwd: Path = APPS, **env: str) -> subprocess.CompletedProcess[str]:
    scrub = ("PYTHONPATH", "GUNICORN_CMD_ARGS", "GREENSERVE_CMD_ARGS", "PYTHONWARNINGS")
    child = {k: v for k, v in os.environ.items() if k not in scrub}
    child.update(env)
    return subprocess.run([sys.executable, "-m", "greenserve", *args], cwd=cwd, env=child,
                          capture_output=True, text=True, timeout=60)


# -- declaration -------------------------------------------------------------------------------
def test_every_hook_is_a_config_file_only_setting_in_gunicorns_order() -> None:
    hooks = [name for name, s in SETTINGS.items() if s.section == "Server Hooks"]
    assert hooks == list(HOOKS)
    for name in HOOKS:
        spec = SETTINGS[name].spec
        assert (spec.flags, spec.kind, spec.default_doc) == ((), "file", "no-op"), name
        assert spec.gunicorn == (name != "post_patch"), name
    options = {o for action in build_parser()._actions for o in action.option_strings}
    assert not any("on-starting" in o or "post-fork" in o or "hook" in o for o in options)


def test_hooks_cannot_be_set_from_the_command_line() -> None:
    with pytest.raises(ConfigError, match="unrecognized arguments: --post-fork"):
        load(["--post-fork", "x.y"], {})


@pytest.mark.parametrize("name", list(HOOKS))
def test_defaults_are_no_ops_of_the_right_arity(name: str) -> None:
    default = getattr(Config(), name)
    assert is_default(default)
    args: list[Any] = [object()] * len(HOOKS[name])
    if name == "ssl_context":
        sentinel = object()
        assert default(object(), lambda: sentinel) is sentinel
    else:
        assert default(*args) is None
    func = default.func if isinstance(default, PostRequestHook) else default
    assert arity(func) == len(HOOKS[name])
    assert SETTINGS[name].spec.convert(default) is default


def test_hook_docs_show_the_signature() -> None:
    for name, params in HOOKS.items():
        spec = SETTINGS[name].spec
        signature = f"{name}({', '.join(params)})"
        assert spec.help.startswith(f"`{signature}`:"), name
        assert f"def {signature}:" in spec.desc, name


# -- validation --------------------------------------------------------------------------------
def _hook_conf(tmp_path: Path, body: str) -> Path:
    conf = tmp_path / "conf.py"
    conf.write_text(textwrap.dedent(body))
    return conf


def test_config_file_hooks_are_loaded_without_warnings(tmp_path: Path) -> None:
    conf = _hook_conf(tmp_path, """\
        def on_starting(server):
            pass

        def post_fork(server, worker):
            pass

        def nworkers_changed(server, new_value, old_value=None):
            pass

        def post_request(worker, req, environ):
            pass

        def ssl_context(conf, factory):
            return factory()
        """)
    warnings: list[str] = []
    cfg = load(["-c", str(conf)], {}, warn=warnings.append)
    assert warnings == []
    assert cfg.on_starting.__name__ == "on_starting" and not is_default(cfg.on_starting)
    assert isinstance(cfg.post_request, PostRequestHook) and cfg.post_request.arity == 3
    assert is_default(cfg.pre_request) and not request_hooks_enabled(Config())
    assert request_hooks_enabled(cfg)


@pytest.mark.parametrize(("body", "line"), [
    ("def post_fork(worker):\n    pass\n",
     "post_fork: must be a callable taking exactly 2 positional arguments (server, worker), "
     "but post_fork() takes 1"),
    ("def on_starting(server, extra=None):\n    pass\n",  # gunicorn counts defaults too
     "on_starting: must be a callable taking exactly 1 positional argument (server), "
     "but on_starting() takes 2"),
    ("def when_ready(*args):\n    pass\n",
     "when_ready: must be a callable taking exactly 1 positional argument (server), "
     "but when_ready() takes 0"),
    ("def post_request(worker):\n    pass\n",
     "post_request: must be a callable taking 2, 3 or 4 positional arguments "
     "(worker, req[, environ[, resp]]), but post_request() takes 1"),
    ("pre_request = 42\n",
     "pre_request: expected a callable or a 'module.function' string, got 42"),
    ("on_exit = 'no_such_module_xyz.func'\n",
     "on_exit: cannot import 'no_such_module_xyz': ModuleNotFoundError: No module named "
     "'no_such_module_xyz'"),
    ("on_exit = 'os.path.no_such_function'\n",
     "on_exit: cannot load 'no_such_function' from 'os.path'"),
    ("on_exit = 'justaname'\n",
     "on_exit: 'justaname' is not an import string (module.function)"),
])
def test_bad_hooks_are_one_line_errors(tmp_path: Path, body: str, line: str) -> None:
    conf = _hook_conf(tmp_path, body)
    result = run_greenserve("-c", str(conf), "--check-config", "cfgapp_basic")
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [f"greenserve: error: {conf}: {line}"]


def test_check_config_accepts_good_hooks(tmp_path: Path) -> None:
    conf = _hook_conf(tmp_path, """\
        def post_fork(server, worker):
            pass

        def post_patch(worker):
            pass

        def post_request(worker, req):
            pass

        worker_exit = "hookmod.worker_exit"
        """)
    (tmp_path / "hookmod.py").write_text("def worker_exit(server, worker):\n    pass\n")
    result = run_greenserve("-c", str(conf), "--check-config", "cfgapp_basic",
                            PYTHONPATH=str(tmp_path))
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_dotted_path_hooks_resolve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "myhooks.py").write_text(textwrap.dedent("""\
        class Hooks:
            @staticmethod
            def when_ready(server):
                return "ready"

        def post_request(worker, req, environ, resp):
            return "done"
        """))
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = from_mapping({
        "on_starting": "os.path.isdir",             # gunicorn's module.function form
        "when_ready": "myhooks:Hooks.when_ready",   # also module:attribute.path
        "post_request": "myhooks.post_request",
    }, warn=pytest.fail)
    assert cfg.on_starting is os.path.isdir
    assert cfg.when_ready(None) == "ready"
    assert isinstance(cfg.post_request, PostRequestHook) and cfg.post_request.arity == 4
    assert cfg.post_request(1, 2, 3, 4) == "done"


def test_imported_callables_named_like_hooks_are_hooks(tmp_path: Path) -> None:
    # `from mypkg.hooks import post_fork` in a config file must set the hook (gunicorn does),
    # even though imported helpers with other names are skipped.
    (tmp_path / "imported_hooks.py").write_text("def post_fork(server, worker):\n    pass\n")
    conf = _hook_conf(tmp_path, "from imported_hooks import post_fork\n")
    sys.path.insert(0, str(tmp_path))
    try:
        cfg = load(["-c", str(conf)], {}, warn=pytest.fail)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("imported_hooks", None)
    assert cfg.post_fork.__module__ == "imported_hooks"


def test_callable_objects_and_bound_methods_count_without_self() -> None:
    class Counter:
        def __init__(self) -> None:
            self.calls = 0

        def __call__(self, server: object) -> None:
            self.calls += 1

        def child_exit(self, server: object, worker: object) -> None:
            self.calls += 1

    counter = Counter()
    cfg = from_mapping({"on_reload": counter, "child_exit": counter.child_exit})
    cfg.on_reload(None)
    cfg.child_exit(None, None)
    assert counter.calls == 2


# -- post_request arity --------------------------------------------------------------------------
def test_post_request_gets_as_many_arguments_as_it_takes() -> None:
    seen: list[tuple[object, ...]] = []

    def two(worker: object, req: object) -> None:
        seen.append((worker, req))

    def three(worker: object, req: object, environ: object) -> None:
        seen.append((worker, req, environ))

    def four(worker: object, req: object, environ: object, resp: object) -> None:
        seen.append((worker, req, environ, resp))

    for func in (two, three, four):
        call_post_request(func, "w", "r", "e", "p")  # bare callables are measured
        call_post_request(from_mapping({"post_request": func}).post_request, "w", "r", "e", "p")
    assert seen == [("w", "r")] * 2 + [("w", "r", "e")] * 2 + [("w", "r", "e", "p")] * 2
    with pytest.raises(ValueError, match="takes 5"):
        call_post_request(lambda a, b, c, d, e: None, "w", "r", "e", "p")


def test_post_request_hook_repr_is_the_users_callable() -> None:
    def post_request(worker: object, req: object) -> None:
        pass

    assert repr(PostRequestHook.wrap(post_request)) == repr(post_request)


# -- safe_call -----------------------------------------------------------------------------------
def test_safe_call_logs_the_traceback_and_carries_on(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("test.hooks")

    def post_request(worker: object, req: object) -> None:
        raise RuntimeError("hook broke")

    with caplog.at_level(logging.ERROR, logger="test.hooks"):
        assert safe_call(log, "post_request", call_post_request, post_request, 1, 2, 3, 4) is None
    [record] = caplog.records
    assert record.getMessage() == "Exception in post_request hook"
    assert record.exc_info is not None and "hook broke" in caplog.text
    assert "Traceback" in caplog.text
    assert safe_call(log, "on_exit", lambda server: "ok", None) == "ok"


def test_safe_call_lets_system_exit_through() -> None:
    def on_exit(server: object) -> None:
        raise SystemExit(3)

    with pytest.raises(SystemExit):
        safe_call(logging.getLogger("test.hooks"), "on_exit", on_exit, None)


# -- RequestInfo / ResponseInfo ------------------------------------------------------------------
def test_request_info_has_gunicorns_attributes() -> None:
    request = Request(
        method=b"POST", target=b"/a%20b/c?x=1&y=2#frag", http_version=b"1.1",
        headers=[(b"Host", b"example.com"), (b"X_Custom", b"under"),
                 (b"content-type", b"text/plain")],
        keep_alive=True,
    )
    info = ConnectionInfo(client=("10.0.0.7", 51234), server=("127.0.0.1", 8000))
    req = RequestInfo.from_request(request, info)
    assert (req.method, req.uri, req.path, req.query, req.fragment) == (
        "POST", "/a%20b/c?x=1&y=2#frag", "/a%20b/c", "x=1&y=2", "frag")
    assert req.version == (1, 1) and req.scheme == "http"
    assert req.headers == [("HOST", "example.com"), ("CONTENT-TYPE", "text/plain")]
    assert req.remote_addr == req.peer_addr == ("10.0.0.7", 51234)
    assert req.req_number == 1

    kept = RequestInfo.from_request(request, info, header_map="dangerous", scheme="https",
                                    req_number=3)
    assert ("X_CUSTOM", "under") in kept.headers
    assert kept.scheme == "https" and kept.req_number == 3


@pytest.mark.parametrize(("target", "path", "query"), [
    (b"//double/slash?q", "//double/slash", "q"),
    (b"http://example.com/abs?z=9", "/abs", "z=9"),
    (b"*", "*", ""),
    (b"/", "/", ""),
])
def test_request_info_splits_targets_like_gunicorn(target: bytes, path: str, query: str) -> None:
    request = Request(method=b"OPTIONS", target=target, http_version=b"1.0", headers=[],
                      keep_alive=False)
    req = RequestInfo.from_request(request, ConnectionInfo(client=None, server=None))
    assert (req.path, req.query, req.version, req.remote_addr) == (path, query, (1, 0), "")


@dataclass
class FakeStream:
    """The attributes ResponseInfo reads from an InlineStream."""

    status: int | None
    response_headers: Headers = field(default_factory=list)
    bytes_sent: int = 0


def test_response_info_has_gunicorns_attributes() -> None:
    stream = FakeStream(
        status=200, bytes_sent=11,
        response_headers=[(b"Content-Type", b"text/plain"), (b"Content-Length", b"11"),
                          (b"Connection", b"close"), (b"X-Trace", b"abc")],
    )
    resp = ResponseInfo.from_stream(stream)
    assert (resp.status, resp.status_code, resp.sent, resp.response_length) == (
        "200 OK", 200, 11, 11)
    assert resp.headers == [("Content-Type", "text/plain"), ("Content-Length", "11"),
                            ("X-Trace", "abc")]
    assert resp.headers_sent
    assert ResponseInfo.from_stream(stream, reason=b"Fine").status == "200 Fine"


def test_response_info_streamed_unknown_and_unstarted() -> None:
    streamed = ResponseInfo.from_stream(FakeStream(status=599, bytes_sent=5))
    assert (streamed.status, streamed.response_length, streamed.sent) == ("599", None, 5)
    websocket = ResponseInfo.from_stream(FakeStream(
        status=101, response_headers=[(b"Upgrade", b"websocket"), (b"Connection", b"Upgrade")]))
    assert websocket.status == "101 Switching Protocols"
    assert websocket.headers == [("Upgrade", "websocket")]
    unstarted = ResponseInfo.from_stream(FakeStream(status=None))
    assert (unstarted.status, unstarted.status_code, unstarted.headers_sent) == (None, None, False)


def test_hook_objects_reach_a_post_request_hook() -> None:
    seen: dict[str, object] = {}

    def post_request(worker: object, req: RequestInfo, environ: dict[str, str],
                     resp: ResponseInfo) -> None:
        seen.update(method=req.method, path=req.path, status=resp.status, env=environ["X"])

    request = Request(method=b"GET", target=b"/p", http_version=b"1.1", headers=[],
                      keep_alive=True)
    req = RequestInfo.from_request(request, ConnectionInfo(client=("::1", 1), server=None))
    resp = ResponseInfo.from_stream(FakeStream(status=404))
    hook = from_mapping({"post_request": post_request}).post_request
    call_post_request(hook, object(), req, {"X": "y"}, resp)
    assert seen == {"method": "GET", "path": "/p", "status": "404 Not Found", "env": "y"}
    assert DefaultHooks.pre_request(object(), req) is None
