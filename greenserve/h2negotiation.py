"""Which connections speak HTTP/2: ALPN under TLS, and h2c (prior knowledge, ``Upgrade``).

Called by the HTTP/1 connection before its first request (ALPN, the preface) and on a
request that asks to upgrade; when HTTP/2 wins, an :class:`~.h2session.H2Session` takes the
socket over for good.
"""

from __future__ import annotations

import base64
import binascii
import logging
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .protocol.events import ProtocolError, Request
from .protocol.policy import field_tokens

if TYPE_CHECKING:
    from .config import Config
    from .connection import Handler, HTTPConnection

log = logging.getLogger("greenserve.error")

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#: the largest request body an ``Upgrade: h2c`` request may carry (read before the 101)
MAX_UPGRADE_BODY = 65536
_UPGRADE_RESPONSE = (b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                     b"Upgrade: h2c\r\n\r\n")
# Request fields that belong to the HTTP/1 hop or to the upgrade itself.
_HOP_FIELDS = frozenset((b"connection", b"upgrade", b"http2-settings", b"keep-alive",
                         b"proxy-connection", b"transfer-encoding", b"te"))


@dataclass(frozen=True, slots=True)
class H2Options:
    """What the settings allow: HTTP/2 over TLS (ALPN), h2c by preface, h2c by Upgrade."""

    alpn: bool = False
    prior_knowledge: bool = False
    upgrade: bool = False
    #: prior knowledge only (``--http2-cleartext prior-knowledge``): anything else is a 400
    preface_required: bool = False

    @classmethod
    def from_settings(cls, cfg: Config, tls: bool) -> H2Options:
        """The options of a worker; nothing without ``h2`` in ``--http-protocols``."""
        if "h2" not in cfg.http_protocols or cfg.protocol != "http":
            return cls()
        if tls:
            return cls(alpn=True)
        mode = cfg.http2_cleartext
        return cls(prior_knowledge=mode in ("prior-knowledge", "both"),
                   upgrade=mode in ("upgrade", "both"),
                   preface_required=mode == "prior-knowledge")

    @property
    def enabled(self) -> bool:
        """Whether any HTTP/2 is possible."""
        return self.alpn or self.prior_knowledge or self.upgrade


def serve_if_h2(conn: HTTPConnection, handler: Handler) -> bool:
    """Serve ``conn`` as HTTP/2 when it is one; True when it was (the connection is done).

    Otherwise the bytes read to find out are left in the HTTP/1 parser.
    """
    options: H2Options = conn.state.h2_options
    if options.alpn:
        return _serve_alpn(conn, handler)
    if not (options.prior_knowledge and conn.state.forwarded_allow.allows(conn.info)):
        return False
    preread = _read_preface(conn)
    if preread.startswith(PREFACE):
        _session(conn).serve(handler, preread)
        return True
    if options.preface_required:
        conn.reject(ProtocolError(400, "expected the HTTP/2 connection preface"))
        return True
    conn.feed(preread)
    return False


def _serve_alpn(conn: HTTPConnection, handler: Handler) -> bool:
    sock: Any = conn.sock
    try:
        sock.settimeout(conn.state.cfg.header_timeout)
        sock.do_handshake()
    except (OSError, ssl.SSLError) as exc:
        log.debug("TLS handshake with %s failed: %s", conn.info.peer, exc)
        conn.feed(b"")  # nothing to serve: the HTTP/1 side sees EOF
        return False
    if sock.selected_alpn_protocol() != "h2":
        return False
    _session(conn).serve(handler)
    return True


def _read_preface(conn: HTTPConnection) -> bytes:
    """The first bytes, until they are the whole preface or cannot be (EOF included)."""
    sock = conn.sock
    sock.settimeout(conn.state.cfg.header_timeout)
    # Bytes that came with a PROXY header are in the HTTP/1 parser already: start from
    # them (a fresh parser takes them back below if this is not HTTP/2).
    data = conn.proto.trailing_data
    if data:
        conn.proto = conn.state.connection_class(conn.state.limits)
    while len(data) < len(PREFACE) and PREFACE.startswith(data[: len(PREFACE)]):
        try:
            more = sock.recv(65536)
        except (OSError, TimeoutError):
            break
        if not more:
            break
        data += more
    return data


def upgrade_settings(request: Request, options: H2Options) -> bytes | None:
    """The ``HTTP2-Settings`` value of a valid ``Upgrade: h2c`` request, else None
    (the request is then served as plain HTTP/1.1)."""
    if not options.upgrade or request.upgrade is None:
        return None
    if request.upgrade.strip().lower() != b"h2c" or request.http_version != b"1.1":
        return None
    if request.chunked or (request.content_length or 0) > MAX_UPGRADE_BODY:
        return None
    connection = field_tokens([v for n, v in request.headers if n.lower() == b"connection"])
    settings = [v for n, v in request.headers if n.lower() == b"http2-settings"]
    if b"upgrade" not in connection or b"http2-settings" not in connection:
        return None
    if len(settings) != 1:
        return None
    try:
        raw = base64.urlsafe_b64decode(settings[0] + b"=" * (-len(settings[0]) % 4))
    except (binascii.Error, ValueError):
        return None
    return settings[0] if len(raw) % 6 == 0 else None


def serve_upgrade(conn: HTTPConnection, handler: Handler, request: Request,
                  settings: bytes) -> None:
    """Read the body, answer ``101``, and serve the connection as HTTP/2 (the request is
    stream 1)."""
    from .streams import InlineStream

    stream = InlineStream(conn, request)
    body = b""
    while True:
        piece = stream.receive()
        if not piece:
            break
        body += piece
    conn.write(_UPGRADE_RESPONSE)
    headers = [(n, v) for n, v in request.headers if n.lower() not in _HOP_FIELDS]
    upgraded = Request(request.method, request.target, b"2.0", headers, True,
                       content_length=request.content_length, stream_id=1)
    _session(conn).serve(handler, conn.proto.trailing_data, (upgraded, body, settings))


def _session(conn: HTTPConnection) -> Any:
    from .h2session import H2Session

    session = H2Session(conn.sock, conn.info, conn.state)
    conn.session = session
    return session
