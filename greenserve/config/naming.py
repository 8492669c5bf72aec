"""Process Naming settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .spec import setting, to_opt_str


@dataclass(frozen=True, kw_only=True)
class NamingSettings:
    """Process Naming."""

    SECTION: ClassVar[str] = "Process Naming"

    proc_name: str | None = setting(
        "-n", "--name", metavar="STRING", default=None, convert=to_opt_str,
        help="The process name shown by ps and top (needs setproctitle).",
        desc="Without it the name is derived from the app module.",
    )
