"""WebSocket without I/O: the opening handshake (RFC 6455 §4.2) checked on a :class:`Request`
event, and a session over wsproto's post-handshake ``Connection`` (RFC 6455 framing,
RFC 7692 permessage-deflate).

The handshake takes the request head, not bytes, so it does not care which HTTP parser (or,
later, which HTTP version) read it. The session is bytes in, events out, h2-style: feed
:meth:`WebSocketSession.receive_data`, pull :meth:`~WebSocketSession.next_event`, and send
whatever :meth:`~WebSocketSession.data_to_send` returns (pong and close replies included).
The WSGI object (``app/websocket.py``) and the ASGI side drive the same session.

wsproto reports a protocol error of the peer as a ``CloseConnection`` event while its own
state stays open. The session turns that into a :class:`Closed` event with the error's code,
queues the close frame, and enters :attr:`SessionState.FAILED`: the driver sends the frame and
then drops the TCP connection instead of waiting for a close reply from a broken peer.
"""

from __future__ import annotations

import base64
import binascii
from collections import deque
from collections.abc import Generator
from dataclasses import dataclass, field
from enum import Enum
from typing import cast

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import (
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    TextMessage,
)
from wsproto.events import (
    Pong as WSProtoPong,
)
from wsproto.extensions import Extension, PerMessageDeflate
from wsproto.utilities import generate_accept_token

from .events import Headers, Request

WEBSOCKET_VERSION = b"13"
#: gunicorn 27's ``--websocket-max-message-size`` default
DEFAULT_MAX_MESSAGE_SIZE = 16 * 1024 * 1024

# Close codes (RFC 6455 §7.4.1).
NORMAL_CLOSURE = 1000
GOING_AWAY = 1001
PROTOCOL_ERROR = 1002
ABNORMAL_CLOSURE = 1006  # never sent: the connection was lost without a close frame
MESSAGE_TOO_BIG = 1009
INTERNAL_ERROR = 1011
# Codes the peer may never put on the wire; wsproto replaces them with 1000 when sent.
_LOCAL_ONLY = frozenset({1005, 1006, 1015})

_DEFLATE = "permessage-deflate"
_DEFLATE_PARAMS = frozenset(
    {"server_no_context_takeover", "client_no_context_takeover",
     "server_max_window_bits", "client_max_window_bits"}
)


# -- the opening handshake ---------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class HandshakeRejection:
    """A WebSocket handshake that must be refused with this HTTP response."""

    status_code: int
    reason: str
    headers: Headers = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Accepted:
    """What :meth:`Handshake.accept` decided: the response head and the session's extensions."""

    status_code: int
    headers: Headers
    extensions: list[Extension]
    subprotocol: str | None


@dataclass(frozen=True, slots=True)
class Handshake:
    """A valid opening handshake: the client's key and offers."""

    key: bytes
    subprotocols: tuple[str, ...] = ()
    extensions: tuple[str, ...] = ()

    def accept(
        self, subprotocol: str | None = None, *, compression: bool = True,
        extra_headers: Headers | None = None,
    ) -> Accepted:
        """The ``101 Switching Protocols`` head, choosing ``subprotocol`` (one the client
        offered, else ValueError) and permessage-deflate when offered and ``compression``.
        """
        headers: Headers = [
            (b"Upgrade", b"websocket"),
            (b"Connection", b"Upgrade"),
            (b"Sec-WebSocket-Accept", generate_accept_token(self.key)),
        ]
        if subprotocol is not None:
            if subprotocol not in self.subprotocols:
                raise ValueError(f"subprotocol {subprotocol!r} was not offered by the client")
            headers.append((b"Sec-WebSocket-Protocol", subprotocol.encode("ascii")))
        extensions: list[Extension] = []
        if compression:
            negotiated = negotiate_deflate(self.extensions)
            if negotiated is not None:
                value, extension = negotiated
                headers.append((b"Sec-WebSocket-Extensions", value))
                extensions.append(extension)
        headers.extend(extra_headers or [])
        return Accepted(101, headers, extensions, subprotocol)


def _field_values(headers: Headers) -> dict[bytes, list[bytes]]:
    values: dict[bytes, list[bytes]] = {}
    for name, value in headers:
        values.setdefault(name.lower(), []).append(value)
    return values


def _comma_list(values: list[bytes]) -> tuple[str, ...]:
    items = (item.strip() for value in values for item in value.split(b","))
    return tuple(item.decode("latin-1") for item in items if item)


def is_websocket_request(request: Request) -> bool:
    """Whether ``request`` asks to switch to WebSocket: an HTTP/1.1 GET with
    ``Upgrade: websocket`` and ``Connection: upgrade``.

    Anything else carrying those fields is plain HTTP: a server may ignore an Upgrade
    (RFC 9110 §7.8), and RFC 6455 handshakes are GET over HTTP/1.1 only.
    """
    if request.upgrade is None or request.method != b"GET" or request.http_version != b"1.1":
        return False
    return any(token.lower() == "websocket" for token in _comma_list([request.upgrade]))


def check_handshake(request: Request) -> Handshake | HandshakeRejection:
    """Validate the WebSocket fields of ``request`` (one :func:`is_websocket_request` accepts).

    A missing or other ``Sec-WebSocket-Version`` gets 426 naming the version we speak
    (RFC 6455 §4.2.2); a key that is not 16 bytes in base64, or a request body, gets 400.
    """
    fields = _field_values(request.headers)
    if fields.get(b"sec-websocket-version") != [WEBSOCKET_VERSION]:
        return HandshakeRejection(
            426, "unsupported WebSocket version",
            [(b"Sec-WebSocket-Version", WEBSOCKET_VERSION)],
        )
    keys = fields.get(b"sec-websocket-key", [])
    if len(keys) != 1 or not _valid_key(keys[0]):
        return HandshakeRejection(400, "invalid Sec-WebSocket-Key")
    if request.chunked or request.content_length:
        return HandshakeRejection(400, "a WebSocket handshake has no body")
    return Handshake(
        key=keys[0],
        subprotocols=_comma_list(fields.get(b"sec-websocket-protocol", [])),
        extensions=_comma_list(fields.get(b"sec-websocket-extensions", [])),
    )


def _valid_key(key: bytes) -> bool:
    try:
        return len(base64.b64decode(key, validate=True)) == 16
    except (binascii.Error, ValueError):
        return False


def negotiate_deflate(offers: tuple[str, ...]) -> tuple[bytes, PerMessageDeflate] | None:
    """The ``Sec-WebSocket-Extensions`` answer and extension for the first acceptable
    permessage-deflate offer (RFC 7692 §5), or None.

    An offer with an unknown or repeated parameter, or window bits we cannot honour
    (zlib needs 9..15), is declined and the next one is tried.
    """
    for offer in offers:
        name, _, params = offer.partition(";")
        if name.strip().lower() != _DEFLATE or not _valid_deflate_params(params):
            continue
        extension = PerMessageDeflate()
        try:
            answer = extension.accept(offer)
        except ValueError:
            continue
        if answer is None:
            continue
        value = _DEFLATE if answer is True or not answer else f"{_DEFLATE}; {answer}"
        return value.encode("ascii"), extension
    return None


def _valid_deflate_params(params: str) -> bool:
    seen: set[str] = set()
    for param in params.split(";"):
        name, eq, value = (part.strip() for part in param.partition("="))
        if not name and not eq:
            continue
        if name not in _DEFLATE_PARAMS or name in seen:
            return False
        seen.add(name)
        value = value.strip('"')
        if name.endswith("no_context_takeover"):
            if eq:
                return False
        elif eq or name == "server_max_window_bits":
            if not (value.isdigit() and 9 <= int(value) <= 15):
                return False
    return True


# -- the session ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Message:
    """A complete message from the peer: ``str`` for text, ``bytes`` for binary."""

    data: str | bytes
    stream_id: int = 1


@dataclass(frozen=True, slots=True)
class Pong:
    """A pong from the peer (an answer to our ping, or unsolicited)."""

    payload: bytes
    stream_id: int = 1


@dataclass(frozen=True, slots=True)
class Closed:
    """The session is over: the peer's close code (1006 if the connection was lost), or the
    code we failed the connection with (1002, 1007, 1009...)."""

    code: int
    reason: str = ""
    stream_id: int = 1


SessionEvent = Message | Pong | Closed


def _join(parts: list[str | bytes]) -> str | bytes:
    if isinstance(parts[0], str):
        return "".join(cast(list[str], parts))
    return b"".join(cast(list[bytes], parts))


class SessionState(Enum):
    OPEN = "open"
    CLOSING = "closing"  # we sent a close frame and wait for the peer's
    CLOSED = "closed"  # the close handshake is done (or the peer vanished): close TCP
    FAILED = "failed"  # we failed the connection: send what is queued, then drop TCP


class SessionClosed(Exception):
    """A message or ping was sent after the session left the OPEN state."""


class WebSocketSession:
    """One WebSocket connection after the handshake (see the module docstring).

    ``max_message_size`` bounds a message being reassembled (in bytes; 0 = no limit): a
    larger one fails the connection with 1009 without buffering the rest.
    """

    def __init__(
        self, extensions: list[Extension] | None = None, *,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE, trailing_data: bytes = b"",
    ) -> None:
        self._conn = Connection(ConnectionType.SERVER, extensions or [])
        self._max = max_message_size
        self._state = SessionState.OPEN
        self._out = bytearray()
        self._events: deque[SessionEvent] = deque()
        self._source: Generator[Event, None, None] | None = None  # wsproto's events()
        self._parts: list[str | bytes] = []
        self._size = 0
        self._eof = False
        self.close_code: int | None = None
        self.close_reason = ""
        self.compressed = any(ext.enabled() for ext in extensions or [])
        if trailing_data:
            self.receive_data(trailing_data)

    @property
    def state(self) -> SessionState:
        return self._state

    # -- inbound ----------------------------------------------------------------------------
    def receive_data(self, data: bytes) -> None:
        """Bytes from the peer; ``b""`` means it closed the TCP connection."""
        if not data:
            self._eof = True
        elif self._state in (SessionState.OPEN, SessionState.CLOSING):
            self._conn.receive_data(data)
        # Past a close (or a failure) the peer's bytes are ignored.

    def next_event(self) -> SessionEvent | None:
        """The next event, or None when more bytes are needed (or the session is over)."""
        while not self._events:
            if self._state in (SessionState.CLOSED, SessionState.FAILED):
                return None
            event = self._next_wsproto_event()
            if event is None:
                if self._eof:
                    self._finish(SessionState.CLOSED, ABNORMAL_CLOSURE, "connection lost")
                    continue
                return None
            self._handle(event)
        return self._events.popleft()

    def _next_wsproto_event(self) -> Event | None:
        if self._source is None:
            self._source = self._conn.events()
        event = next(self._source, None)
        if event is None:
            self._source = None  # exhausted: a new generator sees the next bytes
        return event

    def _handle(self, event: Event) -> None:
        if isinstance(event, (TextMessage, BytesMessage)):
            self._add_part(event.data, event.message_finished)
        elif isinstance(event, Ping):
            if self._conn.state is ConnectionState.OPEN:
                self._out += self._conn.send(event.response())
        elif isinstance(event, WSProtoPong):
            self._events.append(Pong(bytes(event.payload)))
        elif isinstance(event, CloseConnection):
            self._on_close(event)

    def _add_part(self, data: str | bytes | bytearray, finished: bool) -> None:
        if self._state is not SessionState.OPEN:
            return  # data after our close frame is read and dropped (RFC 6455 §1.4)
        piece: str | bytes = data if isinstance(data, str) else bytes(data)
        if isinstance(piece, bytes) or piece.isascii():
            self._size += len(piece)
        else:
            self._size += len(piece.encode())
        if self._max and self._size > self._max:
            self._fail(MESSAGE_TOO_BIG, "message too big")
            return
        if self._parts or not finished:
            self._parts.append(piece)
            if not finished:
                return
            piece = _join(self._parts)
            self._parts = []
        self._size = 0
        self._events.append(Message(piece))

    def _on_close(self, event: CloseConnection) -> None:
        code, reason = int(event.code), event.reason or ""
        state = self._conn.state
        if state is ConnectionState.REMOTE_CLOSING:
            # The peer started the close handshake: answer with its code, then close TCP.
            self._out += self._conn.send(event.response())
            self._finish(SessionState.CLOSED, code, reason)
        elif state is ConnectionState.CLOSED:
            self._finish(SessionState.CLOSED, code, reason)  # the answer to our close
        else:
            # A protocol error of the peer: wsproto's state did not move (see module doc).
            self._fail(code, reason)

    def _fail(self, code: int, reason: str) -> None:
        if self._conn.state is ConnectionState.OPEN:
            self._out += self._conn.send(CloseConnection(code=code, reason=reason))
        self._parts = []
        self._finish(SessionState.FAILED, code, reason)

    def _finish(self, state: SessionState, code: int, reason: str) -> None:
        self._state = state
        self.close_code, self.close_reason = code, reason
        self._events.append(Closed(code, reason))

    # -- outbound ---------------------------------------------------------------------------
    def send_message(self, data: str | bytes) -> None:
        """Queue a text (``str``) or binary (``bytes``-like) message."""
        self._out += self._frame(data)

    def take_with_message(self, data: str | bytes) -> bytes:
        """:meth:`send_message` then :meth:`data_to_send` in one: the bytes queued for the
        peer with this message's frame last. The writer's hot path: when nothing else is
        queued the frame is returned as is, with no copy through the queue."""
        frame = self._frame(data)
        if not self._out:
            return frame
        self._out += frame
        return self.data_to_send()

    def _frame(self, data: str | bytes) -> bytes:
        """The frame(s) of a text (``str``) or binary message (the session must be open)."""
        self._require_open()
        if isinstance(data, str):
            return self._conn.send(TextMessage(data=data))
        return self._conn.send(BytesMessage(data=bytes(data)))

    def ping(self, payload: bytes = b"") -> None:
        """Queue a ping (at most 125 bytes of payload)."""
        if len(payload) > 125:
            raise ValueError("a ping payload is at most 125 bytes")
        self._require_open()
        self._out += self._conn.send(Ping(payload=payload))

    def close(self, code: int = NORMAL_CLOSURE, reason: str = "") -> None:
        """Start the close handshake (a no-op once closing or closed)."""
        if not (code in _LOCAL_ONLY or 1000 <= code <= 4999):
            raise ValueError(f"invalid WebSocket close code {code}")
        if self._state is not SessionState.OPEN:
            return
        self._out += self._conn.send(CloseConnection(code=code, reason=reason or None))
        self._parts = []
        self._state = SessionState.CLOSING

    def data_to_send(self) -> bytes:
        """Bytes queued for the peer (messages, pings, pong and close replies); clears them."""
        data = bytes(self._out)
        self._out.clear()
        return data

    def _require_open(self) -> None:
        if self._state is not SessionState.OPEN:
            raise SessionClosed(f"the WebSocket is {self._state.value}")
