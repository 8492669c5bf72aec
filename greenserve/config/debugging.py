"""Debugging settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .spec import setting, to_bool


@dataclass(frozen=True, kw_only=True)
class DebuggingSettings:
    """Debugging."""

    SECTION: ClassVar[str] = "Debugging"

    check_config: bool = setting(
        "--check-config", kind="switch", default=False, convert=to_bool,
        help="Check the configuration and that the app loads, then exit.",
        desc="""\
Exits 0 when the settings are valid and the application imports and resolves to a callable;
otherwise exits non-zero with a one-line error (4 when the app fails to load).""",
    )
    print_config: bool = setting(
        "--print-config", kind="switch", default=False, convert=to_bool,
        help="Print the resolved configuration, then exit.",
        desc="Prints every setting after merging all sources, one per line, and exits 0.",
    )
