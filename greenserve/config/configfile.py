"""Config File settings, and reading a ``gunicorn.conf.py``-style file.

The file is Python; its module globals are matched against the settings registry by
``greenserve.config.load`` (unknown names are errors there, with a did-you-mean).
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass
from typing import ClassVar

from .spec import setting, to_str

DEFAULT_CONFIG_FILE = "./gunicorn.conf.py"
#: the ``__name__`` a config file runs under; functions defined in it carry it as __module__
MODULE_NAME = "__config__"


class ConfigFileError(Exception):
    """The config file is missing or raised; ``__cause__`` holds the user's exception."""


@dataclass(frozen=True, kw_only=True)
class ConfigFileSettings:
    """Config File."""

    SECTION: ClassVar[str] = "Config File"

    config: str = setting(
        "-c", "--config", metavar="CONFIG", default=DEFAULT_CONFIG_FILE, convert=to_str,
        help="The config file: PATH, file:PATH or python:MODULE.",
        desc="""\
A Python file whose module-level names are settings (`workers = 4`,
`bind = ["0.0.0.0:8000"]`); gunicorn config files work unchanged. `./gunicorn.conf.py` is
read when it exists and no other file is named. Only the command line and
`GUNICORN_CMD_ARGS`/`GREENSERVE_CMD_ARGS` can name the file. Values in the file override the
environment-backed defaults and are overridden by the command line. A name that is not a
setting is an error (prefix helper variables with `_`); gunicorn settings greenserve does not
implement yet, such as the SSL settings, are accepted with a warning. Server hooks can only be
set here (see docs/how-to/hooks.md).""",
    )


def read_config_file(location: str, *, explicit: bool) -> dict[str, object] | None:
    """Run the config file at ``location`` and return its globals.

    Returns None when ``location`` is the default and does not exist. Raises
    :class:`ConfigFileError` when an explicitly named file is missing or when the file raises.
    """
    if location.startswith("python:"):
        return _module_globals(location[len("python:"):])
    path = location.removeprefix("file:")
    if not os.path.exists(path):
        if explicit:
            raise ConfigFileError(f"config file {path!r} does not exist")
        return None
    try:
        with open(path, "rb") as fh:
            code = compile(fh.read(), path, "exec")
    except (OSError, SyntaxError, ValueError) as exc:
        raise ConfigFileError(f"cannot read config file {path!r}: {exc}") from exc
    namespace: dict[str, object] = {"__file__": path, "__name__": MODULE_NAME}
    try:
        exec(code, namespace)  # running the user's config file is the point
    except Exception as exc:
        raise ConfigFileError(f"config file {path!r} raised {type(exc).__name__}: {exc}") from exc
    return namespace


def _module_globals(module: str) -> dict[str, object]:
    # `python:conf.mod` names a module next to where greenserve runs, as with gunicorn,
    # whether it was started as a console script or with `python -m`.
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return dict(vars(importlib.import_module(module)))
    except Exception as exc:
        raise ConfigFileError(
            f"cannot import config module {module!r}: {type(exc).__name__}: {exc}"
        ) from exc
