"""``--log-config`` (fileConfig), ``--log-config-json`` and ``logconfig_dict`` (dictConfig).

As gunicorn: the user's configuration is applied over gunicorn's defaults (a shallow update
of the dict: the user's ``loggers`` replace the default ones), and it may configure the
``gunicorn.error`` and ``gunicorn.access`` loggers, which existing configurations name.
greenserve's own loggers (``greenserve.error``, ``greenserve.access``) then hand their records
to those, unless the configuration set up greenserve's loggers itself.
"""

from __future__ import annotations

import configparser
import copy
import json
import logging
import logging.config
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import Config

#: gunicorn's logging defaults (glogging.CONFIG_DEFAULTS), what a user's dict updates
CONFIG_DEFAULTS: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": "INFO", "handlers": ["console"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["error_console"], "propagate": True,
                           "qualname": "gunicorn.error"},
        "gunicorn.access": {"level": "INFO", "handlers": ["console"], "propagate": False,
                            "qualname": "gunicorn.access"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "generic",
                    "stream": "ext://sys.stdout"},
        "error_console": {"class": "logging.StreamHandler", "formatter": "generic",
                          "stream": "ext://sys.stderr"},
    },
    "formatters": {
        "generic": {"format": "%(asctime)s [%(process)d] [%(levelname)s] %(message)s",
                    "datefmt": "[%Y-%m-%d %H:%M:%S %z]", "class": "logging.Formatter"},
    },
}
#: greenserve's logger -> the gunicorn logger configurations name
ROUTES = {"greenserve.error": "gunicorn.error", "greenserve.access": "gunicorn.access"}


class LogConfigError(RuntimeError):
    """The logging configuration could not be applied; the message is one line."""


@dataclass(frozen=True)
class Source:
    """Where a logging configuration comes from: ``kind`` is ``dict``, ``json`` or ``ini``;
    ``label`` names it in error messages; ``path`` is the file (empty for the dict)."""

    kind: str
    label: str
    path: str = ""


def source(cfg: Config) -> Source | None:
    """The logging configuration ``cfg`` has, by precedence (dict, JSON file, ini file, a
    ``--paste`` file with a ``[loggers]`` section), or None."""
    if cfg.logconfig_dict:
        return Source("dict", "logconfig_dict")
    if cfg.logconfig_json:
        return Source("json", f"--log-config-json {cfg.logconfig_json}", cfg.logconfig_json)
    if cfg.logconfig:
        return Source("ini", f"--log-config {cfg.logconfig}", cfg.logconfig)
    paste = _paste_logging(cfg)
    if paste is not None:
        return Source("ini", f"--paste {cfg.paste}", paste)
    return None


def _paste_logging(cfg: Config) -> str | None:
    """The ``--paste`` ini file, when it has a ``[loggers]`` section (gunicorn uses it)."""
    if not cfg.paste:
        return None
    from .app.paste import config_file

    path = config_file(cfg.paste)
    if path is None:
        return None
    parser = configparser.ConfigParser()
    parser.read([path])
    return path if parser.has_section("loggers") else None


def apply(cfg: Config, where: Source) -> None:
    """Apply the configuration ``where`` names, then route greenserve's loggers (see the
    module doc)."""
    for name in ROUTES:
        logging.getLogger(name).handlers.clear()
    try:
        if where.kind == "dict":
            _dict_config(dict(cfg.logconfig_dict or {}))
        elif where.kind == "json":
            with open(where.path, encoding="utf-8") as fh:
                _dict_config(json.load(fh))
        else:
            if not os.path.exists(where.path):
                raise LogConfigError(f"log config '{where.path}' not found")
            defaults = {"__file__": where.path, "here": os.path.dirname(where.path)}
            logging.config.fileConfig(where.path, defaults=defaults,
                                      disable_existing_loggers=False)
    except LogConfigError:
        raise
    except (OSError, ValueError, TypeError, AttributeError, ImportError, KeyError,
            configparser.Error) as exc:
        raise LogConfigError(f"{where.label}: {exc}") from None
    for mine, theirs in ROUTES.items():
        _route(logging.getLogger(mine), logging.getLogger(theirs))


def _dict_config(user: dict[str, Any]) -> None:
    config = copy.deepcopy(CONFIG_DEFAULTS)
    config.update(user)
    logging.config.dictConfig(config)


def forward(mine: logging.Logger, theirs: logging.Logger) -> None:
    """Send ``mine``'s records to ``theirs`` only (its handlers replace ``mine``'s)."""
    mine.handlers.clear()
    _route(mine, theirs)


def _route(mine: logging.Logger, theirs: logging.Logger) -> None:
    if mine.handlers:
        return  # the configuration set greenserve's logger up itself
    mine.propagate = False
    mine.setLevel(theirs.getEffectiveLevel())
    mine.addHandler(_Forward(theirs))


class _Forward(logging.Handler):
    """Hands each record to another logger (and its handlers and parents), under that
    logger's name: formats and filters written for ``gunicorn.error`` see their name."""

    def __init__(self, target: logging.Logger) -> None:
        super().__init__()
        self.target = target

    def emit(self, record: logging.LogRecord) -> None:
        if self.target.isEnabledFor(record.levelno):
            record = copy.copy(record)
            record.name = self.target.name
            self.target.handle(record)
