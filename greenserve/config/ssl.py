"""SSL settings (gunicorn's names, flags and defaults)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .spec import setting, to_bool, to_int, to_opt_str


def _cert_reqs(value: object) -> int:
    number = to_int(value)
    if number not in (0, 1, 2):
        raise ValueError(f"{value!r} is not 0 (none), 1 (optional) or 2 (required)")
    return number


@dataclass(frozen=True, kw_only=True)
class SSLSettings:
    """SSL."""

    SECTION: ClassVar[str] = "SSL"

    keyfile: str | None = setting(
        "--keyfile", metavar="FILE", default=None, convert=to_opt_str,
        help="SSL key file.",
        desc="""\
The private key for `--certfile` (PEM). Omit it when the certificate file holds the key.""",
    )
    certfile: str | None = setting(
        "--certfile", metavar="FILE", default=None, convert=to_opt_str,
        help="SSL certificate file; setting it turns TLS on.",
        desc="""\
The server certificate chain (PEM). With it every listener speaks TLS and apps see
`wsgi.url_scheme` = `https`.""",
    )
    ssl_version: str | None = setting(
        "--ssl-version", metavar="VALUE", default=None, default_doc="ssl.PROTOCOL_TLS (ignored)",
        convert=to_opt_str,
        help="Accepted and ignored, as in gunicorn since 21.0; use the ssl_context hook.",
        desc="""\
Kept for old command lines. The protocol is negotiated (TLS 1.2 or newer); to restrict it,
set `minimum_version` in the `ssl_context` hook.""",
    )
    cert_reqs: int = setting(
        "--cert-reqs", metavar="VALUE", default=0, default_doc="0 (ssl.CERT_NONE)",
        convert=_cert_reqs,
        help="Whether clients must present a certificate: 0 none, 1 optional, 2 required.",
        desc="""\
`ssl.CERT_NONE`, `CERT_OPTIONAL` or `CERT_REQUIRED` (mutual TLS); verified against
`--ca-certs`.""",
    )
    ca_certs: str | None = setting(
        "--ca-certs", metavar="FILE", default=None, convert=to_opt_str,
        help="CA certificates file used to verify client certificates.",
        desc="""\
PEM bundle of the authorities whose client certificates are accepted.""",
    )
    suppress_ragged_eofs: bool = setting(
        "--suppress-ragged-eofs", kind="switch", default=True, convert=to_bool,
        help="Treat a TLS connection closed without close_notify as a clean EOF.",
        desc="""\
A store-true switch that already defaults to True, exactly as gunicorn's (it cannot be
turned off from the command line; a config file can set it to False).""",
    )
    do_handshake_on_connect: bool = setting(
        "--do-handshake-on-connect", kind="switch", default=False, convert=to_bool,
        help="Run the TLS handshake as soon as a connection is accepted.",
        desc="""\
By default the handshake runs on the first read, under the same `--header-timeout` deadline
as the request head, so a client that never finishes it cannot hold a connection.""",
    )
    ciphers: str | None = setting(
        "--ciphers", metavar="VALUE", default=None, convert=to_opt_str,
        help="OpenSSL cipher list (default: Python's).",
        desc="""\
An OpenSSL cipher string such as `ECDHE+AESGCM`; TLS 1.3 suites are not affected.""",
    )
