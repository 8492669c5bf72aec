"""The build under test is the one asked for: pure Python, or the compiled request path.

``make test`` runs the suite twice: on the checkout (pure Python), then with
``GREENSERVE_EXPECT_COMPILED=1`` on ``build/compiled`` (``tools/build_compiled.py``). If the
compiled modules were not the ones imported, in this process or in the servers the tests
start, the second run would test pure Python twice and say nothing: this fails instead.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import Any

import greenserve.connection
from greenserve import __version__, build

EXPECT_COMPILED = os.environ.get("GREENSERVE_EXPECT_COMPILED", "") == "1"
COMPILED_NOTE = "(request path compiled with mypyc)"


def test_this_process_imports_the_expected_build() -> None:
    assert build.compiled() is EXPECT_COMPILED
    assert greenserve.connection.__file__ is not None
    assert greenserve.connection.__file__.endswith(".py") is not EXPECT_COMPILED


def test_a_server_started_by_the_tests_runs_the_expected_build(serve: Any) -> None:
    server = serve("wsgi_apps:routes")
    assert server.has_logged(f"Starting greenserve {__version__}")
    started = re.search(r"Starting greenserve (.*)", server.logs())
    assert started is not None
    assert (COMPILED_NOTE in started.group(1)) is EXPECT_COMPILED


def test_version_says_which_build() -> None:
    out = subprocess.run([sys.executable, "-m", "greenserve", "--version"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    assert out.startswith(f"greenserve (version {__version__}")
    assert (COMPILED_NOTE in out) is EXPECT_COMPILED
