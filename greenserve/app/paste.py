"""``--paste``: the app from a PasteDeploy ini file (Pyramid and other Paste apps), as gunicorn.

``--paste production.ini`` loads the ``[app:main]`` section (``production.ini#name`` another
one, and any ``config:``/``egg:`` URI works), with ``--paste-global KEY=VALUE`` as the global
configuration; a ``[loggers]`` section in the file configures logging (see
:mod:`greenserve.logconfig`). Needs the PasteDeploy package (``pip install greenserve[paste]``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..config import Config


def config_file(paste: str) -> str | None:
    """The ini file a ``--paste`` value names (None for an ``egg:`` or other URI)."""
    if paste.startswith("config:"):
        paste = paste[len("config:"):]
    elif ":" in paste.split("#", 1)[0]:
        return None
    return os.path.abspath(paste.split("#", 1)[0])


def load(cfg: Config) -> Callable[..., Any]:
    """Load the app ``cfg.paste`` names; raises the loading module's AppLoadError."""
    from .loading import AppLoadError

    assert cfg.paste is not None
    try:
        from paste.deploy import loadapp  # type: ignore[import-untyped]
    except ImportError:
        raise AppLoadError("--paste needs PasteDeploy: pip install PasteDeploy "
                           "(or greenserve[paste])") from None
    path = config_file(cfg.paste)
    if path is not None and not os.path.exists(path):
        raise AppLoadError(f"--paste: no such file: {path}")
    _, hash_, name = cfg.paste.partition("#")
    uri = cfg.paste if path is None else f"config:{path}{hash_}{name}"
    global_conf = dict(item.split("=", 1) for item in cfg.raw_paste_global_conf)
    try:
        app: Callable[..., Any] = loadapp(uri, relative_to=os.getcwd(), global_conf=global_conf)
    except Exception as exc:
        raise AppLoadError(f"--paste {cfg.paste}: {type(exc).__name__}: {exc}",
                           user_error=exc) from exc
    return app
