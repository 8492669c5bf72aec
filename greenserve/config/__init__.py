"""greenserve's settings: the typed ``Config`` and ``load()``, which merges every source.

Precedence, lowest first (as gunicorn): the declared defaults; environment-backed defaults
(``WEB_CONCURRENCY``, ``PORT``, ``FORWARDED_ALLOW_IPS``, ``SENDFILE``); the config file
(``-c``, default ``./gunicorn.conf.py``); ``GUNICORN_CMD_ARGS``; ``GREENSERVE_CMD_ARGS``; the
command line. Every source goes through the same converters, declared once per setting in the
section modules. Nothing here imports socket, ssl, threading or gevent: ``load()`` runs before
the process is patched.
"""

from __future__ import annotations

import argparse
import difflib
import shlex
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from types import ModuleType
from typing import Any, Literal, NoReturn

from greenserve import __version__
from greenserve.build import describe

from .configfile import ConfigFileError, ConfigFileSettings, read_config_file
from .control import ControlSettings
from .debugging import DebuggingSettings
from .dirty import DirtyHookSettings, DirtySettings
from .greenserve import GreenserveSettings
from .hooks import HookSettings
from .http2 import HTTP2Settings
from .logging import LoggingSettings
from .mechanics import MechanicsSettings
from .naming import NamingSettings
from .security import SecuritySettings
from .socket import SocketSettings
from .spec import PENDING, Pending, Spec, spec_of
from .ssl import SSLSettings
from .workers import WorkerSettings

__all__ = [
    "CMD_ARGS_VARS", "PENDING", "SECTIONS", "SETTINGS", "Config", "ConfigError", "Setting",
    "RunMode", "app_in_master", "build_parser", "file_values", "from_mapping", "load",
    "long_flag", "render", "run_mode", "section_title", "show_value", "validate", "warn_to_stderr",
]

#: the section classes, in the order of gunicorn's settings reference
SECTIONS: tuple[type, ...] = (
    ConfigFileSettings, SocketSettings, WorkerSettings, SecuritySettings, DebuggingSettings,
    MechanicsSettings, LoggingSettings, NamingSettings, HookSettings, SSLSettings,
    HTTP2Settings, DirtySettings, DirtyHookSettings, ControlSettings, GreenserveSettings,
)
#: environment variables parsed like the command line, lowest precedence first
CMD_ARGS_VARS = ("GUNICORN_CMD_ARGS", "GREENSERVE_CMD_ARGS")

Warn = Callable[[str], None]
RunMode = Literal["print", "check", "serve"]


@dataclass(frozen=True, kw_only=True)
class Config(
    GreenserveSettings, ControlSettings, DirtyHookSettings, DirtySettings, HTTP2Settings,
    SSLSettings, HookSettings, NamingSettings,
    LoggingSettings, MechanicsSettings, DebuggingSettings, SecuritySettings, WorkerSettings,
    SocketSettings, ConfigFileSettings,
):
    """Every setting, typed and frozen: ``cfg.workers`` is an ``int``.

    Build one with :func:`load`; ``Config()`` alone gives the declared defaults.
    """


class ConfigError(Exception):
    """A bad setting or command line; ``str(exc)`` is one line.

    ``usage`` is argparse's usage line when the command line itself was malformed, and
    ``user_error`` the exception a config file raised (its traceback is worth showing).
    """

    def __init__(self, message: str, *, usage: str | None = None,
                 user_error: BaseException | None = None) -> None:
        super().__init__(message)
        self.usage = usage
        self.user_error = user_error


@dataclass(frozen=True)
class Setting:
    """One registered setting: its field name, section title, spec and declared default."""

    name: str
    section: str
    spec: Spec
    default: Any

    @property
    def label(self) -> str:
        """How error messages name it: argparse's ``argument -w/--workers``, or the name."""
        if self.spec.flags:
            return "argument " + "/".join(self.spec.flags)
        return f"argument {self.spec.metavar or self.name}"

    @property
    def flag(self) -> str:
        """The first long flag (``--workers``), or the name for a positional setting."""
        return long_flag(self.spec.flags) or self.name


def section_title(section: type) -> str:
    """A section class's title, from its ``SECTION`` class variable."""
    return str(vars(section)["SECTION"])


def long_flag(flags: Iterable[str]) -> str:
    """The first ``--long`` flag of a setting (how warnings name it), or ``""``."""
    return next((f for f in flags if f.startswith("--")), "")


def _registry() -> dict[str, Setting]:
    registry: dict[str, Setting] = {}
    for section in SECTIONS:
        for f in fields(section):
            spec = spec_of(f)
            if spec is not None:
                registry[f.name] = Setting(f.name, section_title(section), spec, f.default)
    return registry


#: every implemented setting by name, in documentation order
SETTINGS: dict[str, Setting] = _registry()
_PENDING_BY_NAME: dict[str, Pending] = {p.name: p for p in PENDING}
_PENDING_DEST = "pending:"


# -- the command-line parser -------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    """argparse, but errors are raised so that load() never exits the process on its own."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError(message, usage=self.format_usage().strip())


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser, generated from :data:`SETTINGS` and :data:`PENDING`.

    Every option defaults to ``argparse.SUPPRESS`` so a namespace holds only what was given.
    """
    parser = _Parser(
        prog="greenserve", usage="%(prog)s [OPTIONS] [APP_MODULE]",
        description="A production HTTP server for WSGI and ASGI apps on gevent; a drop-in "
                    "for 'gunicorn -k gevent'.",
        epilog="Every gunicorn 27 option is implemented; a later gunicorn's would be "
               "accepted with a warning. Settings reference: docs/reference/settings.md. "
               "Load testing: "
               "'greenserve bench --help' (Locust).",
        argument_default=argparse.SUPPRESS,
    )
    parser.add_argument("-v", "--version", action="version",
                        version=f"%(prog)s (version {describe(__version__)})")
    for section in SECTIONS:
        title = section_title(section)
        group = parser.add_argument_group(title)
        for s in SETTINGS.values():
            if s.section == title:
                _add_setting(group, s)
    for pending in PENDING:
        if pending.flags:
            _add_pending(parser, pending)
    return parser


def _help(s: Setting) -> str:
    text = s.spec.help
    if s.spec.kind not in ("switch", "const"):
        default = s.spec.default_doc or show_value(s.default)
        text += f" [default: {default}]"
    return text.replace("%", "%%")  # argparse %-formats help strings


def _add_setting(group: argparse._ArgumentGroup, s: Setting) -> None:
    spec = s.spec
    if spec.kind == "file":
        return  # config file only: no flag (the server hooks)
    if spec.kind == "positional":
        group.add_argument(s.name, nargs="?", metavar=spec.metavar, help=_help(s))
        return
    options: dict[str, Any] = {"dest": s.name, "help": _help(s)}
    if spec.kind in ("value", "append", "optional"):
        options["metavar"] = spec.metavar
    if spec.kind == "append":
        options["action"] = "append"
    elif spec.kind == "switch":
        options["action"] = "store_true"
    elif spec.kind == "const":
        options.update(action="store_const", const=spec.const)
    elif spec.kind == "optional":
        options.update(nargs="?", const=spec.const)
    group.add_argument(*spec.flags, **options)


def _add_pending(parser: argparse.ArgumentParser, pending: Pending) -> None:
    options: dict[str, Any] = {"dest": _PENDING_DEST + pending.name, "help": argparse.SUPPRESS}
    if pending.kind == "append":
        options["action"] = "append"
    elif pending.kind == "switch":
        options["action"] = "store_true"
    elif pending.kind == "optional":
        options.update(nargs="?", const="auto")  # gunicorn's bare --proxy-protocol
    parser.add_argument(*pending.flags, **options)


# -- load --------------------------------------------------------------------------------------
def warn_to_stderr(message: str) -> None:
    """The default warning sink: one ``greenserve: warning: ...`` line on stderr."""
    print(f"greenserve: warning: {message}", file=sys.stderr, flush=True)


def load(argv: list[str], environ: Mapping[str, str], *, warn: Warn | None = None) -> Config:
    """Merge defaults, environment, config file, ``*_CMD_ARGS`` and ``argv`` into a Config.

    Raises :class:`ConfigError` with a one-line message. Warnings (unimplemented gunicorn
    options, clamped limits, an unsupported worker class) go to ``warn``, by default one line
    each on stderr. ``--help`` and ``--version`` print and raise SystemExit(0), as argparse does.
    """
    sink = _OnceOnly(warn or warn_to_stderr)
    parser = build_parser()
    sources = [
        (f"${var}", _parse(parser, shlex.split(environ[var]), f"${var}"))
        for var in CMD_ARGS_VARS if environ.get(var, "").strip()
    ]
    sources.append(("", _parse(parser, argv, "")))
    values = _env_values(environ)
    values.update(_config_file_values(sources, sink))
    for label, namespace in sources:
        values.update(_namespace_values(namespace, label, sink))
    return _finish(values, sink)


class _OnceOnly:
    """Forwards each distinct warning once (the same flag may come from several sources)."""

    def __init__(self, warn: Warn) -> None:
        self._warn = warn
        self._seen: set[str] = set()

    def __call__(self, message: str) -> None:
        if message not in self._seen:
            self._seen.add(message)
            self._warn(message)


def _parse(parser: argparse.ArgumentParser, args: list[str], label: str) -> argparse.Namespace:
    try:
        return parser.parse_args(args)
    except ConfigError as exc:
        if not label:
            raise
        raise ConfigError(f"{label}: {exc}", usage=exc.usage) from None


def _convert(s: Setting, raw: object, where: str) -> Any:
    try:
        value = s.spec.convert(raw)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if s.spec.choices and value not in s.spec.choices:
        choices = ", ".join(repr(c) for c in s.spec.choices)
        raise ConfigError(f"{where}: invalid choice: {value!r} (choose from {choices})")
    return value


def _env_values(environ: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for s in SETTINGS.values():
        var = s.spec.env
        if var is None or not environ.get(var, "").strip():
            continue  # gunicorn treats an empty variable as unset too
        text = environ[var].strip()
        raw = text if s.spec.env_map is None else s.spec.env_map(text)
        values[s.name] = _convert(s, raw, f"${var}")
    return values


def _namespace_values(namespace: argparse.Namespace, label: str, warn: Warn) -> dict[str, Any]:
    values: dict[str, Any] = {}
    prefix = f"{label}: " if label else ""
    for dest, raw in vars(namespace).items():
        if dest.startswith(_PENDING_DEST):
            warn(_pending_message(_PENDING_BY_NAME[dest[len(_PENDING_DEST):]]))
        else:
            s = SETTINGS[dest]
            values[dest] = _convert(s, raw, prefix + s.label)
    return values


def _pending_message(pending: Pending, where: str = "") -> str:
    # On the command line the user typed a flag; in a config file, the setting's name.
    what = (long_flag(pending.flags) if not where else "") or pending.name
    return f"{what}{where} is accepted for gunicorn compatibility but not implemented yet"


def _config_file_values(
    sources: list[tuple[str, argparse.Namespace]], warn: Warn
) -> dict[str, Any]:
    # The last source that names a file wins (the command line over the environment).
    given = [ns.config for _, ns in sources if "config" in vars(ns)]
    location = given[-1] if given else SETTINGS["config"].default
    try:
        namespace = read_config_file(location, explicit=bool(given))
    except ConfigFileError as exc:
        raise ConfigError(str(exc), user_error=exc.__cause__) from None
    if namespace is None:
        return {}
    return file_values(namespace, location.removeprefix("file:"), warn)


def file_values(namespace: Mapping[str, object], label: str, warn: Warn) -> dict[str, Any]:
    """Convert a config file's globals into setting values; unknown names are errors."""
    by_name = {alias: s for s in SETTINGS.values() for alias in (s.name, *s.spec.aliases)}
    module_name = namespace.get("__name__")
    values: dict[str, Any] = {}
    for key, value in namespace.items():
        if key.startswith("_") or isinstance(value, ModuleType):
            continue
        if key in by_name:
            s = by_name[key]
            values[s.name] = _convert(s, value, f"{label}: {key}")
        elif key in _PENDING_BY_NAME:
            warn(_pending_message(_PENDING_BY_NAME[key], f" (in {label})"))
        elif callable(value) and getattr(value, "__module__", None) != module_name:
            continue  # an imported helper such as `from multiprocessing import cpu_count`
        else:
            _unknown(key, label, by_name, warn)
    return values


def _unknown(key: str, label: str, known: Iterable[str], warn: Warn) -> None:
    """A name that is no setting: a likely typo is an error, anything else a warning.

    gunicorn ignores unknown names silently, and real gunicorn.conf.py files keep helper
    variables in them, so only a near miss of a setting name (``worker = 2``) stops the
    start; an ALL_CAPS constant is taken for what it is.
    """
    if key.isupper():
        return
    suggestion = _suggest(key, known)
    close = _suggest(key, known, cutoff=_TYPO)
    if "did you mean" in close:
        raise ConfigError(f"{label}: unknown setting {key!r}{close}")
    warn(f"{label}: {key!r} is not a setting; ignored{suggestion}")


#: how close to a setting's name an unknown name must be to stop the start as a typo
#: (``worker``/``workers`` 0.92, ``timout`` 0.92, ``bnd`` 0.86); a looser match (a helper
#: variable such as ``stats`` near ``statsd_host``, 0.63) is only a warning, as gunicorn
#: itself ignores unknown names
_TYPO = 0.85


def _suggest(key: str, known: Iterable[str], cutoff: float = 0.6) -> str:
    names = [*known, *_PENDING_BY_NAME]
    close = difflib.get_close_matches(key, names, n=1, cutoff=cutoff)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return " (prefix helper variables with '_')"


def _finish(values: dict[str, Any], warn: Warn) -> Config:
    for name, value in values.items():
        s = SETTINGS[name]
        if s.spec.maximum is not None and value > s.spec.maximum:
            warn(f"{s.flag} {value} is above the maximum {s.spec.maximum}; "
                 f"using {s.spec.maximum}")
            values[name] = s.spec.maximum
        if s.spec.advise is not None:
            message = s.spec.advise(values[name])
            if message:
                warn(message)
    cfg = Config(**values)
    validate(cfg)
    message = http2_advice(cfg)
    if message:
        warn(message)
    return cfg


def validate(cfg: Config) -> None:
    """Rules across settings; raises :class:`ConfigError`."""
    from greenserve.sockets import parse_bind  # pure string parsing, no socket import

    if cfg.http_parser == "fast":
        import importlib.util

        if importlib.util.find_spec("httptools") is None:
            raise ConfigError("--http-parser fast needs httptools: pip install httptools "
                              "(or use --http-parser auto)")
    from greenserve.app.mount import root_conflict

    if "h2" in cfg.http_protocols and not h2_available():
        raise ConfigError("--http-protocols includes h2 but the h2 package (4.1 or later) is "
                          "not installed: pip install 'greenserve[http2]', or drop h2")
    conflict = root_conflict(cfg)
    if conflict:
        raise ConfigError(conflict)
    seen: set[object] = set()
    for spec in cfg.bind:
        address = parse_bind(spec)
        if address in seen:
            raise ConfigError(f"argument -b/--bind: {spec!r} is given more than once")
        seen.add(address)


def h2_available() -> bool:
    """Whether the ``h2`` package HTTP/2 needs is importable, at 4.1 or later."""
    # h2 imports neither socket nor ssl (importlib.metadata would, before gevent patches).
    try:
        import h2

        major, minor = (int(part) for part in h2.__version__.split(".")[:2])
    except Exception:
        return False
    return (major, minor) >= (4, 1)


def http2_advice(cfg: Config) -> str | None:
    """A warning when the HTTP/2 settings cannot do what they seem to ask."""
    h2 = "h2" in cfg.http_protocols
    if h2 and not cfg.certfile and cfg.http2_cleartext == "off":
        return ("--http-protocols lists h2 but there is no --certfile and --http2-cleartext "
                "is off, so HTTP/2 will never be negotiated")
    if not h2 and cfg.http2_cleartext != "off":
        return (f"--http2-cleartext {cfg.http2_cleartext} has no effect unless "
                "--http-protocols lists h2")
    return None


def from_mapping(settings: Mapping[str, object], *, warn: Warn | None = None) -> Config:
    """A Config from setting names and values, as a config file gives them.

    Used by the embedding API (``Server(app, workers=2, bind="127.0.0.1:0")``): the same
    names, converters and checks as ``gunicorn.conf.py``; an unknown name is an error.
    """
    sink = _OnceOnly(warn or warn_to_stderr)
    return _finish(file_values(settings, "settings", sink), sink)


def app_in_master(cfg: Config) -> bool:
    """Whether the master imports the app itself (``--check-config`` or ``--preload``).

    Otherwise each worker imports it after patching, and the master never runs app code.
    """
    return cfg.check_config or cfg.preload_app


def run_mode(cfg: Config) -> RunMode:
    """What the command does with ``cfg``: print it, check the app loads, or serve.

    Raises :class:`ConfigError` when an app is needed and none was named.
    """
    if cfg.print_config:
        return "print"
    if not cfg.app_uri and not cfg.mount and not cfg.paste:
        raise ConfigError("No application module specified.")
    return "check" if cfg.check_config else "serve"


# -- --print-config ----------------------------------------------------------------------------
def show_value(value: object) -> str:
    """A value as users see it; tuples are shown as lists, as gunicorn prints them."""
    return repr(list(value)) if isinstance(value, tuple) else repr(value)


def render(cfg: Config) -> str:
    """Every setting as ``name = value`` lines, sorted by name, as ``--print-config`` prints."""
    width = max(len(name) for name in SETTINGS)
    return "\n".join(
        f"{name:<{width}} = {show_value(getattr(cfg, name))}" for name in sorted(SETTINGS)
    )
