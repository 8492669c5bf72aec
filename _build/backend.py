"""The build backend: setuptools', plus mypy as a build requirement when the request path
is to be compiled (``GREENSERVE_COMPILE=1``, see ``setup.py``)."""

from __future__ import annotations

import os
from typing import Any

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F403 - the backend's whole interface

#: what compiles the request path (mypyc ships with mypy)
MYPYC = "mypy>=1.10"


def _compile() -> bool:
    return os.environ.get("GREENSERVE_COMPILE", "") not in ("", "0")


def get_requires_for_build_wheel(config_settings: dict[str, Any] | None = None) -> list[str]:
    if _compile():
        # (not setuptools' own answer, which runs setup.py: that needs mypyc already)
        return [MYPYC]
    return _setuptools.get_requires_for_build_wheel(config_settings)


def build_editable(wheel_directory: str, config_settings: dict[str, Any] | None = None,
                   metadata_directory: str | None = None) -> str:
    # Compiled modules in an editable install would shadow the sources being edited.
    os.environ.pop("GREENSERVE_COMPILE", None)
    return _setuptools.build_editable(wheel_directory, config_settings, metadata_directory)
