"""gunicorn-compatible logging: the error log format and the access log atoms."""

from __future__ import annotations

import base64
import logging
import os
import sys
import time
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .config import Config
    from .h2stream import AnyStream
    from .metrics import StatsD

ERROR_FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S %z"
LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}


def _handler(target: str | None, default_stream: Any) -> logging.Handler:
    if target in (None, "-"):
        return logging.StreamHandler(default_stream)
    return logging.FileHandler(target, encoding="utf-8")


class AccessWriter(Protocol):
    """What writes a finished request's access line: :class:`AccessLog`, or a
    ``--logger-class`` of the user's own (:class:`~greenserve.loggerclass.ClassAccess`)."""

    def log(self, stream: AnyStream, environ: dict[str, Any], duration: float) -> None:
        """Write the line (errors are logged, not raised)."""


def setup(cfg: Config) -> AccessWriter | None:
    """Configure the ``greenserve.error`` and ``greenserve.access`` loggers from ``cfg``; the
    returned object writes each finished request's access line and metrics (None: neither).

    Raises :class:`~greenserve.logconfig.LogConfigError` for a logging configuration
    (``--log-config`` and the like) that cannot be applied.
    """
    from . import logconfig, loggerclass, metrics, syslogging

    error = logging.getLogger("greenserve.error")
    access = logging.getLogger("greenserve.access")
    where = logconfig.source(cfg)
    configured = where is not None
    if where is not None:
        logconfig.apply(cfg, where)  # routes both loggers, as the configuration says
    else:
        error.handlers.clear()
        handler = _handler(cfg.errorlog, sys.stderr)
        handler.setFormatter(logging.Formatter(ERROR_FORMAT, DATE_FORMAT))
        error.addHandler(handler)
        error.setLevel(LEVELS.get(cfg.loglevel.lower(), logging.INFO))
        error.propagate = False
        access.handlers.clear()
        if cfg.accesslog is not None:
            access_handler = _handler(cfg.accesslog, sys.stdout)
            access_handler.setFormatter(logging.Formatter("%(message)s"))
            access.addHandler(access_handler)
            access.setLevel(logging.INFO)
            access.propagate = False
    _capture_output(cfg.errorlog if cfg.capture_output else None)
    global _custom
    _custom = loggerclass.load(cfg)  # a --logger-class of the user's own, if any
    statsd = metrics.configure(cfg, error)
    line: AccessWriter | None
    if _custom is not None:  # it does its own syslog, and decides about access lines
        line = loggerclass.ClassAccess(_custom, cfg)
    else:
        to_syslog = syslogging.add_handlers(cfg, error, access)
        # As gunicorn: a logging configuration and syslog log access lines without a file.
        line = AccessLog(cfg.access_log_format, access) \
            if configured or to_syslog or cfg.accesslog is not None else None
    return line if statsd is None else RequestReport(line, statsd)


class RequestReport:
    """What a finished request reports: its access line (if the access log is on) and its
    StatsD metrics (``--statsd-host``); stands in for :class:`AccessLog`."""

    def __init__(self, line: AccessWriter | None, statsd: StatsD) -> None:
        self.line = line
        self.statsd = statsd

    def log(self, stream: AnyStream, environ: dict[str, Any], duration: float) -> None:
        if self.line is not None:
            self.line.log(stream, environ, duration)
        self.statsd.request(stream.status, duration)


class _Atoms(dict[str, Any]):
    """Missing atoms render as ``-``, as in gunicorn."""

    def __missing__(self, key: str) -> str:
        return "-"


class AccessLog:
    """Formats one line per request with gunicorn's ``access_log_format`` atoms."""

    def __init__(self, fmt: str, logger: logging.Logger) -> None:
        self.fmt = fmt
        self.logger = logger
        self.pid = f"<{os.getpid()}>"

    def log(self, stream: AnyStream, environ: dict[str, Any], duration: float) -> None:
        """Write the access line for a finished request."""
        try:
            self.logger.info(self.fmt, self.atoms(stream, environ, duration))
        except Exception:
            logging.getLogger("greenserve.error").exception("Failed to log access line")

    def atoms(
        self, stream: AnyStream, environ: dict[str, Any], duration: float
    ) -> _Atoms:
        """The atom values for one request (public so tests and hooks can use them)."""
        status = stream.status
        sent = stream.bytes_sent
        method = environ.get("REQUEST_METHOD", "-")
        protocol = environ.get("SERVER_PROTOCOL", "-")
        atoms = _Atoms(
            h=environ.get("REMOTE_ADDR") or "-",
            l="-",
            u=_basic_user(environ.get("HTTP_AUTHORIZATION")),
            t=time.strftime("[%d/%b/%Y:%H:%M:%S %z]"),
            r=f"{method} {environ.get('RAW_URI', '-')} {protocol}",
            s=str(status) if status is not None else "-",
            m=method,
            U=environ.get("PATH_INFO", "-"),
            q=environ.get("QUERY_STRING", ""),
            H=protocol,
            b=str(sent) if sent else "-",
            B=sent,
            f=environ.get("HTTP_REFERER", "-"),
            a=environ.get("HTTP_USER_AGENT", "-"),
            T=int(duration),
            M=int(duration * 1000),
            D=int(duration * 1_000_000),
            L=f"{duration:.6f}",
            p=self.pid,
        )
        for key, value in environ.items():
            if key.startswith("HTTP_"):
                atoms["{%s}i" % key[5:].lower().replace("_", "-")] = value
            elif isinstance(value, str):
                atoms["{%s}e" % key.lower()] = value
        atoms["{content-type}i"] = environ.get("CONTENT_TYPE", "-")
        atoms["{content-length}i"] = environ.get("CONTENT_LENGTH", "-")
        for name, value in stream.response_headers:
            atoms["{%s}o" % name.decode("latin-1").lower()] = value.decode("latin-1")
        return atoms


def _basic_user(auth: str | None) -> str:
    if not auth or not auth.lower().startswith("basic "):
        return "-"
    try:
        user = base64.b64decode(auth[6:].strip()).decode("latin-1").split(":", 1)[0]
    except ValueError:
        return "-"
    return user or "-"


#: the error log file that stdout/stderr point at (--capture-output), if any
_captured: Any = None
#: the --logger-class object of the user's own, when there is one (USR1 reopens its files)
_custom: Any = None


def _capture_output(path: str | None) -> None:
    """Point fds 1 and 2 at ``path`` (gunicorn's --capture-output); None stops capturing
    (the fds keep pointing at the file: what was captured stays captured)."""
    global _captured
    previous, _captured = _captured, None
    if path in (None, "-"):
        if previous is not None:
            previous.close()
        return
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    _captured = open(path, "a", encoding="utf-8")  # noqa: SIM115 - kept open on purpose
    os.dup2(_captured.fileno(), sys.stdout.fileno())
    os.dup2(_captured.fileno(), sys.stderr.fileno())
    if previous is not None:
        previous.close()


def reopen() -> None:
    """Reopen log files (USR1), so logrotate can move them away."""
    if _captured is not None:
        _capture_output(_captured.name)
    if _custom is not None:
        _custom.reopen_files()
    for name in ("greenserve.error", "greenserve.access"):
        for handler in logging.getLogger(name).handlers:
            if isinstance(handler, logging.FileHandler):
                # Closing is enough: FileHandler reopens (append mode) on the next record.
                handler.acquire()
                try:
                    handler.close()
                finally:
                    handler.release()
