"""HTTP/2 settings (gunicorn 25+; see ``greenserve/h2session.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .spec import Converter, at_least, checked, setting, to_int

#: the protocol names ``--http-protocols`` takes, and their ALPN identifiers
ALPN_NAMES = {"h1": "http/1.1", "h2": "h2"}
CLEARTEXT_MODES = ("off", "prior-knowledge", "upgrade", "both")


def to_protocols(value: object) -> tuple[str, ...]:
    """``"h2,h1"`` -> ``("h2", "h1")``: known names, no repeats, in preference order."""
    if value is None:
        return ("h1",)
    if isinstance(value, (list, tuple)):
        value = ",".join(str(item) for item in value)
    if not isinstance(value, str):
        raise TypeError("http_protocols must be a string")
    names = tuple(item.strip().lower() for item in value.split(",") if item.strip())
    for name in names:
        if name not in ALPN_NAMES:
            raise ValueError(f"Invalid protocol {name!r}. Valid protocols: h1, h2")
    if len(set(names)) != len(names):
        raise ValueError("Duplicate protocols specified")
    return names or ("h1",)


def to_cleartext(value: object) -> str:
    """gunicorn's spellings: a mode name (any case), True (prior-knowledge), False/None."""
    if value is None or value is False:
        return "off"
    if value is True:
        return "prior-knowledge"
    mode = str(value).strip().lower()
    if mode not in CLEARTEXT_MODES:
        raise ValueError(f"Invalid http2_cleartext: {value} (one of {', '.join(CLEARTEXT_MODES)})")
    return mode


def _in_range(low: int, high: int) -> Converter:
    def check(value: int) -> None:
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}, got {value}")

    return checked(to_int, check)


@dataclass(frozen=True, kw_only=True)
class HTTP2Settings:
    """HTTP/2."""

    SECTION: ClassVar[str] = "HTTP/2"

    http_protocols: tuple[str, ...] = setting(
        "--http-protocols", metavar="STRING", default=("h1",), default_doc="'h1'",
        convert=to_protocols,
        help="The HTTP versions to offer, in order of preference: h1, h2 (e.g. h2,h1).",
        desc="""\
With `h2` listed, TLS listeners offer HTTP/2 through ALPN (in this order: `h2,h1` offers
`h2` then `http/1.1`), and a client that picks it is served HTTP/2: each stream of the
connection runs the app in a greenlet of its own, so one slow request never holds up the
others. A client that picks `http/1.1`, or does not use ALPN, gets HTTP/1.1 as before.
Without TLS, HTTP/2 needs `--http2-cleartext`. HTTP/2 needs the `h2` package
(`pip install greenserve[http2]`): listing `h2` without it is a start error.""",
    )
    http2_cleartext: str = setting(
        "--http2-cleartext", metavar="STRING", default="off", choices=CLEARTEXT_MODES,
        convert=to_cleartext,
        help="HTTP/2 without TLS (h2c): off, prior-knowledge, upgrade or both.",
        desc="""\
For a front end that speaks HTTP/2 to the app server without TLS. `prior-knowledge`: a
connection that starts with the HTTP/2 preface is served HTTP/2 and any other gets 400;
`upgrade`: an HTTP/1.1 request with `Upgrade: h2c` and one `HTTP2-Settings` header is
answered `101` and becomes stream 1 of an HTTP/2 connection; `both`: either, and a
connection that is neither is plain HTTP/1.1. Only for peers in `--forwarded-allow-ips`
(and Unix sockets); others are served HTTP/1.1 as if this were `off`. Needs `h2` in
`--http-protocols`.""",
    )
    http2_max_concurrent_streams: int = setting(
        "--http2-max-concurrent-streams", metavar="INT", default=100,
        convert=checked(to_int, at_least(1)),
        help="The most streams (requests) one HTTP/2 connection may have open at once.",
        desc="""\
Announced to the client in the SETTINGS frame; a client that opens more has the extra
streams refused (`REFUSED_STREAM`), which it may retry.""",
    )
    http2_initial_window_size: int = setting(
        "--http2-initial-window-size", metavar="INT", default=65535,
        convert=_in_range(0, 2**31 - 1),
        help="The HTTP/2 flow-control window for each request body, in bytes.",
        desc="""\
How much request body a client may send on one stream before the app reads it. The window
is given back as the app reads, so a large upload never waits in the server's memory.""",
    )
    http2_max_frame_size: int = setting(
        "--http2-max-frame-size", metavar="INT", default=16384,
        convert=_in_range(16384, 16777215),
        help="The largest HTTP/2 frame payload the server accepts, in bytes.",
        desc="Between 16384 (the protocol's minimum) and 16777215.",
    )
    http2_max_header_list_size: int = setting(
        "--http2-max-header-list-size", metavar="INT", default=65536,
        convert=checked(to_int, at_least(0)),
        help="The largest request header list the server accepts (HPACK-decoded), in bytes.",
        desc="""\
Announced to the client; a larger header block ends the connection. 0 announces no limit,
but the HPACK decoder's own 64 KiB limit still applies (as in gunicorn).
`--limit-request-fields` and `--limit-request-field_size` apply to HTTP/2 requests too.""",
    )
