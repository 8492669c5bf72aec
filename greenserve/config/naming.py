"""Process Naming settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from .spec import setting, to_opt_str

if TYPE_CHECKING:
    from . import Config


@dataclass(frozen=True, kw_only=True)
class NamingSettings:
    """Process Naming."""

    SECTION: ClassVar[str] = "Process Naming"

    proc_name: str | None = setting(
        "-n", "--name", metavar="STRING", default=None, convert=to_opt_str,
        help="The process name shown by ps and top (needs setproctitle).",
        desc="Without it the name is `default_proc_name`, else the app module.",
    )
    default_proc_name: str | None = setting(
        kind="file", default=None, convert=to_opt_str,
        deviation="unset, the app module is the name (gunicorn also sets it to the app module "
                  "when it loads the app); 'greenserve' without one",
        help="The process name when --name is not given (config file only).",
        desc="As in gunicorn, a value in the config file wins over the app module.",
    )


def process_name(cfg: Config) -> str:
    """The name processes and syslog lines carry: ``--name``, else ``default_proc_name``,
    else the app (module or ``--paste`` file), else ``greenserve``."""
    return cfg.proc_name or cfg.default_proc_name or cfg.app_uri or cfg.paste or "greenserve"
