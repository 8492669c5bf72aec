"""The sans-io WebSocket core: handshake checks and the session, bytes in, events out.

Frames from the client side are produced by wsproto's own client ``Connection`` (or by hand
when a test needs a frame no correct client would send).
"""

from __future__ import annotations

import os
import struct

import pytest
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage
from wsproto.extensions import PerMessageDeflate

from greenserve.protocol.events import Request
from greenserve.protocol.websocket import (
    Closed,
    Handshake,
    HandshakeRejection,
    Message,
    SessionClosed,
    SessionState,
    WebSocketSession,
    check_handshake,
    is_websocket_request,
    negotiate_deflate,
)
from greenserve.protocol.websocket import (
    Pong as PongEvent,
)

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 §1.3's example


def request(*extra: tuple[bytes, bytes], method: bytes = b"GET", version: bytes = b"1.1",
            upgrade: bytes | None = b"websocket", ws_version: bytes | None = b"13",
            key: bytes | None = KEY, **kwargs: object) -> Request:
    headers = [(b"Host", b"example.com")]
    if upgrade is not None:
        headers += [(b"Upgrade", upgrade), (b"Connection", b"Upgrade")]
    if ws_version is not None:
        headers.append((b"Sec-WebSocket-Version", ws_version))
    if key is not None:
        headers.append((b"Sec-WebSocket-Key", key))
    headers.extend(extra)
    return Request(method, b"/chat", version, headers, keep_alive=True, upgrade=upgrade,
                   **kwargs)  # type: ignore[arg-type]


def frame(opcode: int, payload: bytes, *, fin: bool = True, masked: bool = True,
          rsv: int = 0) -> bytes:
    """One frame as a client puts it on the wire (masked unless told otherwise)."""
    head = bytes([(0x80 if fin else 0) | rsv << 4 | opcode])
    mask_bit = 0x80 if masked else 0
    n = len(payload)
    if n < 126:
        head += bytes([mask_bit | n])
    elif n < 65536:
        head += bytes([mask_bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", n)
    if not masked:
        return head + payload
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def close_code(data: bytes) -> int | None:
    """The code of the (unmasked, server) close frame at the start of ``data``."""
    assert data[0] == 0x88, data
    return struct.unpack("!H", data[2:4])[0] if data[1] >= 2 else None


def events(session: WebSocketSession) -> list[object]:
    out = []
    while (event := session.next_event()) is not None:
        out.append(event)
    return out


# -- the handshake ---------------------------------------------------------------------------
def test_a_valid_handshake_is_accepted_with_the_rfc_accept_token() -> None:
    handshake = check_handshake(request())
    assert isinstance(handshake, Handshake)
    accepted = handshake.accept()
    assert accepted.status_code == 101
    assert accepted.headers == [
        (b"Upgrade", b"websocket"),
        (b"Connection", b"Upgrade"),
        (b"Sec-WebSocket-Accept", b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
    ]
    assert accepted.extensions == [] and accepted.subprotocol is None


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, True),
        ({"upgrade": b"WebSocket"}, True),
        ({"upgrade": b"h2c, websocket"}, True),
        ({"upgrade": b"h2c"}, False),
        ({"upgrade": None}, False),  # no Connection: upgrade (the parser leaves it None)
        ({"method": b"POST"}, False),
        ({"version": b"1.0"}, False),
    ],
)
def test_which_requests_are_websocket_handshakes(kwargs: dict[str, object],
                                                 expected: bool) -> None:
    assert is_websocket_request(request(**kwargs)) is expected  # type: ignore[arg-type]


@pytest.mark.parametrize("version", [None, b"8", b"13, 8", b" 14"])
def test_another_or_no_version_gets_426_naming_13(version: bytes | None) -> None:
    rejection = check_handshake(request(ws_version=version))
    assert isinstance(rejection, HandshakeRejection)
    assert rejection.status_code == 426
    assert rejection.headers == [(b"Sec-WebSocket-Version", b"13")]


def test_a_repeated_version_field_gets_426() -> None:
    rejection = check_handshake(request((b"Sec-WebSocket-Version", b"13")))
    assert isinstance(rejection, HandshakeRejection) and rejection.status_code == 426


@pytest.mark.parametrize("key", [None, b"", b"not base64!", b"c2hvcnQ=", b"dGhlIHNhbXBsZSBub25jZQ"])
def test_a_bad_key_gets_400(key: bytes | None) -> None:
    rejection = check_handshake(request(key=key))
    assert isinstance(rejection, HandshakeRejection) and rejection.status_code == 400


def test_two_keys_get_400() -> None:
    rejection = check_handshake(request((b"Sec-WebSocket-Key", KEY)))
    assert isinstance(rejection, HandshakeRejection) and rejection.status_code == 400


@pytest.mark.parametrize("body", [{"content_length": 5}, {"chunked": True}])
def test_a_handshake_with_a_body_gets_400(body: dict[str, object]) -> None:
    rejection = check_handshake(request(**body))  # type: ignore[arg-type]
    assert isinstance(rejection, HandshakeRejection) and rejection.status_code == 400


def test_subprotocols_are_offered_in_order_and_only_an_offered_one_is_chosen() -> None:
    handshake = check_handshake(request((b"Sec-WebSocket-Protocol", b"chat, superchat"),
                                        (b"Sec-WebSocket-Protocol", b"v2")))
    assert isinstance(handshake, Handshake)
    assert handshake.subprotocols == ("chat", "superchat", "v2")
    accepted = handshake.accept("superchat", extra_headers=[(b"X-Extra", b"1")])
    assert (b"Sec-WebSocket-Protocol", b"superchat") in accepted.headers
    assert accepted.headers[-1] == (b"X-Extra", b"1")
    assert accepted.subprotocol == "superchat"
    with pytest.raises(ValueError):
        handshake.accept("other")


@pytest.mark.parametrize(
    ("offers", "answer"),
    [
        (("permessage-deflate",), b"permessage-deflate"),
        (("permessage-deflate; client_max_window_bits",),
         b"permessage-deflate; client_max_window_bits=15"),
        (("permessage-deflate; server_no_context_takeover; client_no_context_takeover",),
         b"permessage-deflate; client_no_context_takeover; server_no_context_takeover"),
        (("permessage-deflate; server_max_window_bits=10",),
         b"permessage-deflate; server_max_window_bits=10"),
        # zlib cannot compress with a 256-byte window: decline, fall back to the next offer
        (("permessage-deflate; server_max_window_bits=8", "permessage-deflate"),
         b"permessage-deflate"),
        (("permessage-deflate; unknown_param",), None),
        (("permessage-deflate; server_no_context_takeover; server_no_context_takeover",), None),
        (("permessage-deflate; server_max_window_bits",), None),
        (("permessage-deflate; client_max_window_bits=abc",), None),
        (("permessage-deflate; server_no_context_takeover=1",), None),
        (("x-webkit-deflate-frame",), None),
        ((), None),
    ],
)
def test_permessage_deflate_negotiation(offers: tuple[str, ...], answer: bytes | None) -> None:
    negotiated = negotiate_deflate(offers)
    if answer is None:
        assert negotiated is None
    else:
        assert negotiated is not None and negotiated[0] == answer
        assert negotiated[1].enabled()


def test_compression_can_be_refused() -> None:
    handshake = check_handshake(request((b"Sec-WebSocket-Extensions", b"permessage-deflate")))
    assert isinstance(handshake, Handshake)
    assert handshake.accept().extensions
    assert not handshake.accept(compression=False).extensions


# -- the session ------------------------------------------------------------------------------
def pair(max_message_size: int = 1 << 20, deflate: bool = False,
         ) -> tuple[WebSocketSession, Connection]:
    extensions = []
    client_extensions = []
    if deflate:
        answer = negotiate_deflate(("permessage-deflate",))
        assert answer is not None
        extensions = [answer[1]]
        client = PerMessageDeflate()
        client.finalize(answer[0].decode())
        client_extensions = [client]
    session = WebSocketSession(extensions, max_message_size=max_message_size)
    return session, Connection(ConnectionType.CLIENT, client_extensions)


def test_text_and_binary_messages_in_and_out() -> None:
    session, client = pair()
    session.receive_data(client.send(TextMessage("héllo")) + client.send(BytesMessage(b"\0\1")))
    assert events(session) == [Message("héllo"), Message(b"\0\1")]
    session.send_message("back")
    session.send_message(bytearray(b"bin"))
    client.receive_data(session.data_to_send())
    got = list(client.events())
    assert [(type(e), e.data) for e in got] == [(TextMessage, "back"), (BytesMessage, b"bin")]


def test_take_with_message_returns_the_queue_then_the_frame() -> None:
    session, client = pair()
    client.receive_data(session.take_with_message("alone"))
    session.ping(b"queued first")
    wire = session.take_with_message(b"after the ping")
    assert session.data_to_send() == b""  # taken
    client.receive_data(wire)
    got = list(client.events())
    assert [(type(e), getattr(e, "data", None) or getattr(e, "payload", None)) for e in got] \
        == [(TextMessage, "alone"), (Ping, b"queued first"), (BytesMessage, b"after the ping")]
    session.close()
    with pytest.raises(SessionClosed):
        session.take_with_message("too late")


def test_fragments_are_reassembled_whatever_the_chunking() -> None:
    session, client = pair()
    wire = (client.send(TextMessage("ab", message_finished=False))
            + client.send(Ping(b"in between"))
            + client.send(TextMessage("cé", message_finished=False))
            + client.send(TextMessage("d")))
    got: list[object] = []
    for i in range(len(wire)):  # one byte at a time
        session.receive_data(wire[i:i + 1])
        got += events(session)
    assert got == [Message("abcéd")]
    client.receive_data(session.data_to_send())
    assert [type(e) for e in client.events()] == [Pong]  # the ping was answered


def test_a_pong_is_reported() -> None:
    session, client = pair()
    session.ping(b"hi")
    client.receive_data(session.data_to_send())
    ping = next(client.events())
    session.receive_data(client.send(ping.response()))  # type: ignore[attr-defined]
    assert events(session) == [PongEvent(b"hi")]


def test_the_peer_closes_and_we_answer_with_its_code() -> None:
    session, client = pair()
    session.receive_data(client.send(TextMessage("last")) + client.send(
        CloseConnection(4001, "bye")))
    assert events(session) == [Message("last"), Closed(4001, "bye")]
    assert session.state is SessionState.CLOSED
    assert close_code(session.data_to_send()) == 4001
    with pytest.raises(SessionClosed):
        session.send_message("too late")
    session.receive_data(b"ignored")  # bytes past the close are dropped
    assert session.next_event() is None


def test_a_close_without_code_is_1005_and_answered_empty() -> None:
    session, _ = pair()
    session.receive_data(frame(0x8, b""))
    assert events(session) == [Closed(1005, "")]
    assert session.data_to_send() == b"\x88\x00"


def test_we_close_and_wait_for_the_answer() -> None:
    session, client = pair()
    session.close(1001, "going away")
    assert session.state is SessionState.CLOSING
    client.receive_data(session.data_to_send())
    close = next(client.events())
    assert isinstance(close, CloseConnection) and close.code == 1001
    # A message the client sent before it saw our close frame, then its answer.
    session.receive_data(frame(0x1, b"in flight") + client.send(close.response()))
    assert events(session) == [Closed(1001, "going away")]  # the message is dropped
    assert session.state is SessionState.CLOSED and session.data_to_send() == b""
    session.close()  # a second close does nothing
    assert session.data_to_send() == b""


@pytest.mark.parametrize("code", [999, 5000, 0])
def test_an_invalid_close_code_is_refused(code: int) -> None:
    session, _ = pair()
    with pytest.raises(ValueError):
        session.close(code)


@pytest.mark.parametrize(
    ("wire", "code"),
    [
        (frame(0x1, b"unmasked", masked=False), 1002),
        (frame(0x1, b"x", rsv=0b010), 1002),  # RSV2 without an extension
        (frame(0x3, b"x"), 1002),  # reserved opcode
        (frame(0x0, b"x"), 1002),  # continuation without a start
        (frame(0x9, b"x", fin=False), 1002),  # fragmented control frame
        (frame(0x9, b"x" * 126), 1002),  # control frame too long
        (frame(0x8, b"\x03\xe8\xff"), 1007),  # close reason that is not UTF-8
        (frame(0x8, b"\x03"), 1002),  # one-byte close payload
        (frame(0x1, b"\xff\xfe"), 1007),
        (frame(0x1, "é".encode()[:1], fin=False) + frame(0x0, b"\x41"), 1007),
    ],
)
def test_a_protocol_error_fails_the_connection_with_a_close_frame(wire: bytes,
                                                                  code: int) -> None:
    session, _ = pair()
    session.receive_data(wire)
    got = events(session)
    assert len(got) == 1 and isinstance(got[0], Closed) and got[0].code == code
    # wsproto's own state stays open here: the session must say "drop TCP" itself.
    assert session.state is SessionState.FAILED
    assert close_code(session.data_to_send()) == code
    session.receive_data(frame(0x1, b"more"))
    assert session.next_event() is None


def test_an_error_after_our_close_fails_without_a_second_close_frame() -> None:
    session, _ = pair()
    session.close()
    session.data_to_send()
    session.receive_data(frame(0x1, b"x", masked=False))
    assert [type(e) for e in events(session)] == [Closed]
    assert session.state is SessionState.FAILED and session.data_to_send() == b""


def test_a_message_over_the_limit_fails_with_1009_before_it_is_all_buffered() -> None:
    session, client = pair(max_message_size=1000)
    session.receive_data(client.send(BytesMessage(b"a" * 1000)))
    assert events(session) == [Message(b"a" * 1000)]
    # A frame declaring 10 MB: the first 2 KB are enough to refuse it.
    session.receive_data(frame(0x2, b"b" * 10_000_000)[:2048])
    assert events(session) == [Closed(1009, "message too big")]
    assert session.state is SessionState.FAILED
    assert close_code(session.data_to_send()) == 1009


def test_the_limit_counts_every_fragment_and_utf8_bytes() -> None:
    session, client = pair(max_message_size=10)
    session.receive_data(client.send(TextMessage("ééé", message_finished=False)))  # 6 bytes
    assert events(session) == []
    session.receive_data(client.send(TextMessage("éé")))  # 10 bytes: still fine
    assert events(session) == [Message("ééééé")]
    session.receive_data(client.send(TextMessage("ééé", message_finished=False))
                         + client.send(TextMessage("éé", message_finished=False))
                         + client.send(TextMessage("x")))
    assert [getattr(e, "code", None) for e in events(session)] == [1009]


def test_no_limit_with_zero() -> None:
    session, client = pair(max_message_size=0)
    session.receive_data(client.send(BytesMessage(b"z" * 3_000_000)))
    assert events(session) == [Message(b"z" * 3_000_000)]


def test_the_connection_lost_is_1006() -> None:
    session, client = pair()
    session.receive_data(client.send(TextMessage("part", message_finished=False)))
    session.receive_data(b"")
    assert events(session) == [Closed(1006, "connection lost")]
    assert session.state is SessionState.CLOSED and session.data_to_send() == b""


def test_permessage_deflate_round_trip() -> None:
    session, client = pair(deflate=True)
    assert session.compressed
    text = "compressible " * 1000
    wire = client.send(TextMessage(text))
    assert len(wire) < 200
    session.receive_data(wire)
    assert events(session) == [Message(text)]
    session.send_message(text)
    out = session.data_to_send()
    assert len(out) < 200 and out[0] & 0x40  # RSV1: compressed
    client.receive_data(out)
    assert next(client.events()).data == text  # type: ignore[attr-defined]


def test_a_deflate_bomb_is_stopped_by_the_limit() -> None:
    session, client = pair(max_message_size=1 << 20, deflate=True)
    wire = client.send(BytesMessage(b"\0" * (8 << 20)))  # 8 MiB of zeros, ~8 KB on the wire
    assert len(wire) < 16384
    session.receive_data(wire)
    assert [getattr(e, "code", None) for e in events(session)] == [1009]


def test_trailing_data_from_the_handshake_is_processed() -> None:
    client = Connection(ConnectionType.CLIENT)
    session = WebSocketSession(trailing_data=client.send(TextMessage("early")))
    assert events(session) == [Message("early")]


def test_ping_payload_is_at_most_125_bytes() -> None:
    session, _ = pair()
    with pytest.raises(ValueError):
        session.ping(b"x" * 126)
