"""Build greenserve with its request path compiled by mypyc (not part of the package).

    .venv/bin/python tools/build_compiled.py [DEST]   (default: build/compiled)
    .venv/bin/python tools/build_compiled.py --in-place | --clean

Copies ``greenserve/`` to ``DEST/greenserve`` and compiles the modules ``setup.py`` lists
there, as ``GREENSERVE_COMPILE=1 pip install .`` does for a deployment (mypyc is part of
mypy; it needs a C compiler and the Python headers). Use ``DEST`` with
``PYTHONPATH=DEST`` (``tools/request_micro.py``) or as ``greenserve@DEST`` in
``tools/request_profile.py``; ``loadtests/bench.py`` builds it for its
``greenserve-compiled`` column.

``--in-place`` builds in a temporary copy and puts the C extensions beside the checkout's
own modules, where Python imports them first, so that every process the test suite starts
runs them, whatever its path (``make unit-compiled``); ``--clean`` removes them again.
Until then an edit to a compiled module does not take effect: ``make unit`` cleans first.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "greenserve"
_SUFFIX = ".so"


def build(dest: Path) -> list[Path]:
    """Copy the package to ``dest`` and compile it there; returns the extensions made."""
    target = dest / "greenserve"
    shutil.rmtree(target, ignore_errors=True)
    shutil.rmtree(dest / "build", ignore_errors=True)
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copytree(PACKAGE, target, ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    env = {**os.environ, "GREENSERVE_COMPILE": "1"}
    # setup.py from the checkout, run in dest: setuptools finds no pyproject.toml there, and
    # builds the extensions beside dest's copy of each module.
    done = subprocess.run([sys.executable, str(ROOT / "setup.py"), "build_ext", "--inplace"],
                          cwd=dest, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"compiling failed:\n{done.stdout[-4000:]}{done.stderr[-4000:]}")
    return sorted(target.rglob(f"*{_SUFFIX}"))


def clean() -> list[Path]:
    """Remove the C extensions from the checkout's package; returns them."""
    found = sorted(PACKAGE.rglob(f"*{_SUFFIX}"))
    for path in found:
        path.unlink()
    return found


def in_place() -> list[Path]:
    """Build in a temporary copy, then put the extensions into the checkout's package."""
    clean()
    with tempfile.TemporaryDirectory(prefix="greenserve-compiled-") as tmp:
        built = build(Path(tmp))
        placed = []
        for path in built:
            into = PACKAGE / path.relative_to(Path(tmp) / "greenserve")
            shutil.copy2(path, into)
            placed.append(into)
    return placed


def _count(paths: list[Path]) -> str:
    """"N modules", not counting mypyc's shared library (one more extension)."""
    modules = [p for p in paths if not p.name.startswith("_mypyc__mypyc")]
    return f"{len(modules)} modules (and mypyc's shared library)" if len(modules) < len(
        paths) else f"{len(modules)} modules"


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("dest", nargs="?", default=str(ROOT / "build" / "compiled"))
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--in-place", action="store_true",
                      help="put the extensions into the checkout's greenserve/")
    mode.add_argument("--clean", action="store_true",
                      help="remove the extensions from the checkout's greenserve/")
    opts = p.parse_args()
    if opts.clean:
        print(f"removed {_count(clean())} from {PACKAGE}")
    elif opts.in_place:
        print(f"compiled {_count(in_place())} into {PACKAGE}")
    else:
        dest = Path(opts.dest).resolve()
        print(f"compiled {_count(build(dest))} into {dest / 'greenserve'}")


if __name__ == "__main__":
    main()
