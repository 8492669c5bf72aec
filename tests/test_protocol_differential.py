"""Differential test: the h11 and the httptools connections do exactly the same thing.

Every case of both request corpora (PROXY-protocol ones included: to HTTP/1 they are just
bytes) is fed to both implementations whole, one byte at a time and in seeded random
pieces, then EOF; the responses follow the harness' fixed script (``corpus_harness._record``:
100 Continue, chunked with a trailer for HTTP/1.1, Content-Length for HTTP/1.0, the error
answer for a refused request). The events and the response bytes must be identical.

A few hand-written streams add what the corpora lack (100-continue, pipelined HEAD, the
leniency settings). Seeded mutations of each case (a byte changed, inserted or deleted in
the head) probe the bytes around the corpus, where a difference between llhttp and h11
would show.
"""

from __future__ import annotations

import random

import pytest
from corpus_harness import CHUNKINGS, Case, Outcome, all_cases, drive, shared_dir

from greenserve.protocol.policy import HeadScanner, Limits

pytest.importorskip("httptools")

if shared_dir() is None:
    pytest.skip(
        "shared/ corpus not found (looked at ../shared and $GREENSERVE_SHARED)",
        allow_module_level=True,
    )

CASES = list(all_cases())
H = b"Host: h\r\n"
EXTRA: list[tuple[str, bytes, Limits]] = [
    ("expect-100", b"POST /up HTTP/1.1\r\n" + H + b"Expect: 100-continue\r\n"
     b"Content-Length: 5\r\n\r\nhello", Limits()),
    ("head-then-get", b"HEAD /a HTTP/1.1\r\n" + H + b"\r\nGET /b HTTP/1.1\r\n" + H + b"\r\n",
     Limits()),
    ("http10-keep-alive", b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
     b"POST /b HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nhiGET /c "
     b"HTTP/1.0\r\n\r\n", Limits()),
    ("upgrade", b"GET /ws HTTP/1.1\r\n" + H + b"Connection: Upgrade\r\nUpgrade: websocket\r\n"
     b"\r\n\x81\x05hello", Limits()),
    ("connect", b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", Limits()),
    ("options-star", b"OPTIONS * HTTP/1.1\r\n" + H + b"\r\n", Limits()),
    ("absolute-userinfo", b"GET http://u:p@h:80/x?y HTTP/1.1\r\n" + H + b"\r\n", Limits()),
    ("methods-llhttp-lacks", b"FOO /a HTTP/1.1\r\n" + H + b"\r\nPRI /b HTTP/1.1\r\n" + H
     + b"\r\nANNOUNCE /c HTTP/1.1\r\n" + H + b"\r\n", Limits()),
    ("casefold", b"get /a HTTP/1.1\r\n" + H + b"\r\n",
     Limits(permit_unconventional_http_method=True, casefold_http_method=True)),
    ("folding", b"GET / HTTP/1.1\r\n" + H + b"X: a\r\n  b\r\n\tc\r\n\r\n",
     Limits(permit_obsolete_folding=True)),
    ("strip-spaces", b"GET / HTTP/1.1\r\n" + H + b"X-A \t: 1\r\n\r\n",
     Limits(strip_header_spaces=True)),
    ("chunked-pipelined", b"POST /c HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
     b"3;a=b\r\nabc\r\n0\r\nT: 1\r\n\r\nPUT /d HTTP/1.1\r\n" + H
     + b"Content-Length: 1\r\n\r\nx", Limits()),
    ("whitespace-in-values", b"GET / HTTP/1.1\r\nHost:h \t\r\nX:\t a b \r\nY:\r\n\r\n",
     Limits()),
    ("cl-te", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 3\r\nTransfer-Encoding: chunked"
     b"\r\n\r\n0\r\n\r\n", Limits()),
    ("te-gzip", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip, chunked\r\n\r\n",
     Limits()),
    ("http2-version", b"GET / HTTP/2.0\r\n" + H + b"\r\n", Limits()),
    ("long-line", b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\n" + H + b"\r\n", Limits()),
    ("bad-chunk", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
     b"5 \r\nhello\r\n0\r\n\r\n", Limits()),
    # httptools keeps a parser for the next head when the last ended its message: a body,
    # an unknown method, HTTP/1.0 and an Upgrade after kept parsers
    ("kept-parser", b"GET /a HTTP/1.1\r\n" + H + b"\r\nGET /b HTTP/1.1\r\n" + H + b"X: 1\r\n"
     b"\r\nPOST /c HTTP/1.1\r\n" + H + b"Content-Length: 2\r\n\r\nhiGET /d HTTP/1.1\r\n" + H
     + b"\r\nFOO /e HTTP/1.1\r\n" + H + b"\r\nGET /f HTTP/1.0\r\nConnection: keep-alive\r\n"
     b"\r\nGET /g HTTP/1.1\r\n" + H + b"Connection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
     b"GET /h HTTP/1.1\r\n" + H + b"\r\n", Limits()),
    ("kept-parser-bad-head", b"GET /a HTTP/1.1\r\n" + H + b"\r\nGET /b HTTP/1.1\r\n" + H
     + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\n", Limits()),
]
MUTATIONS_PER_CASE = 4
# Bytes a mutation writes: the ones the rules care about, and a few ordinary ones.
INTERESTING = b"\r\n\t :;,\"\\/?#*%\x00\x01\x7f\x80\xff0aAzZ-_."


def _assert_same(python: Outcome, fast: Outcome) -> None:
    assert fast.events == python.events
    assert bytes(fast.wire) == bytes(python.wire)
    assert (fast.stalled, fast.after_error) == (python.stalled, python.after_error)


@pytest.mark.parametrize("chunking", CHUNKINGS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_both_parsers_agree_on_the_corpus(case: Case, chunking: str) -> None:
    python = drive(case.data, case.limits, chunking, "python")
    fast = drive(case.data, case.limits, chunking, "fast")
    _assert_same(python, fast)


@pytest.mark.parametrize("chunking", CHUNKINGS)
@pytest.mark.parametrize(("data", "limits"), [pytest.param(d, lim, id=i) for i, d, lim in EXTRA])
def test_both_parsers_agree_on_extra_streams(data: bytes, limits: Limits, chunking: str) -> None:
    python = drive(data, limits, chunking, "python")
    fast = drive(data, limits, chunking, "fast")
    _assert_same(python, fast)


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One byte changed, inserted or deleted, somewhere in the first head."""
    end = data.find(b"\r\n\r\n")
    pos = rng.randrange(max(1, end if end > 0 else len(data)))
    byte = bytes([rng.choice(INTERESTING)])
    kind = rng.choice(("replace", "insert", "delete"))
    if kind == "replace":
        return data[:pos] + byte + data[pos + 1 :]
    if kind == "insert":
        return data[:pos] + byte + data[pos:]
    return data[:pos] + data[pos + 1 :]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_both_parsers_agree_on_mutated_cases(case: Case) -> None:
    rng = random.Random(case.id)
    for _ in range(MUTATIONS_PER_CASE):
        data = mutate(case.data, rng)
        for chunking in ("whole", "random-1"):
            python = drive(data, case.limits, chunking, "python")
            fast = drive(data, case.limits, chunking, "fast")
            _assert_same(python, fast)


def test_the_script_exercises_every_kind_of_response() -> None:
    """The comparison covers 100 Continue, chunked bodies with trailers, Content-Length
    bodies, connection closes and error answers, not just empty 200s."""
    streams = [(c.data, c.limits) for c in CASES] + [(d, lim) for _, d, lim in EXTRA]
    wire = b"".join(bytes(drive(d, lim, "whole", "fast").wire) for d, lim in streams)
    for piece in (b"HTTP/1.1 100 Continue\r\n", b"Transfer-Encoding: chunked\r\n",
                  b"X-Checksum: ", b"Content-Length: ", b"Connection: close\r\n",
                  b"HTTP/1.1 400 Bad Request\r\n", b"HTTP/1.1 505 "):
        assert piece in wire, piece


def _line_by_line(limits: Limits) -> HeadScanner:
    """The scanner without its one-pass shortcut (no head is short enough for it): every
    head checked line by line. (Not a subclass: the compiled build's scanner takes none.)"""
    scanner = HeadScanner(limits)
    scanner.plain_limit = 0
    return scanner


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_the_scanner_shortcut_agrees_with_the_line_rules(case: Case) -> None:
    """Both parsers use the shortcut, so the comparison above cannot see a bug in it."""
    rng = random.Random("scanner:" + case.id)
    for data in [case.data, *(mutate(case.data, rng) for _ in range(20))]:
        fast, slow = HeadScanner(case.limits), _line_by_line(case.limits)
        assert fast.scan(bytearray(data)) == slow.scan(bytearray(data)), data
        assert (fast.start, fast.index, fast.fields) == (slow.start, slow.index, slow.fields)
