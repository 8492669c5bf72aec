"""Property: however a valid pipelined byte stream is split, the events are the same.

The server-side parser must not depend on ``recv`` boundaries: random splits of a stream of
valid requests (Content-Length and chunked bodies, trailers, HTTP/1.0 keep-alive) give the
same events as parsing the whole buffer, and those events describe the requests sent. It
runs on each implementation (``--http-parser`` python and fast).
"""

from __future__ import annotations

import pytest

pytest.importorskip("hypothesis")

from corpus_harness import HTTP_PARSERS, drive_pieces  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from greenserve.protocol.events import (  # noqa: E402
    ConnectionClosed,
    Data,
    EndOfMessage,
    InboundEvent,
    Request,
)
from greenserve.protocol.policy import Limits  # noqa: E402

TOKEN_CHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
VALUE_BYTES = bytes(range(0x21, 0x7F)) + b" \t" + bytes(range(0x80, 0x100))
RESERVED = {b"host", b"content-length", b"transfer-encoding", b"connection", b"content-type",
            b"expect", b"upgrade"}

names = st.text(TOKEN_CHARS, min_size=1, max_size=12).map(str.encode).filter(
    lambda n: n.lower() not in RESERVED
)
values = st.binary(min_size=0, max_size=20).map(
    lambda b: bytes(VALUE_BYTES[x % len(VALUE_BYTES)] for x in b).strip(b" \t")
)
fields = st.lists(st.tuples(names, values), max_size=5)
targets = st.text("abcxyz0123456789-._~!$&'()*+,;=:@/?%", max_size=20).map(
    lambda t: b"/" + t.encode()
)


@st.composite
def requests(draw: st.DrawFn) -> tuple[bytes, tuple[bytes, bytes, list[tuple[bytes, bytes]],
                                                    bytes, list[tuple[bytes, bytes]]]]:
    """One valid request: its bytes, and (method, target, headers, body, trailers)."""
    method = draw(st.sampled_from([b"GET", b"POST", b"PUT", b"DELETE", b"M-SEARCH"]))
    target = draw(targets)
    headers = draw(fields)
    body = draw(st.binary(max_size=64))
    framing = draw(st.sampled_from(["length", "chunked", "http10"]))
    trailers: list[tuple[bytes, bytes]] = []
    if framing == "http10":
        head = [(b"Connection", b"keep-alive"), (b"Content-Length", b"%d" % len(body))]
        line = b"%s %s HTTP/1.0" % (method, target)
        wire_body = body
    else:
        line = b"%s %s HTTP/1.1" % (method, target)
        head = [(b"Host", b"example.com")]
        if framing == "length":
            head.append((b"Content-Length", b"%d" % len(body)))
            wire_body = body
        else:
            head.append((b"Transfer-Encoding", b"chunked"))
            trailers = draw(fields)
            wire_body = _chunked(body, draw(st.lists(st.integers(1, 16), max_size=8)), trailers)
    all_headers = [*head, *headers]
    raw = line + b"\r\n" + b"".join(b"%s: %s\r\n" % f for f in all_headers) + b"\r\n"
    return raw + wire_body, (method, target, all_headers, body, trailers)


def _chunked(body: bytes, sizes: list[int], trailers: list[tuple[bytes, bytes]]) -> bytes:
    out, pos = b"", 0
    for size in [*sizes, len(body)]:
        piece = body[pos : pos + size]
        if piece:
            out += b"%x;ext=1\r\n%s\r\n" % (len(piece), piece)
        pos += len(piece)
    return out + b"0\r\n" + b"".join(b"%s: %s\r\n" % t for t in trailers) + b"\r\n"


def _coalesced(events: list[InboundEvent]) -> list[InboundEvent]:
    """Merge adjacent Data events: their boundaries follow the recv boundaries."""
    out: list[InboundEvent] = []
    for event in events:
        if isinstance(event, Data) and out and isinstance(out[-1], Data):
            out[-1] = Data(out[-1].data + event.data)
        elif not (isinstance(event, Data) and not event.data):
            out.append(event)
    return out


@st.composite
def splits(draw: st.DrawFn, data: bytes) -> list[bytes]:
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(data) - 1)), max_size=40)))
    bounds = [0, *[c for c in cuts if c < len(data)], len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False) if b > a]


@pytest.mark.parametrize("http_parser", HTTP_PARSERS)
@settings(max_examples=300, deadline=None)
@given(stream=st.lists(requests(), min_size=1, max_size=4), data=st.data())
def test_random_splits_give_the_same_events(
    http_parser: str,
    stream: list[tuple[bytes, tuple[bytes, bytes, list[tuple[bytes, bytes]], bytes,
                                    list[tuple[bytes, bytes]]]]],
    data: st.DataObject,
) -> None:
    wire = b"".join(raw for raw, _ in stream)
    whole = drive_pieces([wire], Limits(), http_parser)
    pieces = data.draw(splits(wire))
    split = drive_pieces(pieces, Limits(), http_parser)
    assert _coalesced(split.events) == _coalesced(whole.events)
    assert split.wire == whole.wire

    # ... and what was parsed is what was sent, then a clean close.
    assert whole.error is None and whole.closed
    assert isinstance(whole.events[-1], ConnectionClosed)
    assert len(whole.served) == len(stream)
    for served, (_, (method, target, headers, body, trailers)) in zip(
        whole.served, stream, strict=True
    ):
        assert isinstance(served.request, Request)
        assert (served.request.method, served.request.target) == (method, target)
        assert served.request.headers == headers
        assert served.body == body and served.complete
        assert served.trailers == trailers
    assert sum(isinstance(e, EndOfMessage) for e in whole.events) == len(stream)
