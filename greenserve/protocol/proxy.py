"""The PROXY protocol header (HAProxy's v1 text line and v2 binary block), sans-io.

A load balancer that speaks it (HAProxy ``send-proxy``, AWS NLB, ...) sends one header at the
start of each connection, before any HTTP, naming the client it accepted the connection
from. :func:`parse` reads it from the bytes received so far; the connection
(:mod:`greenserve.connection`) then serves the rest as HTTP with the client's address in
place of the balancer's. As in gunicorn the header is optional when enabled: a connection
that starts with HTTP is served as it is.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

V1_PREFIX = b"PROXY "
V1_MAX = 107  # the longest v1 line, CRLF included (the spec's bound)
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
_V2_FAMILIES = {0x11: (4, 12), 0x12: (4, 12), 0x21: (16, 36), 0x22: (16, 36)}
MODES = ("off", "v1", "v2", "auto")


class ProxyHeaderError(ValueError):
    """The connection starts with a malformed PROXY header (answered 400)."""


@dataclass(frozen=True)
class ProxyHeader:
    """A parsed header: the addresses the balancer saw, or None for the v1 ``UNKNOWN`` and
    v2 ``LOCAL`` forms (health checks: the connection's own addresses stand)."""

    client: tuple[str, int] | None
    server: tuple[str, int] | None
    version: int


#: the bytes start with HTTP, not with a PROXY header
NO_HEADER = ProxyHeader(None, None, 0)


def parse(data: bytes, mode: str) -> tuple[ProxyHeader, int] | None:
    """The header at the start of ``data`` and the bytes it used; None when more bytes are
    needed to tell; ``(NO_HEADER, 0)`` when the connection starts with something else.
    Raises :class:`ProxyHeaderError` for a malformed header."""
    if mode in ("v2", "auto"):
        if data[:12] == V2_SIGNATURE[: len(data)]:
            return _v2(data) if len(data) >= 12 else None
    if mode in ("v1", "auto"):
        if data[:6] == V1_PREFIX[: len(data)]:
            return _v1(data) if len(data) >= 6 else None
    return NO_HEADER, 0


def _v1(data: bytes) -> tuple[ProxyHeader, int] | None:
    end = data.find(b"\r\n", 0, V1_MAX)
    if end < 0:
        if len(data) >= V1_MAX:
            raise ProxyHeaderError("PROXY v1 line longer than 107 bytes")
        return None
    parts = data[:end].decode("latin-1").split(" ")
    if len(parts) >= 2 and parts[1] == "UNKNOWN":
        return ProxyHeader(None, None, 1), end + 2
    if len(parts) != 6 or parts[1] not in ("TCP4", "TCP6"):
        raise ProxyHeaderError(f"invalid PROXY v1 line: {data[:end][:80]!r}")
    version = 4 if parts[1] == "TCP4" else 6
    client = (_address(parts[2], version), _port(parts[4]))
    server = (_address(parts[3], version), _port(parts[5]))
    return ProxyHeader(client, server, 1), end + 2


def _address(text: str, version: int) -> str:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise ProxyHeaderError(f"invalid address in PROXY line: {text[:60]!r}") from None
    if address.version != version:
        raise ProxyHeaderError(f"IPv{address.version} address in a TCP{version} PROXY line")
    return str(address)


def _port(text: str) -> int:
    if not (text.isdigit() and text.isascii()) or len(text) > 5 or int(text) > 65535 \
            or (len(text) > 1 and text[0] == "0"):
        raise ProxyHeaderError(f"invalid port in PROXY line: {text[:10]!r}")
    return int(text)


def _v2(data: bytes) -> tuple[ProxyHeader, int] | None:
    if len(data) < 16:
        return None
    version_command, family, length = data[12], data[13], struct.unpack_from("!H", data, 14)[0]
    if version_command >> 4 != 2 or version_command & 0x0F > 1:
        raise ProxyHeaderError(f"unsupported PROXY v2 version/command 0x{version_command:02x}")
    end = 16 + length
    if len(data) < end:
        return None
    if version_command & 0x0F == 0 or family not in _V2_FAMILIES:
        return ProxyHeader(None, None, 2), end  # LOCAL, or an address family without IPs
    size, needed = _V2_FAMILIES[family]
    if length < needed:
        raise ProxyHeaderError("PROXY v2 address block too short")
    block = data[16:16 + needed]
    src = str(ipaddress.ip_address(block[:size]))
    dst = str(ipaddress.ip_address(block[size:2 * size]))
    sport, dport = struct.unpack_from("!HH", block, 2 * size)
    return ProxyHeader((src, sport), (dst, dport), 2), end
