"""``--http-parser``: which connection class each name selects, and when httptools loads."""

from __future__ import annotations

import subprocess
import sys

import pytest

from greenserve.protocol.h1 import H11Connection
from greenserve.protocol.parsers import HTTP_PARSERS, connection_class


def test_names_select_their_class() -> None:
    pytest.importorskip("httptools")
    from greenserve.protocol.h1_fast import HttptoolsConnection

    assert connection_class("python") is H11Connection
    assert connection_class("fast") is HttptoolsConnection
    assert connection_class("auto") is HttptoolsConnection
    assert set(HTTP_PARSERS) == {"python", "fast"}


def test_unknown_name() -> None:
    with pytest.raises(ValueError, match="unknown HTTP parser"):
        connection_class("llhttp")


def test_without_httptools(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "httptools", None)  # makes ``import httptools`` fail
    monkeypatch.delitem(sys.modules, "greenserve.protocol.h1_fast", raising=False)
    assert connection_class("auto") is H11Connection
    assert connection_class("python") is H11Connection
    with pytest.raises(ImportError, match="--http-parser fast needs httptools"):
        connection_class("fast")


def test_httptools_is_imported_only_when_selected() -> None:
    code = (
        "import sys\n"
        "from greenserve.protocol.parsers import connection_class\n"
        "connection_class('python')\n"
        "assert 'httptools' not in sys.modules, 'imported for python'\n"
        "connection_class('auto')\n"
        "assert 'httptools' in sys.modules, 'not imported for auto'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
