"""Sans-io tests of HTTP/1 responses: framing, the Connection header, refused heads.

Every test runs once per implementation (the ``http_parser`` fixture).
"""

from __future__ import annotations

import pytest
from corpus_harness import new_connection
from test_protocol_h1 import GET, drain

from greenserve.protocol.events import Data, EndOfMessage, InformationalResponse, Response
from greenserve.protocol.policy import Limits
from greenserve.protocol.writer import LocalProtocolError

pytestmark = pytest.mark.usefixtures("http_parser")


def test_chunked_response_with_trailers() -> None:
    conn = new_connection(Limits())
    drain(conn, GET)
    head = conn.send(Response(200, [(b"Content-Type", b"text/plain")]))
    assert head == (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    assert conn.response_started and not conn.response_complete
    assert conn.send(Data(b"hello")) == b"5\r\nhello\r\n"
    assert conn.send(Data(b"")) == b""  # an empty chunk would end the body
    assert conn.send(EndOfMessage([(b"X-Sum", b"1")])) == b"0\r\nX-Sum: 1\r\n\r\n"
    assert conn.response_complete and conn.keep_alive


def test_app_transfer_encoding_is_replaced_by_the_servers_framing() -> None:
    conn = new_connection(Limits())
    drain(conn, GET)
    head = conn.send(Response(200, [(b"Transfer-Encoding", b"gzip"), (b"Keep-Alive", b"x")]))
    assert head.count(b"Transfer-Encoding") == 1 and b"Keep-Alive" not in head


@pytest.mark.parametrize("status", [204, 304])
def test_no_body_statuses(status: int) -> None:
    conn = new_connection(Limits())
    drain(conn, GET)
    head = conn.send(Response(status, []))
    assert b"Transfer-Encoding" not in head and b"Content-Length" not in head
    assert conn.send(Data(b"ignored")) == b""
    assert conn.send(EndOfMessage()) == b""
    assert conn.keep_alive


def test_204_never_carries_content_length() -> None:
    conn = new_connection(Limits())
    drain(conn, GET)
    head = conn.send(Response(204, [(b"Content-Length", b"5")]))
    assert b"Content-Length" not in head  # RFC 9110 8.6: MUST NOT send it with 204
    conn = new_connection(Limits())
    drain(conn, GET)
    head = conn.send(Response(304, [(b"Content-Length", b"5")]))
    assert b"Content-Length: 5" in head  # 304 may state the selected representation's size


def test_head_response_keeps_its_length_but_sends_no_body() -> None:
    conn = new_connection(Limits())
    drain(conn, b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n")
    head = conn.send(Response(200, [(b"Content-Length", b"5")]))
    assert b"Content-Length: 5\r\n" in head
    assert conn.send(Data(b"hello")) == b""
    assert conn.send(EndOfMessage()) == b""
    assert conn.keep_alive


def test_content_length_is_enforced() -> None:
    conn = new_connection(Limits())
    drain(conn, GET)
    conn.send(Response(200, [(b"Content-Length", b"3")]))
    with pytest.raises(LocalProtocolError):
        conn.send(Data(b"toolong"))
    conn = new_connection(Limits())
    drain(conn, GET)
    conn.send(Response(200, [(b"Content-Length", b"3")]))
    conn.send(Data(b"ab"))
    with pytest.raises(LocalProtocolError):
        conn.send(EndOfMessage())
    assert not conn.response_complete  # so the connection is not kept alive


def test_conflicting_response_content_lengths() -> None:
    conn = new_connection(Limits())
    drain(conn, GET)
    with pytest.raises(LocalProtocolError):
        conn.send(Response(200, [(b"Content-Length", b"3"), (b"Content-Length", b"4")]))


@pytest.mark.parametrize(
    "event",
    [
        Response(200, [(b"X", b"a\r\nSet-Cookie: evil")]),
        Response(200, [(b"X", b"a\nb")]),
        Response(200, [(b"X", b"a\x00b")]),
        Response(200, [(b"X Y", b"a")]),
        Response(200, [(b"X:", b"a")]),
        Response(200, [], reason=b"OK\r\nSet-Cookie: evil"),
        Response(99, []),
        Response(1000, []),
        InformationalResponse(103, [(b"Link", b"a\r\nb")]),
        InformationalResponse(200),
    ],
)
def test_header_injection_and_bad_heads_are_refused(
    event: Response | InformationalResponse,
) -> None:
    conn = new_connection(Limits())
    drain(conn, GET)
    with pytest.raises(LocalProtocolError):
        conn.send(event)


def test_trailer_injection_is_refused() -> None:
    conn = new_connection(Limits())
    drain(conn, GET)
    conn.send(Response(200, []))
    with pytest.raises(LocalProtocolError):
        conn.send(EndOfMessage([(b"X", b"1\r\n\r\nHTTP/1.1 200 OK")]))


def test_send_order_is_enforced() -> None:
    conn = new_connection(Limits())
    drain(conn, GET)
    with pytest.raises(LocalProtocolError):
        conn.send(Data(b"x"))  # before the head
    conn.send(Response(200, [(b"Content-Length", b"0")]))
    with pytest.raises(LocalProtocolError):
        conn.send(Response(200, []))  # a second head
    with pytest.raises(LocalProtocolError):
        conn.send(InformationalResponse(100))  # 1xx after the final response
    conn.send(EndOfMessage())
    with pytest.raises(LocalProtocolError):
        conn.send(Data(b"x"))  # after the end
    with pytest.raises(LocalProtocolError):
        conn.send(EndOfMessage())


def test_http10_response_without_length_is_delimited_by_close() -> None:
    conn = new_connection(Limits())
    drain(conn, b"GET / HTTP/1.0\r\n\r\n")
    assert conn.send(Response(200, [])) == b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"
    assert conn.send(Data(b"raw")) == b"raw"
    assert conn.send(EndOfMessage()) == b""


def test_body_passthrough_for_sendfile() -> None:
    conn = new_connection(Limits())
    drain(conn, GET)
    conn.send(Response(200, [(b"Content-Length", b"10")]))
    assert conn.body_passthrough(0) is False  # nothing to pass (socket.sendfile refuses 0)
    assert conn.body_passthrough(6) is True
    with pytest.raises(LocalProtocolError):
        conn.body_passthrough(5)  # more than the Content-Length still owed
    assert conn.send(Data(b"abcd")) == b"abcd"
    assert conn.send(EndOfMessage()) == b""


def test_no_body_passthrough_for_chunked_or_head() -> None:
    conn = new_connection(Limits())
    drain(conn, GET)
    conn.send(Response(200, []))
    assert conn.body_passthrough(5) is False  # chunk framing must wrap the bytes
    conn = new_connection(Limits())
    drain(conn, b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n")
    conn.send(Response(200, [(b"Content-Length", b"5")]))
    assert conn.body_passthrough(5) is False  # HEAD: no body bytes at all



def test_a_head_sent_again_is_planned_again_for_its_request() -> None:
    """Equal heads are planned once and reused: each response still gets its own framing
    and the defaults of its moment, and what depends on the request follows the request."""
    headers = [(b"Content-Type", b"text/plain"), (b"Content-Length", b"5")]
    for date in (b"d1", b"d2"):
        conn = new_connection(Limits())
        drain(conn, GET)
        defaults = {b"date": (b"Date", date), b"server": (b"Server", b"s")}
        head = conn.send_response(200, list(headers), b"", defaults)
        assert head == (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n"
                        b"Date: " + date + b"\r\nServer: s\r\n\r\n")
        assert conn.send_data(b"hello") == b"hello"  # its own count of the 5 bytes owed
        with pytest.raises(LocalProtocolError):
            conn.send_data(b"!")
    conn = new_connection(Limits())
    drain(conn, b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n")
    conn.send_response(200, list(headers), b"", defaults)
    assert conn.send_data(b"hello") == b""  # the same head, but no body for HEAD
    conn = new_connection(Limits())
    drain(conn, b"GET / HTTP/1.0\r\n\r\n")
    assert conn.send_response(200, list(headers), b"", defaults).endswith(
        b"Server: s\r\nConnection: close\r\n\r\n")
    own_date = [(b"Date", b"mine"), *headers]
    for _ in range(2):  # the app's Date replaces the default one, every time
        conn = new_connection(Limits())
        drain(conn, GET)
        head = conn.send_response(200, list(own_date), b"", defaults)
        assert head.count(b"Date:") == 1 and b"Date: mine\r\n" in head


def test_a_refused_head_is_refused_every_time() -> None:
    for _ in range(2):
        conn = new_connection(Limits())
        drain(conn, GET)
        with pytest.raises(LocalProtocolError):
            conn.send(Response(200, [(b"X", b"a\r\nSet-Cookie: evil")]))
        with pytest.raises(LocalProtocolError):
            conn.send(Response(200, [[b"X", bytearray(b"a\nb")]]))  # type: ignore[list-item]
