"""Dirty-app messages: a 16-byte header and one TLV value (gunicorn 25's binary protocol).

Header: ``b"GD"``, version 1, the message type, the payload's length (u32) and a request id
(u64), big-endian. :class:`Channel` reads and writes whole messages on a blocking socket.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from typing import Any

from . import tlv
from .errors import DirtyProtocolError

HEADER = struct.Struct(">2sBBIQ")
MAGIC, VERSION = b"GD", 1
REQUEST, RESPONSE, ERROR, CHUNK, END = 0x01, 0x02, 0x03, 0x04, 0x05
STASH, STATUS, MANAGE = 0x10, 0x11, 0x12
KINDS = frozenset((REQUEST, RESPONSE, ERROR, CHUNK, END, STASH, STATUS, MANAGE))
MAX_MESSAGE = 64 * 1024 * 1024


def pack(kind: int, request_id: int, payload: Any = None) -> bytes:
    """One message; a None payload is sent empty (END, STATUS)."""
    body = b"" if payload is None else tlv.encode(payload)
    return HEADER.pack(MAGIC, VERSION, kind, len(body), request_id) + body


class Channel:
    """Whole messages over one connected stream socket (blocking, with its timeout)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def send(self, kind: int, request_id: int, payload: Any = None) -> None:
        self.sock.sendall(pack(kind, request_id, payload))

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def receive(self) -> tuple[int, int, Any, bytes]:
        """(type, request id, payload, the raw message); DirtyProtocolError at EOF or on
        bytes that are not a message."""
        head = self._exactly(HEADER.size)
        magic, version, kind, length, request_id = HEADER.unpack(head)
        if magic != MAGIC or version != VERSION or kind not in KINDS:
            raise DirtyProtocolError(f"not a dirty-app message: {head[:4]!r}")
        if length > MAX_MESSAGE:
            raise DirtyProtocolError(f"message too large: {length} bytes")
        body = self._exactly(length) if length else b""
        try:
            payload = tlv.decode(body) if body else {}
        except tlv.TLVError as exc:
            raise DirtyProtocolError(f"bad payload: {exc}") from None
        return kind, request_id, payload, head + body

    def incoming(self) -> Iterator[tuple[int, int, Any, bytes]]:
        """Each message :meth:`receive` reads, until the peer closes the connection or
        sends something that is not a message (what a server loop wants)."""
        while True:
            try:
                yield self.receive()
            except (DirtyProtocolError, OSError):
                return

    def _exactly(self, size: int) -> bytes:
        chunks: list[bytes] = []
        while size:
            chunk = self.sock.recv(min(size, 1 << 20))
            if not chunk:
                raise DirtyProtocolError("Connection closed")
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
