"""Dirty apps: what ``--dirty-app module:Class[:N]`` names, and how a dirty worker loads it."""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import Any


class DirtyApp:
    """Base class of a dirty app (as gunicorn's ``gunicorn.dirty.DirtyApp``).

    Made once in each dirty worker that loads it; :meth:`init` loads what is slow to load
    (a model, a large index), then every public method is an action HTTP workers call by
    name through the dirty client. ``workers`` (or ``:N`` in ``--dirty-app``) caps how many
    dirty workers load the app, for apps too large to hold in every one.
    """

    workers: int | None = None

    def init(self) -> None:
        """Called once in the dirty worker, before it takes calls."""

    def __call__(self, action: str, *args: Any, **kwargs: Any) -> Any:
        """Run ``action``: the public method of that name."""
        method = getattr(self, action, None) if not action.startswith("_") else None
        if method is None or not callable(method) or action in _NOT_ACTIONS:
            raise ValueError(f"Unknown action: {action}")
        return method(*args, **kwargs)

    def close(self) -> None:
        """Called once when the dirty worker stops."""


_NOT_ACTIONS = frozenset(("init", "close"))


@dataclass(frozen=True)
class AppSpec:
    """One ``--dirty-app``: the import path calls name it by, and its worker limit."""

    import_path: str  # module:Class
    limit: int | None


def parse_spec(spec: str) -> AppSpec:
    """``module:Class`` or ``module:Class:N`` (ValueError with what is wrong)."""
    parts = spec.split(":")
    if len(parts) not in (2, 3) or not all(parts[:2]):
        raise ValueError(f"--dirty-app {spec!r}: expected module:Class or module:Class:N")
    limit = None
    if len(parts) == 3:
        if not parts[2].isdigit() or int(parts[2]) < 1:
            raise ValueError(f"--dirty-app {spec!r}: N must be a whole number of at least 1")
        limit = int(parts[2])
    return AppSpec(f"{parts[0]}:{parts[1]}", limit)


def load_class(import_path: str) -> type:
    """The class ``module:Class`` names (ImportError/AttributeError say what is missing)."""
    module_name, _, class_name = import_path.partition(":")
    module = importlib.import_module(module_name)
    cls = getattr(module, class_name)
    if not inspect.isclass(cls):
        raise TypeError(f"{import_path} is not a class")
    for name in ("init", "__call__", "close"):
        if not callable(getattr(cls, name, None)):
            raise TypeError(f"{import_path} has no {name}(): subclass DirtyApp")
    return cls


def worker_limit(spec: AppSpec) -> int | None:
    """How many dirty workers load the app: ``:N``, else the class's ``workers``."""
    if spec.limit is not None:
        return spec.limit
    limit = getattr(load_class(spec.import_path), "workers", None)
    return limit if isinstance(limit, int) and limit > 0 else None
