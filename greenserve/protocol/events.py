"""The events that cross the sans-io line, in both directions.

Adapters (WSGI, ASGI) and the connection only ever see these types, never h11's or
httptools' own, so swapping the parser touches nothing above ``protocol/``.

Treat events as immutable values. They are not ``frozen`` dataclasses only because a frozen
dataclass costs about three times as much to build (its ``__init__`` goes through
``object.__setattr__`` for every field), and several are built for every request.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Headers = list[tuple[bytes, bytes]]


@dataclass(slots=True)
class Request:
    """A complete, validated request head.

    ``headers`` keep the order and the name case the client sent; values are stripped of
    surrounding whitespace. ``content_length`` is None for a chunked or empty body.
    """

    method: bytes
    target: bytes
    http_version: bytes
    headers: Headers
    keep_alive: bool
    chunked: bool = False
    content_length: int | None = None
    expect_continue: bool = False
    upgrade: bytes | None = None
    stream_id: int = 1
    #: the scheme the front end says the client used (uwsgi's ``HTTPS``), if it said one
    scheme: str | None = None


@dataclass(slots=True)
class Data:
    """A piece of a message body (request body in, response body out)."""

    data: bytes
    stream_id: int = 1


@dataclass(slots=True)
class EndOfMessage:
    """The end of a message body, with trailers when the chunked encoding had some."""

    trailers: Headers = field(default_factory=list)
    stream_id: int = 1


@dataclass(slots=True)
class Response:
    """A final response head, sent by the server."""

    status_code: int
    headers: Headers
    reason: bytes = b""
    stream_id: int = 1


@dataclass(slots=True)
class InformationalResponse:
    """A 1xx response (100 Continue, 103 Early Hints)."""

    status_code: int
    headers: Headers = field(default_factory=list)
    reason: bytes = b""
    stream_id: int = 1


@dataclass(slots=True)
class ProtocolError:
    """The peer broke the protocol; answer ``status_code`` (if any) and close.

    ``status_code`` is None when no response should be sent (e.g. EOF mid-head).
    """

    status_code: int | None
    reason: str
    stream_id: int = 1


@dataclass(slots=True)
class ConnectionClosed:
    """The peer closed its side cleanly between requests."""

    stream_id: int = 1


InboundEvent = Request | Data | EndOfMessage | ProtocolError | ConnectionClosed
OutboundEvent = Response | InformationalResponse | Data | EndOfMessage
