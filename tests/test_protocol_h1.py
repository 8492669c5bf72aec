"""Sans-io tests of the HTTP/1 server connection: bytes in, events and bytes out.

Every test runs once per implementation (the ``http_parser`` fixture): ``new_connection``
builds an H11Connection or an HttptoolsConnection.
"""

from __future__ import annotations

import pytest
from corpus_harness import new_connection

from greenserve.protocol.chunked import ChunkedDecoder
from greenserve.protocol.events import (
    ConnectionClosed,
    Data,
    EndOfMessage,
    InboundEvent,
    InformationalResponse,
    ProtocolError,
    Request,
    Response,
)
from greenserve.protocol.h1_base import BaseH1Connection
from greenserve.protocol.policy import Limits, Rejection
from greenserve.protocol.writer import LocalProtocolError

GET = b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"

pytestmark = pytest.mark.usefixtures("http_parser")


def drain(conn: BaseH1Connection, data: bytes = b"", *, eof: bool = False) -> list[InboundEvent]:
    """Feed ``data`` (and EOF) and collect events until the connection needs more."""
    if data:
        conn.receive_data(data)
    if eof:
        conn.receive_data(b"")
    events = []
    while (event := conn.next_event()) is not None:
        events.append(event)
        if isinstance(event, ProtocolError | ConnectionClosed):
            break
    return events


def respond(conn: BaseH1Connection, status: int = 200, body: bytes = b"ok",
            headers: list[tuple[bytes, bytes]] | None = None) -> bytes:
    """Send a whole response; its bytes."""
    if headers is None:
        headers = [(b"Content-Length", b"%d" % len(body))]
    out = conn.send(Response(status, headers))
    out += conn.send(Data(body))
    return out + conn.send(EndOfMessage())


def one_error(data: bytes, limits: Limits | None = None, *, eof: bool = False) -> ProtocolError:
    """The ProtocolError that ``data`` must produce, with no Request before it."""
    events = drain(new_connection(limits or Limits()), data, eof=eof)
    assert len(events) == 1, events
    assert isinstance(events[0], ProtocolError), events
    return events[0]


def head_of(data: bytes, limits: Limits | None = None) -> Request:
    events = drain(new_connection(limits or Limits()), data)
    assert isinstance(events[0], Request), events
    return events[0]


# -- keep-alive and pipelining ------------------------------------------------------------


def test_keep_alive_two_requests() -> None:
    conn = new_connection(Limits())
    first = drain(conn, GET)
    assert isinstance(first[0], Request) and first[0].keep_alive
    assert first[1:] == [EndOfMessage()]
    assert conn.request_complete and not conn.response_started
    wire = respond(conn)
    assert wire == b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    assert conn.response_complete and conn.keep_alive
    conn.start_next_cycle()
    assert conn.request is None and not conn.request_complete
    second = drain(conn, GET.replace(b"/", b"/two", 1))
    assert isinstance(second[0], Request) and second[0].target == b"/two"


def test_pipelined_requests_come_in_order_one_cycle_at_a_time() -> None:
    conn = new_connection(Limits())
    stream = b"".join(
        b"POST /%d HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\n%d" % (i, i) for i in range(3)
    )
    targets = []
    events = drain(conn, stream)
    for i in range(3):
        assert isinstance(events[0], Request)
        targets.append(events[0].target)
        assert events[1:] == [Data(b"%d" % i), EndOfMessage()]
        assert conn.next_event() is None  # the next request waits for this response
        respond(conn)
        conn.start_next_cycle()
        events = drain(conn)
    assert targets == [b"/0", b"/1", b"/2"]
    assert events == [] and conn.trailing_data == b""


def test_trailing_data_holds_the_next_request() -> None:
    conn = new_connection(Limits())
    drain(conn, GET + b"GET /next")
    assert conn.trailing_data == b"GET /next"


# -- request bodies -----------------------------------------------------------------------


def test_content_length_body_in_pieces() -> None:
    conn = new_connection(Limits())
    events = drain(conn, b"PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nhello")
    assert isinstance(events[0], Request) and events[0].content_length == 10
    assert events[1:] == [Data(b"hello")]
    assert not conn.request_complete
    assert drain(conn, b" worldEXTRA") == [Data(b" worl"), EndOfMessage()]
    assert conn.request_complete
    assert conn.trailing_data == b"dEXTRA"


def test_content_length_body_exact_events() -> None:
    conn = new_connection(Limits())
    events = drain(conn, b"PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nab")
    assert events[1:] == [Data(b"ab")]
    assert drain(conn, b"cdef") == [Data(b"c"), EndOfMessage()]
    assert conn.trailing_data == b"def"


def test_chunked_body_with_extensions_and_trailers() -> None:
    data = (
        b"POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;name=val\r\nhello\r\nA; q=\"x y\"\r\n, world!!!\r\n0\r\n"
        b"Checksum: abc \r\nVary: *\r\n\r\n"
    )
    for pieces in ([data], [data[i : i + 1] for i in range(len(data))]):
        conn = new_connection(Limits())
        events: list[InboundEvent] = []
        for piece in pieces:
            events += drain(conn, piece)
        request = events[0]
        assert isinstance(request, Request) and request.chunked
        assert request.content_length is None
        body = b"".join(e.data for e in events if isinstance(e, Data))
        assert body == b"hello, world!!!"
        assert events[-1] == EndOfMessage(trailers=[(b"Checksum", b"abc"), (b"Vary", b"*")])


@pytest.mark.parametrize(
    "size_line",
    [b"5 ", b" 5", b"+5", b"-5", b"0x5", b"5;", b"5;a=\"b", b"5\rx", b"", b"5;a b", b"6_0"],
)
def test_invalid_chunk_size_lines(size_line: bytes) -> None:
    head = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
    events = drain(new_connection(Limits()), head + size_line + b"\r\nhello\r\n0\r\n\r\n")
    assert isinstance(events[0], Request)
    assert isinstance(events[-1], ProtocolError) and events[-1].status_code == 400
    assert not any(isinstance(e, EndOfMessage) for e in events)


def test_chunk_data_longer_than_its_size_is_caught_before_the_line_ends() -> None:
    head = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
    events = drain(new_connection(Limits()), head + b"2\r\nhelloGET / HTTP/1.1")
    assert events[1] == Data(b"he")
    assert isinstance(events[-1], ProtocolError) and events[-1].status_code == 400


def test_chunked_decoder_reports_data_before_an_error() -> None:
    decoder = ChunkedDecoder()
    buf = bytearray(b"3\r\nabc\r\nzz\r\n")
    assert decoder.feed(buf) == b"abc"
    assert isinstance(decoder.feed(buf), Rejection)
    assert isinstance(decoder.feed(bytearray()), Rejection)  # and it stays failed


@pytest.mark.parametrize("name", [b"Content-Length", b"Transfer-Encoding", b"host", b"Trailer"])
def test_forbidden_trailer_fields(name: bytes) -> None:
    data = (
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"1\r\na\r\n0\r\n%s: 1\r\n\r\n" % name
    )
    events = drain(new_connection(Limits()), data)
    assert isinstance(events[-1], ProtocolError) and events[-1].status_code == 400


def test_trailers_count_toward_limit_request_fields() -> None:
    data = (
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\nA: 1\r\nB: 2\r\n\r\n"
    )
    assert isinstance(drain(new_connection(Limits(limit_request_fields=4)), data)[-1],
                      EndOfMessage)
    events = drain(new_connection(Limits(limit_request_fields=3)), data)
    assert isinstance(events[-1], ProtocolError) and events[-1].status_code == 431


# -- HTTP/1.0, Connection, Expect, Upgrade ------------------------------------------------


def test_http10_without_keep_alive_closes() -> None:
    conn = new_connection(Limits())
    request = drain(conn, b"GET / HTTP/1.0\r\n\r\nGET /second HTTP/1.0\r\n\r\n")[0]
    assert isinstance(request, Request) and not request.keep_alive
    wire = respond(conn)
    assert b"Connection: close\r\n" in wire
    assert not conn.keep_alive
    with pytest.raises(LocalProtocolError):
        conn.start_next_cycle()


def test_http10_keep_alive_with_length_stays_open() -> None:
    conn = new_connection(Limits())
    request = drain(conn, b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")[0]
    assert isinstance(request, Request) and request.keep_alive
    wire = respond(conn)
    assert wire.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Connection: keep-alive\r\n" in wire
    conn.start_next_cycle()


def test_http10_keep_alive_without_length_must_close() -> None:
    conn = new_connection(Limits())
    drain(conn, b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    wire = respond(conn, headers=[(b"Content-Type", b"text/plain")], body=b"abc")
    assert wire.endswith(b"Connection: close\r\n\r\nabc")
    assert not conn.keep_alive


def test_connection_close_and_keep_alive_together_means_close() -> None:
    request = head_of(b"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n")
    assert not request.keep_alive


def test_request_connection_close() -> None:
    conn = new_connection(Limits())
    request = drain(conn, b"GET / HTTP/1.1\r\nHost: h\r\nConnection: Close\r\n\r\n" + GET)[0]
    assert isinstance(request, Request) and not request.keep_alive
    assert b"Connection: close\r\n" in respond(conn)
    assert not conn.keep_alive


def test_app_connection_close_ends_the_connection() -> None:
    conn = new_connection(Limits())
    drain(conn, GET)
    wire = respond(conn, headers=[(b"Content-Length", b"2"), (b"Connection", b"close")])
    assert wire.count(b"Connection") == 1 and b"Connection: close\r\n" in wire
    assert not conn.keep_alive


def test_close_after_response() -> None:
    conn = new_connection(Limits())
    drain(conn, GET)
    conn.close_after_response()
    assert b"Connection: close\r\n" in respond(conn)
    assert not conn.keep_alive


def test_expect_100_continue() -> None:
    conn = new_connection(Limits())
    data = b"PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n"
    request = drain(conn, data)[0]
    assert isinstance(request, Request) and request.expect_continue
    assert conn.send(InformationalResponse(100)) == b"HTTP/1.1 100 Continue\r\n\r\n"
    request10 = head_of(b"PUT / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n")
    assert not request10.expect_continue


def test_no_informational_response_for_http10() -> None:
    conn = new_connection(Limits())
    drain(conn, b"GET / HTTP/1.0\r\n\r\n")
    assert conn.send(InformationalResponse(103, [(b"Link", b"</a>")])) == b""


def test_upgrade_request() -> None:
    request = head_of(
        b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\n"
        b"Upgrade: websocket\r\n\r\n"
    )
    assert request.upgrade == b"websocket"
    assert head_of(GET).upgrade is None


# -- request targets, methods, versions ----------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        b"GET http://example.com/a?b HTTP/1.1",
        b"GET https://[::1]:8443 HTTP/1.1",
        b"OPTIONS * HTTP/1.1",
        b"CONNECT example.com:443 HTTP/1.1",
        b"GET //double//slash HTTP/1.1",
        b"M-SEARCH /x HTTP/1.1",
        b"-BLARGH /x HTTP/1.1",
        b"FOO /x HTTP/1.1",  # methods llhttp does not know reach the app all the same
        b"PRI /x HTTP/1.1",
        b"ANNOUNCE /x HTTP/1.1",
        b"GET http://u:p%40@h.example:80/x?y HTTP/1.1",
        b"GET http://h?q HTTP/1.1",
        b"GET http://%41b.example/#frag HTTP/1.1",
        b"GET http://[v1.x]/ HTTP/1.1",
        b"CONNECT [::1]:443 HTTP/1.1",
        b"CONNECT a-b.example:8080 HTTP/1.1",
    ],
)
def test_accepted_request_lines(line: bytes) -> None:
    request = head_of(line + b"\r\nHost: h\r\n\r\n")
    assert request.method + b" " + request.target == line.rsplit(b" ", 1)[0]
    assert request.http_version == b"1.1"


@pytest.mark.parametrize(
    ("line", "status"),
    [
        (b"GET / HTTP/2.0", 505),
        (b"GET / HTTP/0.9", 505),
        (b"GET / HTTP/5.6", 505),
        (b"GET / HTTP/0.99", 400),
        (b"GET / HTTP/11", 400),
        (b"GET / HTTP/1", 400),
        (b"GET / http/1.1", 400),
        (b"GET / HTTP/1.1 ", 400),
        (b"GET  / HTTP/1.1", 400),
        (b"GET /", 400),
        (b"G:T / HTTP/1.1", 400),
        (b"get / HTTP/1.1", 400),
        (b"GE / HTTP/1.1", 400),
        (b"GET /a\x7f HTTP/1.1", 400),
        (b"GET /\xc3\xa0 HTTP/1.1", 400),
        (b"GET * HTTP/1.1", 400),
        (b"GET example.com:80 HTTP/1.1", 400),
        (b"GET ftp://x/ HTTP/1.1", 400),
        (b"GET relative HTTP/1.1", 400),
        (b"CONNECT example.com HTTP/1.1", 400),
        # Authorities URL parsers disagree about (RFC 3986 3.2): refused by both parsers.
        (b"GET http://user:pass\\@example.com/ HTTP/1.1", 400),
        (b"GET http://exa\"mple.com/ HTTP/1.1", 400),
        (b"GET http://example.com#@evil/ HTTP/1.1", 400),
        (b"GET http://a@b@c/ HTTP/1.1", 400),
        (b"GET http://h%zz/ HTTP/1.1", 400),
        (b"GET http://[::1/ HTTP/1.1", 400),
        (b"GET http://h:8x/ HTTP/1.1", 400),
        (b"CONNECT a#b:443 HTTP/1.1", 400),
        (b"CONNECT [::1\":443 HTTP/1.1", 400),
        (b"CONNECT user@h:443 HTTP/1.1", 400),
        (b"CONNECT h:443/x HTTP/1.1", 400),
    ],
)
def test_refused_request_lines(line: bytes, status: int) -> None:
    assert one_error(line + b"\r\nHost: h\r\n\r\n").status_code == status


def test_a_later_http1_minor_version_is_served_as_1_1() -> None:
    """RFC 9112 2.6 (and gunicorn, which takes 1.0-1.9): HTTP/1.2 is read as 1.1, so it
    persists and its response says HTTP/1.1."""
    conn = new_connection(Limits())
    events = drain(conn, b"GET /a HTTP/1.2\r\nHost: h\r\n\r\n" + GET)
    first = events[0]
    assert isinstance(first, Request) and first.http_version == b"1.1" and first.keep_alive
    assert first.target == b"/a"
    assert respond(conn).startswith(b"HTTP/1.1 200 ")
    conn.start_next_cycle()
    assert isinstance(drain(conn)[0], Request)  # the pipelined request after it


@pytest.mark.parametrize(
    ("version", "served", "keep_alive"),
    [(b"HTTP/2.0", b"1.1", True), (b"HTTP/9.9", b"1.1", True), (b"HTTP/0.9", b"1.0", False)],
)
def test_unconventional_versions_with_the_setting(version: bytes, served: bytes,
                                                  keep_alive: bool) -> None:
    data = b"GET /v HTTP/x.y\r\nHost: h\r\n\r\n".replace(b"HTTP/x.y", version)
    assert one_error(data).status_code == 505
    limits = Limits(permit_unconventional_http_version=True)
    conn = new_connection(limits)
    request = drain(conn, data)[0]
    assert isinstance(request, Request)
    assert (request.target, request.http_version, request.keep_alive) == (b"/v", served,
                                                                         keep_alive)
    assert respond(conn).startswith(b"HTTP/1.1 200 ")  # the server's version, as always
    # Still only "HTTP/" and two single digits.
    assert one_error(b"GET / HTTP/0.99\r\nHost: h\r\n\r\n", limits).status_code == 400


def test_unconventional_methods_with_settings() -> None:
    data = b"-blargh /foo HTTP/1.1\r\nHost: h\r\n\r\n"
    assert one_error(data).status_code == 400
    assert head_of(data, Limits(permit_unconventional_http_method=True)).method == b"-blargh"
    both = Limits(permit_unconventional_http_method=True, casefold_http_method=True)
    assert head_of(data, both).method == b"-BLARGH"
    assert one_error(b"g:t / HTTP/1.1\r\nHost: h\r\n\r\n", both).status_code == 400


# -- header strictness --------------------------------------------------------------------


@pytest.mark.parametrize(
    "field",
    [
        b"Content-Length: 1\r\nTransfer-Encoding: chunked",
        b"Content-Length: 1\r\nContent-Length: 1",
        b"Content-Length: 1, 1",
        b"Content-Length: -1",
        b"Content-Length: +1",
        b"Content-Length: 0x1",
        b"Content-Length: ",
        b"Transfer-Encoding: gzip",
        b"Transfer-Encoding: chunked, gzip",
        b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
        b"Transfer-Encoding: chunked,",
        b"Transfer-Encoding: ",
        b"Host: second",
        b"Content-Type: a\r\nContent-Type: b",
        b"Name : value",
        b"Na me: value",
        b"Name value",
        b": value",
        b"Name: a\x00b",
        b"Name: a\x07b",
        b"Name: a\x7fb",
        b"Name: a\rb",
        b"Name: a\r\n folded",
        b"Name: a\r\n\tfolded",
    ],
)
def test_refused_fields(field: bytes) -> None:
    data = b"POST / HTTP/1.1\r\nHost: h\r\n" + field + b"\r\n\r\n"
    assert one_error(data).status_code == 400


def test_transfer_coding_other_than_chunked_is_501() -> None:
    data = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"
    assert one_error(data).status_code == 501


def test_transfer_encoding_in_http10_is_400() -> None:
    data = b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    assert one_error(data).status_code == 400


def test_missing_host_is_400_for_http11_only() -> None:
    assert one_error(b"GET / HTTP/1.1\r\n\r\n").reason == "missing Host header"
    assert head_of(b"GET / HTTP/1.0\r\n\r\n").http_version == b"1.0"


def test_whitespace_before_the_first_field_is_400_even_with_folding() -> None:
    data = b"GET / HTTP/1.1\r\n Host: h\r\n\r\n"
    assert one_error(data, Limits(permit_obsolete_folding=True)).status_code == 400


def test_field_values_are_trimmed_and_obs_text_kept() -> None:
    request = head_of(b"GET / HTTP/1.1\r\nHost: h\r\nX: \t caf\xc3\xa9 \t\r\n\r\n")
    assert request.headers[1] == (b"X", b"caf\xc3\xa9")


def test_obsolete_folding_when_permitted() -> None:
    data = b"GET / HTTP/1.1\r\nHost: h\r\nLong: one \r\n  two\r\n\tthree\r\n\r\n"
    request = head_of(data, Limits(permit_obsolete_folding=True))
    assert request.headers[1] == (b"Long", b"one two three")


def test_strip_header_spaces_when_permitted() -> None:
    data = b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length : 3\r\n\r\nabc"
    conn = new_connection(Limits(strip_header_spaces=True))
    events = drain(conn, data)
    assert isinstance(events[0], Request) and events[0].content_length == 3
    assert events[1:] == [Data(b"abc"), EndOfMessage()]


def test_leading_empty_lines_are_skipped_up_to_eight() -> None:
    assert head_of(b"\r\n" * 8 + GET).target == b"/"
    assert one_error(b"\r\n" * 9 + GET).status_code == 400


# -- bare LF / CR, detected early -----------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\nHost: h",
        b"GET / HTTP/1.1\r\nHost: h\nX: y",
        b"GET\n/\nHTTP/1.1",
        b"\nGET / HTTP/1.1",
    ],
)
def test_bare_lf_is_refused_without_waiting_for_the_end_of_the_head(data: bytes) -> None:
    error = one_error(data)  # no blank line, no EOF: decided on the bytes so far
    assert (error.status_code, error.reason) == (400, "bare LF line ending")


def test_bare_cr_is_refused() -> None:
    assert one_error(b"GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n").status_code == 400
    assert one_error(b"GET / HTTP/1.1\r\r\nHost: h\r\n\r\n").status_code == 400


# -- limits ---------------------------------------------------------------------------------


def test_request_line_limit_414_complete_and_early() -> None:
    line = b"GET /" + b"a" * 4089 + b" HTTP/1.1"  # 4103 bytes > 4094
    assert one_error(line + b"\r\nHost: h\r\n\r\n").status_code == 414
    assert one_error(b"GET /" + b"a" * 5000).status_code == 414  # no CRLF yet
    ok = b"GET /" + b"a" * (4094 - 14) + b" HTTP/1.1"
    assert len(ok) == 4094 and head_of(ok + b"\r\nHost: h\r\n\r\n")


def test_request_line_limit_zero_means_unlimited_up_to_64k() -> None:
    limits = Limits(limit_request_line=0)
    assert head_of(b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: h\r\n\r\n", limits)
    assert one_error(b"GET /" + b"a" * 70000, limits).status_code == 414


def test_field_size_counts_the_crlf_like_gunicorn() -> None:
    limits = Limits(limit_request_field_size=20)
    assert head_of(b"GET / HTTP/1.1\r\nHost: h\r\nX: " + b"a" * 15 + b"\r\n\r\n", limits)
    error = one_error(b"GET / HTTP/1.1\r\nHost: h\r\nX: " + b"a" * 16 + b"\r\n\r\n", limits)
    assert error.status_code == 431


def test_field_size_limit_is_checked_on_a_partial_line() -> None:
    error = one_error(b"GET / HTTP/1.1\r\nHost: h\r\nX: " + b"a" * 9000)
    assert (error.status_code, error.reason) == (431, "header field too large")


def test_field_size_zero_means_the_default() -> None:
    limits = Limits(limit_request_field_size=0)
    assert one_error(b"GET / HTTP/1.1\r\nX: " + b"a" * 8190, limits).status_code == 431


def test_folded_lines_count_toward_the_field_size() -> None:
    limits = Limits(limit_request_field_size=14, permit_obsolete_folding=True)
    assert one_error(b"GET /test HTTP/1.0\r\nAccept:\r\n */*\r\n\r\n", limits).status_code == 431


def test_too_many_fields_431_before_the_head_ends() -> None:
    fields = b"".join(b"X%d: y\r\n" % i for i in range(100))
    assert head_of(b"GET / HTTP/1.0\r\n" + fields + b"\r\n")
    error = one_error(b"GET / HTTP/1.0\r\n" + fields + b"X: y")  # field 101, incomplete
    assert (error.status_code, error.reason) == (431, "too many header fields")


def test_custom_field_count_limit() -> None:
    limits = Limits(limit_request_fields=2)
    assert head_of(b"GET / HTTP/1.1\r\nHost: h\r\nA: b\r\n\r\n", limits)
    error = one_error(b"GET / HTTP/1.1\r\nHost: h\r\nA: b\r\nC: d\r\n\r\n", limits)
    assert error.status_code == 431


def test_slow_clients_cost_linear_time() -> None:
    """Each byte of a head is searched once, however it arrives: a line sent one byte at a
    time does not make the scanner re-read it from its start."""
    conn = new_connection(Limits())
    data = b"GET / HTTP/1.1\r\nHost: h\r\nX-Long: " + b"v" * 5000
    for i in range(len(data)):
        conn.receive_data(data[i : i + 1])
        assert conn.next_event() is None
        assert conn._scanner.searched == i + 1
    assert conn._scanner.pos == len(b"GET / HTTP/1.1\r\nHost: h\r\n")


def test_limits_from_settings_reads_gunicorn_names() -> None:
    class Settings:
        limit_request_line = 100
        casefold_http_method = True
        unrelated = "x"

    limits = Limits.from_settings(Settings())
    assert limits == Limits(limit_request_line=100, casefold_http_method=True)


# -- errors and EOF -----------------------------------------------------------------------


def test_nothing_is_parsed_after_an_error() -> None:
    conn = new_connection(Limits())
    events = drain(conn, b"GET / HTTP/1.1\r\nHost: h\r\nBad Name: x\r\n\r\n" + GET)
    assert [type(e) for e in events] == [ProtocolError]
    conn.receive_data(GET)
    assert conn.next_event() is None
    conn.receive_data(b"")
    assert conn.next_event() is None
    assert not conn.keep_alive
    with pytest.raises(LocalProtocolError):
        conn.start_next_cycle()


def test_error_response_after_a_bad_head_closes() -> None:
    conn = new_connection(Limits())
    drain(conn, b"GET / HTTP/9.9\r\n\r\n")
    wire = respond(conn, 505, b"")
    assert wire.startswith(b"HTTP/1.1 505 HTTP Version Not Supported\r\n")
    assert b"Connection: close\r\n" in wire


def test_eof_before_any_request_is_a_clean_close() -> None:
    assert drain(new_connection(Limits()), eof=True) == [ConnectionClosed()]
    assert drain(new_connection(Limits()), b"\r\n\r\n", eof=True) == [ConnectionClosed()]


def test_eof_between_requests_is_a_clean_close() -> None:
    conn = new_connection(Limits())
    drain(conn, GET, eof=True)
    respond(conn)
    conn.start_next_cycle()
    assert drain(conn) == [ConnectionClosed()]


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\nHost: h\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nab",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n",
    ],
)
def test_eof_in_the_middle_of_a_message_closes_without_a_response(data: bytes) -> None:
    events = drain(new_connection(Limits()), data, eof=True)
    assert isinstance(events[-1], ProtocolError) and events[-1].status_code is None
    assert not any(isinstance(e, EndOfMessage) for e in events)


# -- start_next_cycle rules -----------------------------------------------------------------


def test_start_next_cycle_needs_request_and_response_complete() -> None:
    conn = new_connection(Limits())
    with pytest.raises(LocalProtocolError):
        conn.start_next_cycle()  # nothing received yet
    drain(conn, b"PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\na")
    conn.send(Response(200, [(b"Content-Length", b"0")]))
    conn.send(EndOfMessage())
    with pytest.raises(LocalProtocolError):
        conn.start_next_cycle()  # the request body is not finished
    drain(conn, b"b")
    conn.start_next_cycle()


def test_start_next_cycle_needs_the_response_finished() -> None:
    conn = new_connection(Limits())
    drain(conn, GET)
    conn.send(Response(200, [(b"Content-Length", b"2")]))
    with pytest.raises(LocalProtocolError):
        conn.start_next_cycle()
