"""Logging settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from .spec import setting, to_bool, to_opt_str, to_str

#: gunicorn's default access-log line, the Apache combined format.
DEFAULT_ACCESS_LOG_FORMAT = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def _loglevel(value: object) -> str:
    # gunicorn matches the level case-insensitively.
    return to_str(value).strip().lower()


#: the StatsD port when --statsd-host gives only a host
STATSD_PORT = 8125
StatsdAddress = str | tuple[str, int]


def parse_statsd_address(value: str) -> StatsdAddress:
    """``HOST[:PORT]`` (port 8125 by default), ``[IPV6]:PORT`` or ``unix:PATH``/``unix://PATH``
    (as gunicorn's ``--statsd-host``). Raises ValueError with a message that says what to
    write."""
    text = value.strip()
    if text.startswith("unix:"):
        path = text[len("unix://"):] if text.startswith("unix://") else text[len("unix:"):]
        if not path:
            raise ValueError(f"{value!r}: missing unix socket path")
        return path
    host, port = text, str(STATSD_PORT)
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"{value!r}: write HOST:PORT, [IPV6]:PORT or unix:PATH")
            port = rest[1:]
    elif ":" in text:
        host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{value!r}: write HOST:PORT, [IPV6]:PORT or unix:PATH")
    return host, int(port)



SYSLOG_FACILITIES = {
    "auth": 4, "authpriv": 10, "cron": 9, "daemon": 3, "ftp": 11, "kern": 0, "lpr": 6,
    "mail": 2, "news": 7, "security": 4, "syslog": 5, "user": 1, "uucp": 8,
    **{f"local{n}": 16 + n for n in range(8)},
}
SyslogAddress = str | tuple[str, int]


def parse_syslog_address(value: str) -> tuple[SyslogAddress, str]:
    """``unix://PATH[#dgram|#stream]``, ``udp://HOST[:PORT]`` or ``tcp://HOST[:PORT]`` (port
    514 by default) -> (address, "dgram" or "stream"). Raises ValueError saying what to
    write."""
    if value.startswith("unix://"):
        path, _, kind = value[len("unix://"):].partition("#")
        if not path or kind not in ("", "dgram", "stream"):
            raise ValueError(f"{value!r}: write unix://PATH, unix://PATH#dgram or #stream")
        return path, kind or "dgram"
    scheme, sep, rest = value.partition("://")
    if not sep or scheme not in ("udp", "tcp") or not rest:
        raise ValueError(f"{value!r}: write udp://HOST:PORT, tcp://HOST:PORT or unix://PATH")
    host, port = rest, "514"
    if rest.startswith("["):
        host, _, tail = rest[1:].partition("]")
        port = tail[1:] if tail.startswith(":") else port
    elif ":" in rest:
        host, _, port = rest.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{value!r}: write udp://HOST:PORT, tcp://HOST:PORT or unix://PATH")
    return (host, int(port)), "stream" if scheme == "tcp" else "dgram"


def _syslog_addr(value: object) -> str:
    text = to_str(value)
    parse_syslog_address(text)
    return text


def _facility(value: object) -> str:
    text = to_str(value).strip().lower()
    if text not in SYSLOG_FACILITIES:
        raise ValueError(f"unknown syslog facility {text!r} (choose from "
                         f"{', '.join(SYSLOG_FACILITIES)})")
    return text


#: gunicorn's own logger classes: greenserve's logging does what they do
GUNICORN_LOGGERS = frozenset({
    "gunicorn.glogging.Logger", "gunicorn.instrument.statsd.Statsd",
    "glogging.Logger", "statsd.Statsd",
})


def _log_dict(value: object) -> dict[str, Any] | None:
    if value is None or value == {}:
        return None
    if not isinstance(value, dict):
        raise ValueError(f"expected a dict for logging.dictConfig, got {type(value).__name__}")
    return value


def _statsd_host(value: object) -> str | None:
    text = to_opt_str(value)
    if text:
        parse_statsd_address(text)  # a ValueError says what to write
    return text or None


@dataclass(frozen=True, kw_only=True)
class LoggingSettings:
    """Logging."""

    SECTION: ClassVar[str] = "Logging"

    accesslog: str | None = setting(
        "--access-logfile", metavar="FILE", default=None, convert=to_opt_str,
        help="The access log file; '-' for stdout. No access log by default.",
        desc="One line per request, formatted by `access_log_format`.",
    )
    access_log_format: str = setting(
        "--access-logformat", metavar="STRING", default=DEFAULT_ACCESS_LOG_FORMAT,
        convert=to_str,
        help="The access log line format (gunicorn's atoms).",
        desc="""\
A `%`-style format over gunicorn's atoms: `h` remote address, `l` `-`, `u` user, `t` date,
`r` request line, `m` method, `U` path, `q` query, `H` protocol, `s` status, `B`/`b`
response length, `f` referer, `a` user agent, `T`/`M`/`D`/`L` request time, `p` pid,
`{header}i`/`{header}o` request/response headers, `{var}e` environment variables.""",
    )
    errorlog: str = setting(
        "--error-logfile", "--log-file", metavar="FILE", default="-", convert=to_str,
        help="The error log file; '-' for stderr.",
        desc="Where greenserve's own messages go.",
    )
    enable_stdio_inheritance: bool = setting(
        "-R", "--enable-stdio-inheritance", kind="switch", default=False, convert=to_bool,
        help="Keep stdin/stdout/stderr open in daemon mode (--daemon).",
        desc="""\
A daemon normally points them at `/dev/null`. Set `PYTHONUNBUFFERED=1` too if the output
should not wait in Python's buffers.""",
    )
    logger_class: str = setting(
        "--logger-class", metavar="STRING", default="gunicorn.glogging.Logger",
        convert=to_str,
        help="A gunicorn Logger subclass of your own (module.Class) for the logs.",
        desc="""\
As in gunicorn: the class (usually a subclass of `gunicorn.glogging.Logger`, so gunicorn must
be installed) is made with the configuration in the master and in each worker, sets up the
`gunicorn.error` and `gunicorn.access` loggers, writes every access line through its
`access(resp, req, environ, request_time)` and reopens its files on `USR1`; greenserve's
own messages go through its `gunicorn.error` logger. A class that cannot be imported or
made stops the start with a one-line error. gunicorn's own classes
(`gunicorn.glogging.Logger`, and `gunicorn.instrument.statsd.Statsd`, which `--statsd-host`
selects anyway) are not loaded: greenserve's logging does what they do.""",
    )
    capture_output: bool = setting(
        "--capture-output", kind="switch", default=False, convert=to_bool,
        help="Redirect stdout/stderr to the file in --error-logfile.",
        desc="""\
What the app prints (and tracebacks Python writes to stderr) ends up in the error log file,
in the master and in every worker: file descriptors 1 and 2 point at it. `USR1` reopens it
with the other log files. No effect when the error log is stderr (`-`).""",
    )
    logconfig: str | None = setting(
        "--log-config", metavar="FILE", default=None, convert=to_opt_str,
        help="A logging configuration file (logging.fileConfig's ini format).",
        desc="""\
Applied in the master and in every worker, as gunicorn does. The file may configure the
`gunicorn.error` and `gunicorn.access` loggers (greenserve's own loggers hand their records to
those) or `greenserve.error` and `greenserve.access` directly. With a logging configuration,
access lines are logged even without `--access-logfile`.""",
    )
    logconfig_dict: dict[str, Any] | None = setting(
        kind="file", default=None, default_doc="{}", convert=_log_dict,
        help="A logging.dictConfig dictionary (config file only).",
        desc="""\
Applied over gunicorn's defaults (a shallow update: your `loggers` replace the default ones)
in the master and every worker; wins over `--log-config-json` and `--log-config`. Name the
`gunicorn.error`/`gunicorn.access` loggers as with gunicorn, or greenserve's own.""",
    )
    logconfig_json: str | None = setting(
        "--log-config-json", metavar="FILE", default=None, convert=to_opt_str,
        help="A JSON file holding a logging.dictConfig dictionary.",
        desc="As `logconfig_dict`, read from a file; wins over `--log-config`.",
    )
    syslog: bool = setting(
        "--log-syslog", kind="switch", default=False, convert=to_bool,
        help="Also send the error log (and the access lines) to syslog.",
        desc="""\
In gunicorn's form, `gunicorn.<prefix>.error: [<pid>] <message>` (`.access` for access lines,
which go to syslog even without `--access-logfile` unless
`--disable-redirect-access-to-syslog`); the prefix is `--log-syslog-prefix`, else the process
name with `:` made `.`. Where to: `--log-syslog-to`.""",
    )
    syslog_addr: str = setting(
        "--log-syslog-to", metavar="SYSLOG_ADDR", default="udp://localhost:514",
        default_doc="platform-specific (Linux: udp://localhost:514)", convert=_syslog_addr,
        help="Where syslog lines go: udp://HOST:PORT, tcp://HOST:PORT or unix://PATH[#type].",
        desc="`unix:///dev/log` is the local syslog daemon's socket on most Linux systems.",
    )
    syslog_prefix: str | None = setting(
        "--log-syslog-prefix", metavar="SYSLOG_PREFIX", default=None, convert=to_opt_str,
        help="The program name part of syslog lines (after 'gunicorn.').",
        desc="Without it, the process name (`--name`, else the app module).",
    )
    syslog_facility: str = setting(
        "--log-syslog-facility", metavar="SYSLOG_FACILITY", default="user", convert=_facility,
        help="The syslog facility: user, daemon, local0 ... local7, and so on.",
        desc="The names of `logging.handlers.SysLogHandler`'s facilities.",
    )
    disable_redirect_access_to_syslog: bool = setting(
        "--disable-redirect-access-to-syslog", kind="switch", default=False,
        convert=to_bool,
        help="With --log-syslog, keep access lines out of syslog.",
        desc="Access lines then go only where `--access-logfile` says, if anywhere.",
    )
    statsd_host: str | None = setting(
        "--statsd-host", metavar="STATSD_ADDR", default=None, convert=_statsd_host,
        help="Send StatsD metrics to HOST:PORT or unix:PATH.",
        desc="""\
gunicorn's metrics and names, over UDP (or a unix datagram socket): per request
`gunicorn.request.duration` (ms), `gunicorn.requests` and `gunicorn.request.status.<code>`;
`gunicorn.workers` from the master; `gunicorn.log.critical`/`error`/`warning`/`exception`
per error-log record; and what hooks log with `extra={"metric": ..., "value": ...,
"mtype": "gauge"|"counter"|"histogram"}`. The port defaults to 8125.""",
    )
    statsd_prefix: str = setting(
        "--statsd-prefix", metavar="STATSD_PREFIX", default="", convert=to_str,
        help="A prefix for every StatsD metric name (a dot is added).",
        desc="`--statsd-prefix myapp` sends `myapp.gunicorn.requests`.",
    )
    dogstatsd_tags: str = setting(
        "--dogstatsd-tags", metavar="DOGSTATSD_TAGS", default="", convert=to_str,
        help="Tags for every StatsD metric (DogStatsD), comma-separated key:value.",
        desc="Appended as `|#TAGS` to every line sent.",
    )
    enable_backlog_metric: bool = setting(
        "--enable-backlog-metric", kind="switch", default=False, convert=to_bool,
        help="Send the listeners' accept-queue length as gunicorn.backlog (Linux).",
        desc="""\
The master sends the connections waiting to be accepted on its TCP listeners about once a
second (a StatsD histogram, as gunicorn); needs `--statsd-host`.""",
    )
    loglevel: str = setting(
        "--log-level", metavar="LEVEL", default="info", choices=LOG_LEVELS,
        convert=_loglevel,
        help="The error log level: debug, info, warning, error or critical.",
        desc="The level is matched case-insensitively.",
    )
