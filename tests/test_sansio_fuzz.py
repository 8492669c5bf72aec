"""Property tests of the sans-io parts added with HTTP/2 and dirty apps: whatever bytes a
peer sends, the answer is a value or the module's own error, never a crash."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from greenserve.dirty import tlv
from greenserve.protocol.events import Request
from greenserve.protocol.h2request import request_from_headers
from greenserve.protocol.policy import Limits, Rejection

_NAMES = st.sampled_from([b":method", b":path", b":scheme", b":authority", b":protocol",
                          b"host", b"content-length", b"content-type", b"cookie", b"te",
                          b"connection", b"Upper", b"x-a", b"", b"expect"])
_VALUES = st.one_of(st.sampled_from([b"GET", b"POST", b"/", b"*", b"http", b"a.test", b"12",
                                     b"trailers", b"100-continue", b" x", b"-1"]),
                    st.binary(max_size=40))
_HEADERS = st.lists(st.tuples(st.one_of(_NAMES, st.binary(max_size=12)), _VALUES),
                    max_size=12)


@settings(max_examples=400, deadline=None)
@given(_HEADERS, st.booleans(), st.booleans())
def test_any_http2_head_is_a_request_or_a_rejection(headers, has_body, trusted) -> None:  # type: ignore[no-untyped-def]
    result = request_from_headers(headers, 1, Limits(), has_body=has_body,
                                  trust_scheme=trusted)
    assert isinstance(result, (Request, Rejection))
    if isinstance(result, Request):
        names = [name for name, _ in result.headers]
        assert all(not name.startswith(b":") for name in names)
        assert names.count(b"host") <= 1 and names.count(b"cookie") <= 1
        assert result.http_version == b"2.0"
    else:
        assert result.status in (400, 414, 431, 501)


_PLAIN = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1),
              st.floats(allow_nan=False), st.text(max_size=20), st.binary(max_size=20)),
    lambda inner: st.one_of(st.lists(inner, max_size=5),
                            st.dictionaries(st.text(max_size=8), inner, max_size=5)),
    max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(_PLAIN)
def test_tlv_round_trips(value) -> None:  # type: ignore[no-untyped-def]
    assert tlv.decode(tlv.encode(value)) == value


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=64))
def test_tlv_decodes_garbage_to_a_value_or_its_own_error(data) -> None:  # type: ignore[no-untyped-def]
    try:
        tlv.decode(data)
    except tlv.TLVError:
        pass


def test_tlv_refuses_what_it_cannot_carry() -> None:
    for bad in (object(), {1, 2}, 2**64):
        try:
            tlv.encode(bad)
        except tlv.TLVError:
            continue
        raise AssertionError(f"{bad!r} was encoded")
    huge_list = b"\x20" + struct.pack(">I", 2**30)
    try:
        tlv.decode(huge_list)
    except tlv.TLVError as exc:
        assert "too many items" in str(exc)
    else:
        raise AssertionError("a list of 2**30 items was accepted")
