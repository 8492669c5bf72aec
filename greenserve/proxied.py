"""``--proxy-protocol``: read a connection's PROXY header before its first request.

The parsing is sans-io (:mod:`greenserve.protocol.proxy`); this module does the reads, the
``--proxy-allow-from`` check, and hands the connection the client's address and the bytes
that followed the header.
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING

from .protocol.events import ProtocolError
from .protocol.proxy import NO_HEADER, ProxyHeaderError, parse
from .streams import ClientDisconnected

if TYPE_CHECKING:
    from .connection import HTTPConnection

_RECV_SIZE = 65536


def read_header(conn: HTTPConnection) -> ProtocolError | None:
    """Consume the PROXY header the connection starts with, if any; the refusal to answer
    when it is malformed (400) or comes from a peer that may not send one (403).

    Raises ClientDisconnected or TimeoutError (``--header-timeout``) when the client leaves or
    stalls before the header is complete.
    """
    state = conn.state
    deadline = time.monotonic() + state.cfg.header_timeout
    data = b""
    while True:
        try:
            found = parse(data, state.cfg.proxy_protocol)
        except ProxyHeaderError as exc:
            return ProtocolError(400, f"invalid PROXY header: {exc}")
        if found is not None:
            break
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("timed out reading the PROXY header")
        conn.sock.settimeout(remaining)
        try:
            chunk = conn.sock.recv(_RECV_SIZE)
        except ConnectionError:
            chunk = b""
        if not chunk:
            raise ClientDisconnected("connection closed before the PROXY header ended")
        data += chunk
    header, used = found
    if header is not NO_HEADER:
        if state.proxy_allow is None or not state.proxy_allow.allows(conn.info):
            return ProtocolError(403, "PROXY header from a peer not in --proxy-allow-from")
        if header.client is not None:
            conn.info = dataclasses.replace(conn.info, client=header.client,
                                            server=header.server, proxy=conn.info.client)
    if data[used:]:
        conn.proto.receive_data(data[used:])
    return None
