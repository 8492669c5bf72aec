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


def test_without_httptools() -> None:
    # In a process of its own, where ``import httptools`` fails from the start (a compiled
    # h1_fast, once imported, cannot be imported again in the same process).
    code = (
        "import sys\n"
        "sys.modules['httptools'] = None\n"
        "from greenserve.protocol.h1 import H11Connection\n"
        "from greenserve.protocol.parsers import connection_class\n"
        "assert connection_class('auto') is H11Connection\n"
        "assert connection_class('python') is H11Connection\n"
        "try:\n"
        "    connection_class('fast')\n"
        "except ImportError as exc:\n"
        "    assert '--http-parser fast needs httptools' in str(exc), exc\n"
        "else:\n"
        "    raise AssertionError('fast without httptools')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


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


def test_httptools_keeps_parsers_only_after_bodiless_heads() -> None:
    pytest.importorskip("httptools")
    from greenserve.protocol import h1_fast
    from greenserve.protocol.events import Request
    from greenserve.protocol.policy import Limits

    h1_fast._KEPT.clear()
    conn = h1_fast.HttptoolsConnection(Limits())

    def serve(head: bytes, body_events: int = 1) -> Request:
        conn.receive_data(head)
        request = conn.next_event()
        assert isinstance(request, Request), request
        for _ in range(body_events):
            conn.next_event()
        conn.send_response(200, [(b"Content-Length", b"0")])
        conn.send_end()
        assert conn.end_cycle() is True
        return request

    serve(b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n")
    assert len(h1_fast._KEPT) == 1
    first = h1_fast._KEPT[0]
    assert serve(b"GET /b HTTP/1.1\r\nHost: h\r\nX: 1\r\n\r\n").headers == [(b"Host", b"h"),
                                                                              (b"X", b"1")]
    assert h1_fast._KEPT == [first]  # taken, used and put back
    # llhttp now expects a body it will never see: the parser is dropped
    serve(b"POST /c HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi", body_events=2)
    assert h1_fast._KEPT == []
    request = serve(b"GET /d?q HTTP/1.1\r\nHost: h\r\n\r\n")
    assert (request.method, request.target) == (b"GET", b"/d?q")
    assert len(h1_fast._KEPT) == 1 and h1_fast._KEPT[0] is not first
    # a kept parser that refuses (an unknown method) hands the head to a fresh one
    request = serve(b"FOO /e HTTP/1.1\r\nHost: h\r\n\r\n")
    assert request.method == b"FOO"
    assert conn.next_event() is None  # nothing more buffered
