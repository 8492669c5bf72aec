"""The interface every server-side HTTP connection implementation provides."""

from __future__ import annotations

from typing import Protocol

from .events import InboundEvent, OutboundEvent, Request


class ServerConnection(Protocol):
    """Sans-io server connection: feed bytes, pull events, turn outbound events into bytes.

    One object per TCP connection, reused across keep-alive cycles.
    """

    @property
    def keep_alive(self) -> bool:
        """Whether the connection may serve another request after this one."""

    @property
    def request(self) -> Request | None:
        """The head of the request being served, if any."""

    @property
    def request_complete(self) -> bool:
        """The request body has been received completely."""

    @property
    def response_complete(self) -> bool:
        """The response has been sent completely."""

    @property
    def response_started(self) -> bool:
        """A final response head has been produced for this cycle."""

    def receive_data(self, data: bytes) -> None:
        """Buffer bytes from the peer; ``b""`` means the peer closed its side."""

    def next_event(self) -> InboundEvent | None:
        """The next inbound event, or None when more bytes are needed."""

    def send(self, event: OutboundEvent) -> bytes:
        """The bytes that carry ``event`` (raises LocalProtocolError on misuse)."""

    def start_next_cycle(self) -> None:
        """Reset for the next request on a kept-alive connection."""

    @property
    def trailing_data(self) -> bytes:
        """Bytes received past the current message (pipelined requests, upgrades)."""
