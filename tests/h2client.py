"""A small blocking HTTP/2 client on the ``h2`` package, for tests that need the frames.

httpx covers ordinary requests; this one sends what httpx will not (bad heads, resets,
floods, tiny windows, the h2c upgrade) and shows every event the server caused.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.settings


@dataclass
class Reply:
    """What came back on one stream."""

    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    informational: list[list[tuple[bytes, bytes]]] = field(default_factory=list)
    body: bytes = b""
    trailers: list[tuple[bytes, bytes]] = field(default_factory=list)
    ended: bool = False
    reset: int | None = None  # the RST_STREAM error code

    @property
    def status(self) -> int:
        return int(dict(self.headers)[b":status"])

    def header(self, name: bytes) -> bytes | None:
        return dict(self.headers).get(name)


class H2Client:
    """One HTTP/2 connection over ``sock`` (prior knowledge unless ``upgraded``)."""

    def __init__(self, sock: socket.socket, *, window: int | None = None,
                 upgraded: bool = False, settings: dict[int, int] | None = None) -> None:
        self.sock = sock
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=True, header_encoding=None, validate_outbound_headers=False,
            normalize_outbound_headers=False))
        initial = dict(settings or {})
        if window is not None:
            initial[h2.settings.SettingCodes.INITIAL_WINDOW_SIZE] = window
        if initial:
            self.conn.local_settings = h2.settings.Settings(client=True, initial_values=initial)
        if not upgraded:
            self.conn.initiate_connection()
            self.flush()
        self.replies: dict[int, Reply] = {}
        self.goaway: h2.events.ConnectionTerminated | None = None
        self.remote_settings: dict[int, int] = {}
        self.closed = False
        self.auto_ack = True

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(self, path: str, *, method: str = "GET", body: bytes | None = None,
                headers: list[tuple[str, str]] | None = None,
                authority: str = "127.0.0.1", raw: list[tuple[bytes, bytes]] | None = None,
                end: bool = True) -> int:
        """Send a request; returns its stream id. ``raw`` replaces the whole header list."""
        stream_id = self.conn.get_next_available_stream_id()
        if raw is None:
            raw = [(b":method", method.encode()), (b":scheme", b"http"),
                   (b":authority", authority.encode()), (b":path", path.encode()),
                   *((k.lower().encode(), v.encode()) for k, v in headers or ())]
        self.conn.send_headers(stream_id, raw, end_stream=body is None and end)
        self.replies[stream_id] = Reply()
        if body is not None:
            self.send_body(stream_id, body, end=end)
        self.flush()
        return stream_id

    def send_body(self, stream_id: int, body: bytes, *, end: bool = True) -> None:
        """Send ``body`` as the windows allow (reading the server's updates meanwhile)."""
        view = memoryview(body)
        while view:
            size = min(self.conn.local_flow_control_window(stream_id),
                       self.conn.max_outbound_frame_size, len(view))
            if size <= 0:
                self.flush()
                self.pump()
                continue
            self.conn.send_data(stream_id, bytes(view[:size]))
            view = view[size:]
        if end:
            self.conn.end_stream(stream_id)
        self.flush()

    def pump(self, timeout: float = 10.0) -> bool:
        """Read once and handle what came; False at EOF."""
        self.sock.settimeout(timeout)
        data = self.sock.recv(65536)
        if not data:
            self.closed = True
            return False
        for event in self.conn.receive_data(data):
            self._handle(event)
        self.flush()
        return True

    def _handle(self, event: Any) -> None:
        reply = self.replies.get(getattr(event, "stream_id", None) or 0)
        if isinstance(event, h2.events.ResponseReceived) and reply:
            reply.headers = list(event.headers)
        elif isinstance(event, h2.events.InformationalResponseReceived) and reply:
            reply.informational.append(list(event.headers))
        elif isinstance(event, h2.events.DataReceived) and reply is not None:
            reply.body += event.data
            if self.auto_ack:
                self.conn.acknowledge_received_data(event.flow_controlled_length,
                                                    event.stream_id)
        elif isinstance(event, h2.events.TrailersReceived) and reply:
            reply.trailers = list(event.headers)
        elif isinstance(event, h2.events.StreamEnded) and reply is not None:
            reply.ended = True
        elif isinstance(event, h2.events.StreamReset) and reply is not None:
            reply.reset = event.error_code
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.goaway = event
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            self.remote_settings.update(
                {code: changed.new_value for code, changed in event.changed_settings.items()})

    def response(self, stream_id: int, timeout: float = 10.0) -> Reply:
        """Read until the stream ends (or is reset, or the connection closes)."""
        reply = self.replies[stream_id]
        while not (reply.ended or reply.reset is not None or self.closed):
            self.pump(timeout)
        return reply

    def until_goaway(self, timeout: float = 10.0) -> h2.events.ConnectionTerminated | None:
        while self.goaway is None and not self.closed:
            self.pump(timeout)
        return self.goaway

    def get(self, path: str, **kwargs: Any) -> Reply:
        return self.response(self.request(path, **kwargs))

