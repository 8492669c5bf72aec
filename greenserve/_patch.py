"""Patch the process with gevent, once, and say so when that came too late for some modules.

A module imported before ``gevent.monkey.patch_all()`` may have captured the unpatched
``socket``, ``ssl`` or lock objects (``from socket import socket``, a module-level lock in
``concurrent.futures``, a DB driver's C extension). gevent warns about some of these itself,
in several multi-line warnings; greenserve replaces them with one line that also says who
imported the modules, when that can be found (gunicorn #3482).
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Iterable
from types import ModuleType

#: modules that hold unpatched references when imported before patching
CONCERNING: tuple[str, ...] = (
    "ssl", "socket", "selectors", "http.client", "urllib3", "requests",
    "httpx", "asyncio", "concurrent.futures",
    # database and network drivers known to keep references to socket or threading objects
    "psycopg2", "psycopg", "pymysql", "MySQLdb", "redis", "pymongo", "grpc", "cassandra",
    "pylibmc", "memcache", "kombu", "amqp", "boto3", "botocore",
)
#: modules that import the concerning ones as a matter of course; they are not "importers"
_IGNORED_IMPORTERS = frozenset({"__main__", "gevent", "greenlet", "_pytest", "pytest"})

_patched = False
#: what was imported before greenserve itself started (see :func:`snapshot`)
_baseline: frozenset[str] | None = None


def snapshot() -> None:
    """Remember the modules imported before greenserve started (by sitecustomize, .pth...).

    The master imports ``socket`` and ``select`` itself to bind and wait, and forks the
    workers, which patch afterwards: only modules from before this snapshot are the user's
    early imports worth a warning.
    """
    global _baseline
    _baseline = frozenset(sys.modules)


def patch(*, warn: Callable[[str], None] | None = None) -> None:
    """Call ``gevent.monkey.patch_all()`` the first time; later calls do nothing.

    Before patching, modules from :data:`CONCERNING` already in ``sys.modules`` are reported in
    one warning line (to ``warn``, by default stderr). gevent's own MonkeyPatchWarning is
    silenced so that this is the only line.
    """
    global _patched
    if _patched:
        return
    loaded = sys.modules if _baseline is None else [m for m in sys.modules if m in _baseline]
    early = imported_early(loaded)
    from gevent import monkey

    if early and not monkey.is_module_patched("socket"):
        # Someone (a config file, sitecustomize) may have patched already; then the early
        # imports happened after their patch_all() and are fine.
        (warn or _to_stderr)(early_import_message(early, find_importers(early)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", monkey.MonkeyPatchWarning)
        monkey.patch_all()
    _patched = True


def imported_early(modules: Iterable[str]) -> list[str]:
    """The :data:`CONCERNING` names among ``modules``, in the order of that tuple."""
    present = set(modules)
    return [name for name in CONCERNING if name in present]


def early_import_message(names: list[str], importers: list[str]) -> str:
    """The warning line for modules imported before patching."""
    by = f" (imported by: {', '.join(importers)})" if importers else ""
    return (
        f"modules imported before gevent patching: {', '.join(names)}; they may hold "
        f"unpatched references{by} — import them after greenserve starts, e.g. inside the "
        "app module, not from sitecustomize, .pth files or the config file"
    )


def find_importers(names: list[str]) -> list[str]:
    """Best-effort: non-stdlib modules whose globals refer to one of the ``names`` modules.

    Catches ``import ssl`` and ``from ssl import SSLContext`` in e.g. sitecustomize; a module
    that imported them only indirectly is not found.
    """
    wanted = set(names)
    found = [
        name for name, module in list(sys.modules.items())
        if module is not None and _is_candidate(name) and _refers_to(vars(module), wanted)
    ]
    return sorted(found)


def _is_candidate(name: str) -> bool:
    top = name.partition(".")[0]
    return not (
        top in sys.stdlib_module_names
        or top in _IGNORED_IMPORTERS
        or top == "greenserve"
        or any(name == c or name.startswith(c + ".") for c in CONCERNING)
    )


def _refers_to(namespace: dict[str, object], wanted: set[str]) -> bool:
    for value in list(namespace.values()):
        try:
            origin = value.__name__ if isinstance(value, ModuleType) else getattr(
                value, "__module__", None)
        except Exception:  # a lazy proxy object may raise from any attribute access
            continue
        if isinstance(origin, str) and any(
            origin == w or origin.startswith(w + ".") for w in wanted
        ):
            return True
    return False


def _to_stderr(message: str) -> None:
    print(f"greenserve: warning: {message}", file=sys.stderr, flush=True)
