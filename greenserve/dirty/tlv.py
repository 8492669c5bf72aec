"""The values dirty-app calls carry, as type-length-value bytes (gunicorn 25's encoding).

Sans-io and wire-compatible with gunicorn's ``gunicorn.dirty.tlv``: one type byte, then
None (nothing), bool (1 byte), int64 and float64 (8 bytes, big-endian), bytes and str
(u32 length, then the bytes or UTF-8), list and dict (u32 count, then the items; a dict's
keys are sent as strings). Nothing else is accepted: no pickle, no code on the wire.
"""

from __future__ import annotations

import struct
from typing import Any

NONE, BOOL, INT64, FLOAT64, BYTES, STRING, LIST, DICT = (
    0x00, 0x01, 0x05, 0x06, 0x10, 0x11, 0x20, 0x21)
MAX_SIZE = 64 * 1024 * 1024  # one bytes or str value
MAX_ITEMS = 1024 * 1024  # one list or dict

_U32 = struct.Struct(">I")
_I64 = struct.Struct(">q")
_F64 = struct.Struct(">d")


class TLVError(ValueError):
    """A value that cannot be encoded, or bytes that are not a valid encoding."""


def encode(value: Any) -> bytes:
    """The bytes of ``value``; TLVError for a type or size the encoding has no room for."""
    out: list[bytes] = []
    _encode(value, out)
    return b"".join(out)


def _encode(value: Any, out: list[bytes]) -> None:
    if value is None:
        out.append(b"\x00")
    elif isinstance(value, bool):
        out.append(b"\x01\x01" if value else b"\x01\x00")
    elif isinstance(value, int):
        try:
            out.append(b"\x05" + _I64.pack(value))
        except struct.error:
            raise TLVError(f"integer out of the int64 range: {value}") from None
    elif isinstance(value, float):
        out.append(b"\x06" + _F64.pack(value))
    elif isinstance(value, (bytes, bytearray, memoryview)):
        _sized(BYTES, bytes(value), out)
    elif isinstance(value, str):
        _sized(STRING, value.encode("utf-8"), out)
    elif isinstance(value, (list, tuple)):
        _count(LIST, len(value), out)
        for item in value:
            _encode(item, out)
    elif isinstance(value, dict):
        _count(DICT, len(value), out)
        for key, item in value.items():
            _encode(str(key), out)
            _encode(item, out)
    else:
        raise TLVError(f"cannot send a {type(value).__name__} to or from a dirty app")


def _sized(kind: int, data: bytes, out: list[bytes]) -> None:
    if len(data) > MAX_SIZE:
        raise TLVError(f"value too large: {len(data)} bytes (max {MAX_SIZE})")
    out.append(bytes((kind,)) + _U32.pack(len(data)) + data)


def _count(kind: int, count: int, out: list[bytes]) -> None:
    if count > MAX_ITEMS:
        raise TLVError(f"too many items: {count} (max {MAX_ITEMS})")
    out.append(bytes((kind,)) + _U32.pack(count))


def decode(data: bytes) -> Any:
    """The value ``data`` encodes, all of it (TLVError otherwise)."""
    value, end = _decode(memoryview(data), 0)
    if end != len(data):
        raise TLVError(f"{len(data) - end} bytes after the value")
    return value


def _decode(data: memoryview, at: int) -> tuple[Any, int]:
    try:
        kind = data[at]
        at += 1
        if kind == NONE:
            return None, at
        if kind == BOOL:
            return data[at] != 0, at + 1
        if kind == INT64:
            return _I64.unpack_from(data, at)[0], at + 8
        if kind == FLOAT64:
            return _F64.unpack_from(data, at)[0], at + 8
        (size,) = _U32.unpack_from(data, at)
        at += 4
        if kind in (BYTES, STRING):
            if size > MAX_SIZE or at + size > len(data):
                raise TLVError("truncated or oversized value")
            raw = bytes(data[at:at + size])
            return (raw if kind == BYTES else raw.decode("utf-8")), at + size
        if size > MAX_ITEMS:
            raise TLVError(f"too many items: {size}")
        if kind == LIST:
            items = []
            for _ in range(size):
                item, at = _decode(data, at)
                items.append(item)
            return items, at
        if kind == DICT:
            mapping = {}
            for _ in range(size):
                key, at = _decode(data, at)
                mapping[key], at = _decode(data, at)
            return mapping, at
    except (IndexError, struct.error, UnicodeDecodeError) as exc:
        raise TLVError(f"malformed value: {exc}") from None
    raise TLVError(f"unknown type byte 0x{kind:02x}")
