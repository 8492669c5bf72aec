"""The sans-io line: nothing under ``greenserve/protocol/`` may import I/O or a clock.

Parsing every module with ``ast`` (instead of importing it) also catches imports hidden in
functions or behind ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PROTOCOL = Path(__file__).resolve().parents[1] / "greenserve" / "protocol"
FORBIDDEN = {"gevent", "socket", "ssl", "asyncio", "threading", "time", "select", "selectors"}
MODULES = sorted(PROTOCOL.glob("*.py"))


def imported_modules(tree: ast.AST) -> set[str]:
    """Top-level names of every module an ``import``/``from ... import`` statement names."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_the_protocol_package_has_modules() -> None:
    assert {p.name for p in MODULES} >= {"events.py", "base.py", "policy.py", "h1.py"}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_no_io_imports(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    assert not imported_modules(tree) & FORBIDDEN


def test_the_checker_sees_hidden_imports() -> None:
    source = "def f():\n    import time\n    from gevent.socket import socket\n"
    assert imported_modules(ast.parse(source)) == {"time", "gevent"}
