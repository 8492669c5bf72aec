"""Logging settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .spec import setting, to_bool, to_opt_str, to_str

#: gunicorn's default access-log line, the Apache combined format.
DEFAULT_ACCESS_LOG_FORMAT = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def _loglevel(value: object) -> str:
    # gunicorn matches the level case-insensitively.
    return to_str(value).strip().lower()


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
    capture_output: bool = setting(
        "--capture-output", kind="switch", default=False, convert=to_bool,
        help="Redirect stdout/stderr to the file in --error-logfile.",
        desc="""\
What the app prints (and tracebacks Python writes to stderr) ends up in the error log file,
in the master and in every worker: file descriptors 1 and 2 point at it. `USR1` reopens it
with the other log files. No effect when the error log is stderr (`-`).""",
    )
    loglevel: str = setting(
        "--log-level", metavar="LEVEL", default="info", choices=LOG_LEVELS,
        convert=_loglevel,
        help="The error log level: debug, info, warning, error or critical.",
        desc="The level is matched case-insensitively.",
    )
