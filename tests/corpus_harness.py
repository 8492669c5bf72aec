"""Drive the sans-io HTTP/1 layer with the shared request corpora and judge the results.

Shared by ``tests/test_protocol_corpus.py`` and ``tools/corpus_report.py``, so the tests and
the printed pass counts can never disagree. Pure: bytes in, events out, no sockets.

Each corpus case becomes a :class:`Case` with the bytes to send, the :class:`Limits` that
match its gunicorn settings, and a ``kind`` that says which rule judges it. ``judge``
returns a list of failure messages (empty = pass) for one chunking of one case; it lives in
``corpus_judges.py`` with the other judging rules.
"""

from __future__ import annotations

import base64
import json
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from greenserve.protocol.events import (
    ConnectionClosed,
    Data,
    EndOfMessage,
    Headers,
    InboundEvent,
    InformationalResponse,
    ProtocolError,
    Request,
    Response,
)
from greenserve.protocol.h1_base import BaseH1Connection
from greenserve.protocol.parsers import connection_class
from greenserve.protocol.policy import Limits
from greenserve.protocol.writer import reason_phrase

HOST_LINE = b"Host: localhost\r\n"
INJECTED_HOST = (b"host", b"localhost")
RANDOM_SEEDS = (1, 2, 3)
CHUNKINGS = ("whole", "bytes", *(f"random-{seed}" for seed in RANDOM_SEEDS))
PROXY_SKIP = (
    "PROXY protocol is handled before HTTP parsing (protocol/proxy.py, proxied.py), not by "
    "protocol/h1: tests/test_proxy_protocol.py serves these cases end to end"
)
# Settings gunicorn applies above the HTTP parser (in building the WSGI environ); at this
# layer the request must simply reach the app with those fields intact.
ABOVE_PROTOCOL = ("header_map", "forwarded_allow_ips")
LIMIT_SETTINGS = (
    "limit_request_line",
    "limit_request_field_size",
    "limit_request_fields",
    "permit_obsolete_folding",
    "strip_header_spaces",
    "permit_unconventional_http_method",
    "casefold_http_method",
)


def shared_dir() -> Path | None:
    """The shared/ directory next to the repository (or $GREENSERVE_SHARED), if present."""
    env = os.environ.get("GREENSERVE_SHARED")
    path = Path(env) if env else Path(__file__).resolve().parents[2] / "shared"
    return path if (path / "corpus").is_dir() else None


# -- which implementation ----------------------------------------------------------------

#: The ``--http-parser`` names of the HTTP/1 implementations every sans-io suite runs on.
HTTP_PARSERS = ("python", "fast")
_selected = ["python"]


def use_parser(http_parser: str) -> None:
    """Make :func:`new_connection` (so ``drive``, ``judge``...) build ``http_parser``'s class.

    The ``http_parser`` fixture (tests/conftest.py) calls it for each test it parametrizes.
    """
    _selected[0] = http_parser


def new_connection(limits: Limits, http_parser: str | None = None) -> BaseH1Connection:
    """A fresh connection of the selected implementation (or of ``http_parser``)."""
    return connection_class(http_parser or _selected[0])(limits)


# -- driving the protocol object ------------------------------------------------------------


@dataclass
class Served:
    """One request as the application would have seen it."""

    request: Request
    body: bytes = b""
    trailers: Headers | None = None
    complete: bool = False


@dataclass
class Outcome:
    """Everything the protocol object did with one byte stream."""

    served: list[Served] = field(default_factory=list)
    error: ProtocolError | None = None
    closed: bool = False
    after_error: list[InboundEvent] = field(default_factory=list)
    stalled: bool = False
    events: list[InboundEvent] = field(default_factory=list)
    wire: bytearray = field(default_factory=bytearray)  # every byte the server sent

    def complete(self) -> list[Served]:
        """The requests whose body arrived completely."""
        return [s for s in self.served if s.complete]


def split(data: bytes, chunking: str) -> list[bytes]:
    """Cut ``data`` into the pieces a socket might deliver."""
    if chunking == "whole":
        return [data]
    if chunking == "bytes":
        return [data[i : i + 1] for i in range(len(data))]
    rng = random.Random(f"{chunking}:{len(data)}")
    pieces, pos = [], 0
    while pos < len(data):
        size = rng.choice((1, 2, 3, rng.randint(1, 64), rng.randint(1, 1024)))
        pieces.append(data[pos : pos + size])
        pos += size
    return pieces


def drive(
    data: bytes, limits: Limits, chunking: str = "whole", http_parser: str | None = None
) -> Outcome:
    """Feed ``data`` (then EOF) like a server would, answering each complete request."""
    return drive_pieces(split(data, chunking), limits, http_parser)


def drive_pieces(pieces: list[bytes], limits: Limits, http_parser: str | None = None) -> Outcome:
    """Feed ``pieces`` one ``receive_data`` call each, then EOF (see :func:`drive`).

    The responses follow a fixed script (:func:`_record`), and their bytes are kept in
    ``Outcome.wire``, so two implementations can be compared byte for byte.
    """
    conn = new_connection(limits, http_parser)
    feed = iter([*pieces, b""])
    out = Outcome()
    while True:
        event = conn.next_event()
        if event is None:
            piece = next(feed, None)
            if piece is None:
                out.stalled = True
                return out
            conn.receive_data(piece)
            continue
        out.events.append(event)
        if not _record(conn, event, out):
            break
    if out.error is not None:
        for piece in feed:  # whatever else arrives must never become a request
            conn.receive_data(piece)
            event = conn.next_event()
            if event is not None:
                out.after_error.append(event)
    return out


def _record(conn: BaseH1Connection, event: InboundEvent, out: Outcome) -> bool:
    """Note one event and answer it; False when the connection is finished.

    The script: 100 Continue when asked; then a chunked response with a trailer to HTTP/1.1
    requests and a Content-Length one to HTTP/1.0 (both keep the connection alive when
    the request allows it); a refused request gets the answer connection.py sends.
    """
    match event:
        case Request():
            out.served.append(Served(event))
            if event.expect_continue:
                out.wire += conn.send(InformationalResponse(100))
        case Data(data=data):
            out.served[-1].body += data
        case EndOfMessage(trailers=trailers):
            out.served[-1].trailers = trailers
            out.served[-1].complete = True
            out.wire += _respond(conn, out.served[-1].request)
            if not conn.keep_alive:
                return False
            conn.start_next_cycle()
        case ProtocolError(status_code=status) if status is not None:
            out.error = event
            body = b"%d %s\n" % (status, reason_phrase(status))
            out.wire += conn.send(Response(status, [(b"Content-Length", b"%d" % len(body))]))
            out.wire += conn.send(Data(body)) + conn.send(EndOfMessage())
            return False
        case ProtocolError():
            out.error = event
            return False
        case ConnectionClosed():
            out.closed = True
            return False
    return True


def _respond(conn: BaseH1Connection, request: Request) -> bytes:
    body = b"%s %s" % (request.method, request.target)
    if request.http_version == b"1.0":
        wire = conn.send(Response(200, [(b"Content-Length", b"%d" % len(body))]))
        return wire + conn.send(Data(body)) + conn.send(EndOfMessage())
    wire = conn.send(Response(200, [(b"Content-Type", b"text/plain")]))
    wire += conn.send(Data(body)) + conn.send(Data(b"!"))
    return wire + conn.send(EndOfMessage([(b"X-Checksum", b"%d" % len(body))]))


# -- the cases -----------------------------------------------------------------------------


@dataclass
class Expected:
    """One request the corpus says should reach the application."""

    method: bytes
    target: bytes
    version: bytes
    headers: Headers
    body: bytes
    trailers: Headers | None = None
    complete: bool = True


@dataclass
class Case:
    """One corpus case, ready to drive."""

    id: str
    corpus: str  # "gunicorn" | "llhttp"
    cls: str  # the corpus' class (or server_expectation for llhttp)
    kind: str  # which rule judges it: a key of corpus_judges.JUDGES
    data: bytes
    limits: Limits
    expected: list[Expected]
    acceptable: tuple[int | None, ...] = ()
    injected: bool = False
    keep_underscore: bool = False
    skip: str | None = None
    note: str = ""
    raw: bytes = b""


def _b64(text: str | None) -> bytes:
    return base64.b64decode(text or "")


def _latin1(text: str) -> bytes:
    return text.encode("latin-1")


def _bytes(text: str) -> bytes:
    """The corpus stores raw bytes as their latin-1 reading (UTF-8 only if it must)."""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")


def _limits(settings: dict[str, Any]) -> Limits:
    return Limits(**{k: v for k, v in settings.items() if k in LIMIT_SETTINGS})


def gunicorn_cases(root: Path) -> list[Case]:
    """Every case of the gunicorn corpus."""
    path = root / "corpus" / "gunicorn-requests" / "expectations.json"
    return [_gunicorn_case(c) for c in json.loads(path.read_text())]


def _gunicorn_case(c: dict[str, Any]) -> Case:
    settings = c["gunicorn_settings"]
    expected = [
        Expected(
            method=_latin1(r["method"]),
            target=_latin1(r["target"]),
            version=r["version"].encode(),
            headers=[(_latin1(n), _latin1(v)) for n, v in r["headers"]],
            body=_b64(r["body_b64"]),
            trailers=None
            if r.get("trailers") is None
            else [(_latin1(n), _latin1(v)) for n, v in r["trailers"]],
        )
        for r in c.get("requests") or []
    ]
    acceptable = tuple(None if a == "close" else int(a) for a in c.get("acceptable") or ())
    raw = _b64(c["decoded_b64"])
    # host_injected_b64 fixes only the first request; pipelined ones need the same.
    data = inject_host(raw, expected) if expected else _b64(c.get("host_injected_b64")) or raw
    case = Case(
        id=f"gunicorn:{c['id']}",
        corpus="gunicorn",
        cls=c["class"],
        kind=_gunicorn_kind(c, settings),
        data=data,
        raw=raw,
        injected=data != raw,
        limits=_limits(settings),
        expected=expected,
        acceptable=acceptable,
        keep_underscore=settings.get("header_map") == "dangerous",
        note=c.get("note", ""),
    )
    if "proxy_protocol" in settings:
        case.skip = PROXY_SKIP
    _apply_deviation(case)
    return case


def _gunicorn_kind(c: dict[str, Any], settings: dict[str, Any]) -> str:
    if c["expect"] == "reject":
        if any(name in settings for name in ABOVE_PROTOCOL):
            return "above-protocol"
        return "reject"
    return {
        "lenient": "accept-or-400",
        "te-501-ok": "accept-or-501",
        "broken-fixture": "truncated-body",
    }.get(c["class"], "accept")


def llhttp_cases(root: Path) -> list[Case]:
    """Every request case of the llhttp corpus."""
    path = root / "corpus" / "llhttp" / "llhttp_request_cases.json"
    return [_llhttp_case(c) for c in json.loads(path.read_text())]


def _llhttp_case(c: dict[str, Any]) -> Case:
    raw = _b64(c["raw_b64"])
    expected = [
        Expected(
            method=_bytes(m["method"]),
            target=_bytes(m["url"]),
            version=m["version"].encode(),
            # The extraction cut values by llhttp's UTF-8 span lengths, so a raw 0xFF byte
            # drags the CR after it into the value (sample.md:541): trim it off again.
            headers=[(_bytes(n), _bytes(v).rstrip(b"\r")) for n, v in m["headers"]],
            body=_b64(m.get("body_b64")),
            complete=bool(m.get("complete")),
        )
        for m in c.get("messages") or []
        if m.get("headers_complete")
    ]
    # Not only the cases flagged http11_without_host: when llhttp stopped at the request
    # line it reported no message, so the flag is missing although Host is too.
    data = inject_host(raw, expected)
    expectation = c["server_expectation"]
    case = Case(
        id=f"llhttp:{c['id']}",
        corpus="llhttp",
        cls=expectation,
        kind="llhttp-reject" if expectation == "reject" else expectation,
        data=data,
        raw=raw,
        injected=data != raw,
        limits=Limits(),
        expected=expected[: c.get("complete_before_error", len(expected))]
        if expectation == "reject"
        else expected,
        acceptable=(400, 501) if expectation == "reject-or-policy" else (),
        note=c.get("server_note", "") or c.get("title", ""),
    )
    _apply_deviation(case)
    return case


def inject_host(raw: bytes, expected: list[Expected]) -> bytes:
    """Add ``Host: localhost`` after each HTTP/1.1 request line that lacks a Host field."""
    out, pos = raw, 0
    for exp in expected:
        if exp.version != b"1.1" or any(n.lower() == b"host" for n, _ in exp.headers):
            pos = max(pos, out.find(b"\n", pos) + 1)
            continue
        line = b"%s %s HTTP/1.1" % (exp.method, exp.target)
        at = out.lower().find(line.lower(), pos)  # casefold_http_method changed the case
        end = out.find(b"\n", at)
        if at < 0 or end < 0:
            continue
        out = out[: end + 1] + HOST_LINE + out[end + 1 :]
        pos = end + 1 + len(HOST_LINE)
    first_line, _, rest = raw.partition(b"\n")
    if not expected and b"HTTP/1.1" in first_line and b"\nhost:" not in rest.lower():
        end = raw.find(b"\n")  # the request line is bad anyway: make Host not the reason
        out = raw[: end + 1] + HOST_LINE + raw[end + 1 :] if end >= 0 else raw
    return out


# -- deliberate deviations from the corpus' expectations -------------------------------------

DEVIATIONS: dict[str, tuple[str, str]] = {
    # case id: (kind to judge by instead, reason)
    "gunicorn:valid/009": (
        "reject-400",
        "Transfer-Encoding: identity together with Content-Length: RFC 9112 6.3 requires 400 "
        "when the final coding is not chunked, and gunicorn 27 answers 400 for that too "
        "(the corpus predates 27.0.0 and lists only 2xx|501)",
    ),
    "llhttp:request/method.md:375": (
        "reject-400",
        "ICE/1.0 is not an HTTP version; an HTTP server answers 400 (gunicorn does too)",
    ),
    "llhttp:request/method.md:405": (
        "reject-400",
        "RTSP/1.0 is not an HTTP version; an HTTP server answers 400 (gunicorn does too)",
    ),
    "llhttp:request/method.md:433": (
        "reject-400",
        "RTSP/1.0 is not an HTTP version; an HTTP server answers 400 (gunicorn does too)",
    ),
    "llhttp:request/sample.md:317": (
        "reject-400",
        "HTTP/0.9-style request line without a version: not supported (gunicorn: 400)",
    ),
    "llhttp:request/transfer-encoding.md:754": (
        "accept-or-501",
        "'deflate, chunked': chunked is final, but greenserve does not decode deflate; "
        "RFC 9112 6.1 allows 501 for a coding the server does not understand (h11 does the "
        "same) rather than handing the app a still-deflated body",
    ),
    "llhttp:request/transfer-encoding.md:796": (
        "accept-or-501",
        "same as transfer-encoding.md:754, over two Transfer-Encoding lines",
    ),
    "llhttp:request/content-length.md:447": (
        "truncated-body",
        "llhttp ran this with skipBody (its HEAD-response mode); as a request stream it is a "
        "PUT whose 123-byte body is cut short by EOF, so nothing completes",
    ),
    "llhttp:request/method.md:461": (
        "reject-400",
        "'PRI * HTTP/1.1': asterisk-form is only for OPTIONS (RFC 9112 3.2.4; gunicorn 26+ "
        "refuses it, see invalid/rfc9112_target_asterisk_non_options_01). The real h2 "
        "preface (PRI * HTTP/2.0) is routed to h2 by connection.py before this layer",
    ),
    "llhttp:request/method.md:138": (
        "reject-400",
        "'M-SEARCH * HTTP/1.1' (SSDP): asterisk-form outside OPTIONS, refused like "
        "gunicorn:invalid/rfc9112_target_asterisk_non_options_01",
    ),
}


def _apply_deviation(case: Case) -> None:
    if case.id in DEVIATIONS:
        case.kind, case.note = DEVIATIONS[case.id][0], "DEVIATION: " + DEVIATIONS[case.id][1]


def all_cases() -> Iterator[Case]:
    """Both corpora, gunicorn first; nothing when shared/ is absent."""
    root = shared_dir()
    if root is None:
        return
    yield from gunicorn_cases(root)
    yield from llhttp_cases(root)
