"""Build hook: everything is declared in pyproject.toml; this file only adds the optional
mypyc-compiled request path.

``GREENSERVE_COMPILE=1 pip install .`` (or ``pip wheel .``) compiles :data:`COMPILED` with
mypyc into C extensions next to the pure-Python modules, which stay in the wheel (Python
imports the extension first). Needs a C compiler and the Python headers; the in-tree
backend (``_build/backend.py``) adds mypy to the build requirements only then. Without the
variable, and for editable installs, the build is pure Python.
"""

from __future__ import annotations

import os
from typing import Any

from setuptools import setup

#: the modules every HTTP/1 request runs through, WSGI or ASGI (docs/architecture.md,
#: "Compiled build"); tools/build_compiled.py compiles the same list.
COMPILED = [
    "greenserve/connection.py",
    "greenserve/protocol/events.py",
    "greenserve/protocol/h1_base.py",
    "greenserve/protocol/h1_fast.py",
    # (the other two BaseH1Connection classes: Python classes cannot subclass compiled ones)
    "greenserve/protocol/h1.py",
    "greenserve/protocol/uwsgi.py",
    "greenserve/app/wsgi.py",
    "greenserve/app/wsgi_environ.py",
    "greenserve/app/wsgi_input.py",
    "greenserve/streams.py",
    "greenserve/protocol/policy.py",
    "greenserve/protocol/writer.py",
    "greenserve/trust.py",
    "greenserve/dates.py",
    # ASGI: the adapter, the cycle (h2cycle's class subclasses it), the scope, the loop bridge
    "greenserve/asgi/http.py",
    "greenserve/asgi/h2cycle.py",
    "greenserve/asgi/scope.py",
    "greenserve/asgi/adapter.py",
    "greenserve/asgi/loophook.py",
    "greenserve/asgi/bridge.py",
    "greenserve/asgi/handoff.py",
    "greenserve/asgi/eager.py",
]


def compile_requested() -> bool:
    """``GREENSERVE_COMPILE`` is set to something other than empty or 0."""
    return os.environ.get("GREENSERVE_COMPILE", "") not in ("", "0")


#: the name of mypyc's shared library: inside the package, so that the compiled modules
#: import it wherever the package is found (an editable checkout, a copy on PYTHONPATH)
GROUP = "greenserve._mypyc"
#: mypy's settings for mypyc: pyproject.toml's [tool.mypy] (its file list does not apply:
#: mypycify names the files)
MYPY_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pyproject.toml")


def compiled_extensions() -> list[Any]:
    """mypyc's extensions for :data:`COMPILED` (run from the directory holding greenserve/)."""
    from mypyc.build import mypycify

    return list(mypycify(["--config-file", MYPY_CONFIG, *COMPILED], group_name=GROUP,
                         opt_level="3"))


if __name__ == "__main__":
    setup(ext_modules=compiled_extensions() if compile_requested() else [])
