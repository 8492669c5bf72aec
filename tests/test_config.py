"""Settings: the registry against gunicorn 27's reference, every source and its precedence."""

from __future__ import annotations

import dataclasses
import os
import re
import textwrap
from pathlib import Path

import pytest

from greenserve.build import describe
from greenserve.config import (
    PENDING,
    SETTINGS,
    Config,
    ConfigError,
    Pending,
    build_parser,
    load,
    render,
    run_mode,
    show_value,
)
from greenserve.config import docs as settings_docs
from greenserve.config.spec import to_bool, to_int

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO.parent / "shared" / "reference" / "gunicorn-27-surface.md"

CORES = os.cpu_count() or 1  # the default worker count: one hub per core


def load_quiet(argv: list[str], environ: dict[str, str] | None = None) -> tuple[Config, list[str]]:
    warnings: list[str] = []
    cfg = load(argv, environ or {}, warn=warnings.append)
    return cfg, warnings


# -- the gunicorn 27 reference table -----------------------------------------------------------
def _reference_rows() -> list[dict[str, str]]:
    if not REFERENCE.exists():
        pytest.skip(f"gunicorn reference not found at {REFERENCE}")
    text = REFERENCE.read_text(encoding="utf-8")
    table = text[text.index("### 2.2"):text.index("### 2.3")]
    rows, section = [], ""
    for line in table.splitlines():
        if line.startswith("#### "):
            section = line[5:].strip()
        elif line.startswith("| ") and not line.startswith("| Flag"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            flags = re.findall(r"`(-[^`]+)`", cells[0])
            rows.append({"section": section, "flags": " ".join(flags), "name": cells[1].strip("`"),
                         "default": cells[2].strip("`"), "arg": cells[3]})
    assert len(rows) == 120, "the reference lists 120 settings"
    return rows


def test_implemented_settings_match_gunicorn_names_flags_defaults_and_sections() -> None:
    rows = {row["name"]: row for row in _reference_rows()}
    for s in SETTINGS.values():
        if not s.spec.gunicorn:
            continue
        row = rows[s.name]
        assert s.section == row["section"], s.name
        assert " ".join(s.spec.flags) == row["flags"], s.name
        shown = s.spec.default_doc or show_value(s.default)
        if s.spec.deviation:
            assert shown != row["default"], f"{s.name}: deviation documented but none found"
        else:
            assert shown == row["default"], s.name


def test_metavars_and_kinds_match_the_reference_arg_column() -> None:
    rows = {row["name"]: row for row in _reference_rows()}
    for s in SETTINGS.values():
        if not s.spec.gunicorn:
            continue
        arg = rows[s.name]["arg"]
        if s.spec.kind in ("switch", "const"):
            assert arg == "switch", s.name
        elif s.spec.kind == "file":  # config file only: no flag, no metavar
            assert arg == "—" and not s.spec.flags, s.name
        else:
            assert arg.split()[0] == s.spec.metavar, s.name
            assert ("(repeatable)" in arg) == (s.spec.kind == "append"), s.name


def test_every_gunicorn_setting_is_implemented_or_pending_with_the_same_flags() -> None:
    pending = {p.name: p for p in PENDING}
    for row in _reference_rows():
        name = row["name"]
        if name in SETTINGS:
            continue
        if name == "wsgi_app":  # the config-file spelling of APP_MODULE
            assert "wsgi_app" in SETTINGS["app_uri"].spec.aliases
            continue
        assert name in pending, f"gunicorn setting {name!r} is neither implemented nor pending"
        p = pending[name]
        assert " ".join(p.flags) == row["flags"], name
        assert p.section == row["section"], name
        if not p.flags:
            assert p.kind == "file", name
        elif row["arg"] == "switch":
            assert p.kind == "switch", name
        else:
            assert p.kind != "switch", name
            assert ("(repeatable)" in row["arg"]) == (p.kind == "append"), name


# -- the registry itself -----------------------------------------------------------------------
def test_every_setting_is_documented_and_accepts_its_own_default() -> None:
    for s in SETTINGS.values():
        assert s.spec.help and s.spec.desc, s.name
        assert "\n" not in s.spec.help, s.name
        assert s.spec.convert(s.default) == s.default, s.name


def test_config_is_frozen_and_typed_defaults() -> None:
    cfg = Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.workers = 2  # type: ignore[misc]
    assert cfg.bind == ("127.0.0.1:8000",)
    assert (cfg.workers, cfg.backlog, cfg.worker_connections) == (CORES, 2048, 1000)
    assert (cfg.timeout, cfg.graceful_timeout, cfg.keepalive) == (30, 30, 2)
    assert (cfg.limit_request_line, cfg.limit_request_fields) == (4094, 100)
    assert cfg.limit_request_field_size == 8190
    assert cfg.header_timeout == 10.0 and cfg.errorlog == "-" and cfg.accesslog is None
    assert cfg.forwarded_allow_ips == ("127.0.0.1", "::1")
    assert cfg.sendfile is True and cfg.http_parser == "auto" and cfg.header_map == "drop"


def test_load_with_nothing_gives_the_defaults() -> None:
    cfg, warnings = load_quiet([])
    assert cfg == Config() and warnings == []


def test_flags_set_their_settings() -> None:
    cfg, _ = load_quiet([
        "-b", "127.0.0.1:0", "--bind", "unix:/tmp/x.sock", "--backlog", "10", "-w", "3",
        "-k", "gevent", "--worker-connections", "5", "-t", "7", "--graceful-timeout", "8",
        "--keep-alive", "9", "--limit-request-line", "100", "--limit-request-fields", "11",
        "--limit-request-field_size", "12", "--permit-obsolete-folding",
        "--strip-header-spaces", "--header-map", "refuse", "--forwarded-allow-ips",
        "10.0.0.0/8, *", "--chdir", "/tmp", "--pythonpath", "a,b", "-e", "A=1", "-e", "B=2=3",
        "--no-sendfile", "--access-logfile", "-", "--access-logformat", "%(h)s",
        "--log-file", "err.log", "--log-level", "DEBUG", "-n", "web", "--http-parser", "python",
        "--preload", "--reuse-port", "--max-requests", "13", "--max-requests-jitter", "14",
        "--root-path", "/api/", "--header-timeout", "2.5", "mod:app",
    ])
    assert cfg.bind == ("127.0.0.1:0", "unix:/tmp/x.sock") and cfg.backlog == 10
    assert (cfg.workers, cfg.worker_connections, cfg.timeout) == (3, 5, 7)
    assert (cfg.graceful_timeout, cfg.keepalive) == (8, 9)
    assert (cfg.limit_request_line, cfg.limit_request_fields, cfg.limit_request_field_size) \
        == (100, 11, 12)
    assert cfg.permit_obsolete_folding and cfg.strip_header_spaces and cfg.header_map == "refuse"
    assert cfg.forwarded_allow_ips == ("10.0.0.0/8", "*")
    assert (cfg.chdir, cfg.pythonpath, cfg.raw_env) == ("/tmp", "a,b", ("A=1", "B=2=3"))
    assert cfg.sendfile is False and cfg.accesslog == "-" and cfg.access_log_format == "%(h)s"
    assert (cfg.errorlog, cfg.loglevel, cfg.proc_name) == ("err.log", "debug", "web")
    assert cfg.http_parser == "python" and cfg.preload_app and cfg.reuse_port
    assert (cfg.max_requests, cfg.max_requests_jitter) == (13, 14)
    assert cfg.root_path == "/api" and cfg.header_timeout == 2.5 and cfg.app_uri == "mod:app"


def test_error_logfile_alias_and_positional_anywhere() -> None:
    cfg, _ = load_quiet(["mod:app", "--error-logfile", "e.log", "-w", "2"])
    assert (cfg.app_uri, cfg.errorlog, cfg.workers) == ("mod:app", "e.log", 2)


# -- environment and precedence ----------------------------------------------------------------
def test_environment_backed_defaults() -> None:
    cfg, _ = load_quiet([], {"WEB_CONCURRENCY": "4", "PORT": "5000", "SENDFILE": "0",
                             "FORWARDED_ALLOW_IPS": "10.1.1.1,10.2.0.0/16"})
    assert cfg.workers == 4 and cfg.bind == ("0.0.0.0:5000",) and cfg.sendfile is False
    assert cfg.forwarded_allow_ips == ("10.1.1.1", "10.2.0.0/16")


def test_empty_environment_variables_are_ignored() -> None:
    cfg, _ = load_quiet([], {"WEB_CONCURRENCY": "", "PORT": " ", "GUNICORN_CMD_ARGS": ""})
    assert cfg == Config()


def test_command_line_beats_cmd_args_which_beat_environment() -> None:
    environ = {"WEB_CONCURRENCY": "2", "PORT": "5000", "GUNICORN_CMD_ARGS": "-w 3 -t 40 -b :1",
               "GREENSERVE_CMD_ARGS": "-w 4 --keep-alive 9"}
    cfg, _ = load_quiet([], environ)
    assert (cfg.workers, cfg.timeout, cfg.keepalive, cfg.bind) == (4, 40, 9, (":1",))
    cfg, _ = load_quiet(["-w", "5", "-b", ":2", "-b", ":3"], environ)
    assert cfg.workers == 5 and cfg.bind == (":2", ":3")  # a repeatable flag replaces, as gunicorn


def test_cmd_args_may_name_the_app() -> None:
    cfg, _ = load_quiet([], {"GUNICORN_CMD_ARGS": "--log-level warning mod:app"})
    assert cfg.app_uri == "mod:app" and cfg.loglevel == "warning"
    cfg, _ = load_quiet(["other:app"], {"GUNICORN_CMD_ARGS": "mod:app"})
    assert cfg.app_uri == "other:app"


def test_config_file_sits_between_environment_and_cmd_args(tmp_path: Path) -> None:
    conf = tmp_path / "gunicorn.conf.py"
    conf.write_text(textwrap.dedent("""\
        import multiprocessing
        from os import getcwd
        workers = 6
        timeout = "45"
        bind = "127.0.0.1:9999"
        wsgi_app = "conf:app"
        raw_env = ["A=1"]
        _cores = 2
    """))
    environ = {"WEB_CONCURRENCY": "2", "GUNICORN_CMD_ARGS": f"-c {conf} -t 50"}
    cfg, warnings = load_quiet([], environ)
    assert (cfg.workers, cfg.timeout, cfg.bind) == (6, 50, ("127.0.0.1:9999",))
    assert cfg.app_uri == "conf:app" and cfg.raw_env == ("A=1",) and warnings == []
    cfg, _ = load_quiet(["-c", str(conf), "-w", "7", "cli:app"], {})
    assert (cfg.workers, cfg.timeout, cfg.app_uri, cfg.config) == (7, 45, "cli:app", str(conf))


def test_default_config_file_is_read_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_quiet([])[0].workers == CORES  # no file: no error
    (tmp_path / "gunicorn.conf.py").write_text("workers = 3\n")
    assert load_quiet([])[0].workers == 3


@pytest.fixture
def future_settings(monkeypatch: pytest.MonkeyPatch) -> tuple[Pending, ...]:
    """Settings a later gunicorn may add: every one of gunicorn 27.0 is implemented, so the
    machinery that accepts the others with a warning is tested with stand-ins."""
    import greenserve.config as config

    rows = (
        Pending("future_value", "Server Mechanics", ("--future-value",), "value"),
        Pending("future_switch", "Server Mechanics", ("--future-switch",), "switch"),
        Pending("future_list", "Server Mechanics", ("--future-item",), "append"),
        Pending("future_hook", "Server Hooks", (), "file"),
    )
    monkeypatch.setattr(config, "PENDING", rows)
    monkeypatch.setattr(config, "_PENDING_BY_NAME", {p.name: p for p in rows})
    return rows


def test_config_file_hooks_are_set_and_pending_settings_warn(
        tmp_path: Path, future_settings: tuple[Pending, ...]) -> None:
    conf = tmp_path / "c.py"
    conf.write_text("def post_fork(server, worker):\n    pass\nfuture_value = 2\n"
                    "def future_hook(server):\n    pass\n")
    cfg, warnings = load_quiet(["-c", str(conf)])
    assert cfg.post_fork.__name__ == "post_fork"
    assert warnings == [
        f"{name} (in {conf}) is accepted for gunicorn compatibility but not implemented yet"
        for name in ("future_value", "future_hook")
    ]


@pytest.mark.parametrize(("body", "message"), [
    ("worker = 2\n", "unknown setting 'worker' (did you mean 'workers'?)"),
    ("workers = 'many'\n", "workers: invalid int value: 'many'"),
    ("raise RuntimeError('in conf')\n", "raised RuntimeError: in conf"),
    ("x = (\n", "cannot read config file"),
])
def test_config_file_errors_are_one_line(tmp_path: Path, body: str, message: str) -> None:
    conf = tmp_path / "c.py"
    conf.write_text(body)
    with pytest.raises(ConfigError) as info:
        load_quiet(["-c", str(conf)])
    assert message in str(info.value) and "\n" not in str(info.value)


def test_config_file_python_module_form(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "cfgapp_settings_mod.py").write_text("workers = 9\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert load_quiet(["-c", "python:cfgapp_settings_mod"])[0].workers == 9


def test_missing_explicit_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_quiet(["-c", str(tmp_path / "nope.py")])


# -- pending gunicorn flags --------------------------------------------------------------------
def test_gunicorn_27_has_no_setting_left_pending() -> None:
    assert PENDING == ()


def test_every_pending_gunicorn_flag_is_accepted_with_one_warning(
        future_settings: tuple[Pending, ...]) -> None:
    for pending in (p for p in future_settings if p.flags):
        for flag in pending.flags:
            argv = [flag] if pending.kind in ("switch", "optional") else [flag, "1"]
            cfg, warnings = load_quiet([*argv, "mod:app"])
            assert cfg.app_uri == "mod:app"
            assert warnings == [
                f"{flag} is accepted for gunicorn compatibility but not implemented yet"
            ]


def test_pending_flag_from_two_sources_warns_once(
        future_settings: tuple[Pending, ...]) -> None:
    _, warnings = load_quiet(["--future-value", "1"],
                             {"GUNICORN_CMD_ARGS": "--future-value 2"})
    assert len(warnings) == 1


def test_proxy_protocol_takes_an_optional_value() -> None:
    # As in gunicorn, a bare --proxy-protocol must not be followed by APP_MODULE (argparse
    # would take the app as its value).
    assert load_quiet(["mod:app", "--proxy-protocol"])[0].app_uri == "mod:app"
    assert load_quiet(["--proxy-protocol", "-w", "2", "mod:app"])[0].workers == 2
    assert load_quiet(["--proxy-protocol", "v2", "mod:app"])[0].app_uri == "mod:app"


# -- bad values --------------------------------------------------------------------------------
@pytest.mark.parametrize(("argv", "message"), [
    (["-w", "0"], "argument -w/--workers: must be at least 1, got 0"),
    (["-w", "two"], "argument -w/--workers: invalid int value: 'two'"),
    (["--backlog", "-1"], "argument --backlog: must be at least 0, got -1"),
    (["-t", "1.5"], "argument -t/--timeout: invalid int value: '1.5'"),
    (["--header-timeout", "soon"], "argument --header-timeout: invalid float value: 'soon'"),
    (["--http-parser", "c"], "argument --http-parser: invalid choice: 'c' (choose from 'auto', "
                             "'fast', 'python')"),
    (["--header-map", "keep"], "argument --header-map: invalid choice: 'keep'"),
    (["--log-level", "loud"], "argument --log-level: invalid choice: 'loud'"),
    (["-b", "localhost:http"], "argument -b/--bind: 'localhost:http': 'http' is not a valid port"),
    (["-b", "::1"], "write IPv6 addresses in brackets"),
    (["-b", "fd://x"], "'fd://x' is not a valid file descriptor"),
    (["-e", "NOVALUE"], "argument -e/--env: expected KEY=VALUE, got 'NOVALUE'"),
    (["--forwarded-allow-ips", "10.0.0.300"], "'10.0.0.300' is not an IP address or network"),
    (["--root-path", "api"], "argument --root-path: must be empty or start with '/'"),
    (["-b", ":1", "-b", "0.0.0.0:1"], None),  # ":1" and "0.0.0.0:1" differ; not duplicates
    (["-b", ":1", "-b", ":1"], "argument -b/--bind: ':1' is given more than once"),
])
def test_bad_values_are_one_line_errors(argv: list[str], message: str | None) -> None:
    if message is None:
        load_quiet(argv)
        return
    with pytest.raises(ConfigError) as info:
        load_quiet(argv)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert info.value.usage is None


def test_bad_environment_value_names_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"^\$WEB_CONCURRENCY: invalid int value: 'x'$"):
        load_quiet([], {"WEB_CONCURRENCY": "x"})
    with pytest.raises(ConfigError, match=r"^\$GUNICORN_CMD_ARGS: argument -w/--workers"):
        load_quiet([], {"GUNICORN_CMD_ARGS": "-w x"})


def test_malformed_command_line_carries_the_usage_line() -> None:
    with pytest.raises(ConfigError) as info:
        load_quiet(["--no-such-flag"])
    assert str(info.value) == "unrecognized arguments: --no-such-flag"
    assert info.value.usage == "usage: greenserve [OPTIONS] [APP_MODULE]"
    with pytest.raises(ConfigError, match=r"^\$GREENSERVE_CMD_ARGS: unrecognized"):
        load_quiet([], {"GREENSERVE_CMD_ARGS": "--nope"})


def test_limits_above_the_maximum_are_clamped_with_a_warning() -> None:
    cfg, warnings = load_quiet(["--limit-request-line", "9000", "--limit-request-fields", "0"])
    assert cfg.limit_request_line == 8190 and cfg.limit_request_fields == 32768
    assert warnings == ["--limit-request-line 9000 is above the maximum 8190; using 8190"]
    assert load_quiet(["--limit-request-line", "0"])[0].limit_request_line == 0


@pytest.mark.parametrize("worker_class", ["gevent", "gevent_wsgi", "gevent_pywsgi",
                                          "gunicorn.workers.ggevent.GeventWorker"])
def test_gevent_worker_classes_are_silent(worker_class: str) -> None:
    cfg, warnings = load_quiet(["-k", worker_class])
    assert cfg.worker_class == worker_class and warnings == []


def test_other_worker_classes_warn() -> None:
    _, warnings = load_quiet(["-k", "sync"])
    assert warnings == ["--worker-class 'sync' is not supported; greenserve always runs its "
                        "gevent worker"]


def test_run_mode() -> None:
    assert run_mode(Config(print_config=True)) == "print"
    assert run_mode(Config(app_uri="m:a")) == "serve"
    assert run_mode(Config(app_uri="m:a", check_config=True)) == "check"
    with pytest.raises(ConfigError, match=r"^No application module specified\.$"):
        run_mode(Config(check_config=True))


# -- converters, help, version, print-config, docs ---------------------------------------------
def test_converters() -> None:
    assert (to_int("010"), to_int("0x10"), to_int(" 7 "), to_int(3)) == (10, 16, 7, 3)
    with pytest.raises(ValueError):
        to_int(True)
    assert to_bool("Yes") is True and to_bool("0") is False and to_bool(False) is False
    with pytest.raises(ValueError):
        to_bool("maybe")


def test_help_lists_every_setting_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: greenserve [OPTIONS] [APP_MODULE]")
    for s in SETTINGS.values():
        for flag in s.spec.flags:
            assert flag in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        load(["--version"], {})
    assert capsys.readouterr().out == f"greenserve (version {describe('0.1.0')})\n"


def test_render_lists_every_setting_once() -> None:
    lines = render(Config(workers=3)).splitlines()
    assert len(lines) == len(SETTINGS)
    values = {name.strip(): value for name, value in (line.split(" = ", 1) for line in lines)}
    assert values["workers"] == "3"
    assert values["bind"] == "['127.0.0.1:8000']"


def test_settings_reference_page_is_up_to_date() -> None:
    page = REPO / "docs" / "reference" / "settings.md"
    assert page.read_text(encoding="utf-8") == settings_docs.render(), (
        "docs/reference/settings.md is stale: run python -m greenserve.config.docs"
    )
    assert settings_docs.main(["--check", "--output", str(page)]) == 0


@pytest.mark.parametrize(("text", "workers", "warning"), [
    # gunicorn ignores names that are no setting; greenserve warns, except for CONSTANTS
    ("helper = 2\nMARKS = '/tmp/x'\nworkers = 3\n", 3,
     "'helper' is not a setting; ignored (prefix helper variables with '_')"),
    # a helper that merely resembles a setting must not stop the start (only a near miss
    # such as ``worker`` is taken for a typo)
    ("stats = {'n': 0}\nworkers = 2\n", 2,
     "'stats' is not a setting; ignored (did you mean 'statsd_host'?)"),
], ids=["helper-and-constant", "helper-near-a-setting"])
def test_config_file_helper_names_only_warn(tmp_path: Path, text: str, workers: int,
                                            warning: str) -> None:
    conf = tmp_path / "c.py"
    conf.write_text(text)
    cfg, warnings = load_quiet(["-c", str(conf)])
    assert cfg.workers == workers
    assert warnings == [f"{conf}: {warning}"]


def test_fast_parser_without_httptools_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "httptools" else real(name, *a))
    with pytest.raises(ConfigError, match="--http-parser fast needs httptools"):
        load_quiet(["--http-parser", "fast"])
    assert load_quiet(["--http-parser", "auto"])[0].http_parser == "auto"


def test_umask_with_a_leading_zero_is_octal() -> None:
    assert load_quiet(["-m", "0022"])[0].umask == 0o22
    assert load_quiet(["-m", "0o007"])[0].umask == 0o7
    assert load_quiet(["-m", "18"])[0].umask == 18


def test_logger_classes_and_no_control_socket_are_silent() -> None:
    _, warnings = load_quiet(["--logger-class", "gunicorn.instrument.statsd.Statsd",
                              "--no-control-socket"])
    assert warnings == []
    _, warnings = load_quiet(["--logger-class", "myapp.logs.Logger"])  # loaded at start
    assert warnings == []
