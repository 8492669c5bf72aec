"""A ``--logger-class`` of the user's own: a subclass of gunicorn's ``glogging.Logger``.

gunicorn deploys customise their logs this way (JSON access lines, another error format):
the class is made with the config (``cls(cfg)``: greenserve's :class:`~greenserve.config.Config`
has gunicorn's setting names), sets up the ``gunicorn.error`` and ``gunicorn.access``
loggers itself, and gets ``access(resp, req, environ, request_time)`` for each request, with
gunicorn's request and response attributes (:class:`~greenserve.hooks.RequestInfo`,
:class:`~greenserve.hooks.ResponseInfo`) and a ``datetime.timedelta``. greenserve's own
messages then go through its ``gunicorn.error`` logger, and ``USR1`` calls its
``reopen_files()``. gunicorn's own classes are not loaded: greenserve's logging does what
they do (see the setting).
"""

from __future__ import annotations

import datetime
import importlib
import logging
import os
from typing import TYPE_CHECKING, Any

from .config.logging import GUNICORN_LOGGERS
from .config.naming import process_name
from .hooks import RequestInfo, ResponseInfo
from .logconfig import LogConfigError, forward

if TYPE_CHECKING:
    from .config import Config
    from .h2stream import AnyStream


def load(cfg: Config) -> Any | None:
    """The user's logger, made with ``cfg``; None for gunicorn's own classes.

    Raises :class:`LogConfigError` (one line) when the class cannot be imported or made.
    """
    path = cfg.logger_class
    if path in GUNICORN_LOGGERS:
        return None
    module_name, sep, name = path.partition(":")
    if not sep:
        module_name, _, name = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise LogConfigError(f"--logger-class {path}: cannot import it ({exc})") from None
    try:
        logger = cls(GunicornView(cfg))
    except Exception as exc:
        raise LogConfigError(f"--logger-class {path}: {type(exc).__name__}: {exc}") from None
    error_log = getattr(logger, "error_log", None)
    if isinstance(error_log, logging.Logger):  # greenserve's messages go through it
        forward(logging.getLogger("greenserve.error"), error_log)
    logging.getLogger("greenserve.access").handlers.clear()  # its access() writes the lines
    return logger


class GunicornView:
    """The config as gunicorn's ``Config`` shows it to a logger: the same settings, but
    ``user`` and ``group`` are the numeric ids (the process's when unset) and ``proc_name``
    is always a name."""

    def __init__(self, cfg: Config) -> None:
        from .process import resolve_group, resolve_user

        self._cfg = cfg
        uid, gid = resolve_user(cfg.user), resolve_group(cfg.group)
        self.user = os.geteuid() if uid is None else uid
        self.group = os.getegid() if gid is None else gid
        self.proc_name = process_name(cfg)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cfg, name)


class ClassAccess:
    """Each finished request's access line, through the user's logger's ``access()``
    (stands in for :class:`~greenserve.logs.AccessLog`)."""

    def __init__(self, logger: Any, cfg: Config) -> None:
        self.logger = logger
        self.header_map = cfg.header_map

    def log(self, stream: AnyStream, environ: dict[str, Any], duration: float) -> None:
        """Hand the request to ``access()`` (unless the logger says access logging is off)."""
        if not getattr(self.logger, "access_log_enabled", True):
            return
        try:
            req = RequestInfo.from_request(
                stream.request, stream.info, scheme=environ.get("wsgi.url_scheme"),
                header_map=self.header_map)
            self.logger.access(ResponseInfo.from_stream(stream), req, environ,
                               datetime.timedelta(seconds=duration))
        except Exception:
            logging.getLogger("greenserve.error").exception("Failed to log access line")
