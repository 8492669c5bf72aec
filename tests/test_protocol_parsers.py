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


def test_httptools_keeps_its_parser_only_between_bodiless_heads() -> None:
    pytest.importorskip("httptools")
    from greenserve.protocol.events import Request
    from greenserve.protocol.h1_fast import HttptoolsConnection
    from greenserve.protocol.policy import Limits

    conn = HttptoolsConnection(Limits())
    readers = []

    def serve(head: bytes, body_events: int = 1) -> Request:
        conn.receive_data(head)
        request = conn.next_event()
        assert isinstance(request, Request), request
        for _ in range(body_events):
            conn.next_event()
        readers.append(conn._reader)
        conn.send_response(200, [(b"Content-Length", b"0")])
        conn.send_end()
        assert conn.end_cycle() is True
        return request

    serve(b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n")
    assert serve(b"GET /b HTTP/1.1\r\nHost: h\r\nX: 1\r\n\r\n").headers == [(b"Host", b"h"),
                                                                            (b"X", b"1")]
    assert readers[0] is not None and readers[1] is readers[0]  # kept and reused
    serve(b"POST /c HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi", body_events=2)
    assert readers[2] is None  # llhttp now expects a body it will never see: dropped
    request = serve(b"GET /d?q HTTP/1.1\r\nHost: h\r\n\r\n")
    assert (request.method, request.target) == (b"GET", b"/d?q")
    assert readers[3] is not None and readers[3] is not readers[0]
    assert conn.next_event() is None  # nothing more buffered
