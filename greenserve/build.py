"""Which build of greenserve this is: pure Python, or with the request path compiled.

``GREENSERVE_COMPILE=1 pip install greenserve`` compiles the modules of the request path
with mypyc (``setup.py``); each keeps its ``.py`` beside it and its behaviour.
"""

from __future__ import annotations

from importlib.util import find_spec


def compiled() -> bool:
    """True when the request path runs as C extensions (found, not imported)."""
    spec = find_spec("greenserve.connection")
    return spec is not None and not (spec.origin or "").endswith(".py")


def describe(version: str) -> str:
    """``version``, saying so when the build is the compiled one (logs, ``--version``)."""
    return f"{version} (request path compiled with mypyc)" if compiled() else version
