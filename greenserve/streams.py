"""What an adapter sees of one request: its head, ``receive()`` for the body, ``send()``.

HTTP/1 streams are *inline*: the adapter runs in the connection's greenlet and ``receive()``
reads more bytes from the socket only when the app asks for body, so a request body is never
buffered whole and ``100 Continue`` goes out only when the app first reads.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .protocol.events import (
    Data,
    EndOfMessage,
    Headers,
    InformationalResponse,
    ProtocolError,
    Request,
)
from .protocol.writer import LocalProtocolError
from .stream_errors import BodyError as BodyError
from .stream_errors import ClientDisconnected as ClientDisconnected

if TYPE_CHECKING:
    from .connection import HTTPConnection


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    """Addresses and scheme of the connection a request arrived on."""

    client: tuple[str, int] | None
    server: tuple[str, int] | None
    scheme: str = "http"
    unix_path: str | None = None
    #: the balancer's address when a PROXY header named ``client`` (--proxy-protocol)
    proxy: tuple[str, int] | None = None

    @property
    def peer(self) -> str:
        """Who is on the other end, as log lines name it: an address, a unix path, or -."""
        return self.client[0] if self.client else self.unix_path or "-"


class InlineStream:
    """A request/response pair on an HTTP/1 connection (see module docstring)."""

    def __init__(self, conn: HTTPConnection, request: Request) -> None:
        self.conn = conn
        self.request = request
        self.info = conn.info
        self.status: int | None = None
        self.response_headers: Headers = []
        self.bytes_sent = 0
        self.body_done = False
        self._continue_sent = False

    # -- request body -----------------------------------------------------------------------
    def receive(self) -> bytes:
        """The next piece of request body; ``b""`` once the body is complete."""
        if self.body_done:
            return b""
        if self.request.expect_continue and not self._continue_sent:
            self._continue_sent = True
            if not self.conn.proto.response_started:
                self.conn.write(self.conn.proto.send(InformationalResponse(100)))
        while True:
            event = self.conn.next_event()
            match event:
                case Data(data=data):
                    if data:
                        return data
                case EndOfMessage():
                    self.body_done = True
                    return b""
                case ProtocolError():
                    raise BodyError(event)
                case _:
                    raise ClientDisconnected(f"unexpected {event!r} while reading the body")

    # -- response ---------------------------------------------------------------------------
    @property
    def response_started(self) -> bool:
        """The response head has been sent."""
        return self.status is not None

    def send_head(self, status: int, headers: Headers, reason: bytes = b"") -> None:
        """Send the response head (the connection adds Date, Server and framing)."""
        self.status = status
        self.response_headers = headers
        self.conn.send_head(status, headers, reason)

    def send_data(self, data: bytes, end: bool = False) -> None:
        """Send a piece of the response body; ``end`` finishes the response with it (one
        write for a whole body)."""
        conn = self.conn
        if data:
            self.bytes_sent += len(data)
            data = conn.proto.send_data(data)
        elif not end:
            return
        if end:
            try:
                data += conn.proto.send_end()
            except LocalProtocolError:
                conn.write(data)  # a body short of its length: what came goes out first
                raise
        conn.write(data)

    def end(self, trailers: Headers | None = None) -> None:
        """Finish the response."""
        self.conn.write(self.conn.proto.send_end(trailers))

    def send_text(self, status: int, text: str, headers: Headers | None = None) -> None:
        """A whole short ``text/plain`` response (``"<status> <text>\n"``): what the server
        answers itself, before or instead of the app."""
        body = f"{status} {text}\n".encode()
        self.send_head(status, [(b"Content-Type", b"text/plain; charset=utf-8"),
                                (b"Content-Length", b"%d" % len(body)), *(headers or ())])
        self.send_data(body, end=True)

    def sendfile(self, fileobj: object, offset: int, count: int | None) -> int:
        """Send file bytes straight from the kernel; returns the bytes sent."""
        sent = self.conn.sendfile(fileobj, offset, count)
        self.bytes_sent += sent
        return sent

    # -- switching protocols ----------------------------------------------------------------
    @property
    def sock(self) -> socket.socket:
        """The client socket (``gunicorn.socket``), for apps that take the connection over."""
        return self.conn.sock

    @property
    def upgraded(self) -> bool:
        """101 was sent: the connection speaks another protocol and no response may follow."""
        return self.conn.upgraded

    def prepare_upgrade(self) -> None:
        """The request may switch protocols: see :meth:`HTTPConnection.prepare_upgrade`."""
        self.conn.prepare_upgrade()

    def switch_protocols(self, headers: Headers) -> tuple[socket.socket, bytes]:
        """Send 101 and take the socket over, with the bytes read past the request head."""
        taken = self.conn.switch_protocols(headers)
        self.status = 101
        self.response_headers = headers
        return taken
