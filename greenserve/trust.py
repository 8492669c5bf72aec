"""Which peers may set forwarded headers (``--forwarded-allow-ips``): addresses and CIDRs."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from .streams import ConnectionInfo

#: gunicorn's default ``secure_scheme_headers``
DEFAULT_SCHEME_HEADERS = {"X-FORWARDED-PROTOCOL": "ssl", "X-FORWARDED-PROTO": "https",
                          "X-FORWARDED-SSL": "on"}

_CACHE_SIZE = 4096

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class AllowList:
    """``*``, single addresses and networks (``10.0.0.0/8``), as gunicorn 24.1+ accepts."""

    def __init__(self, items: Iterable[str]) -> None:
        self.any = False
        self.networks: list[Network] = []
        for item in (i.strip() for i in items):
            if item == "*":
                self.any = True
            elif item:
                self.networks.append(ipaddress.ip_network(item, strict=False))
        # Answers by client address: parsing an address costs microseconds, and every
        # request asks (bounded: a flood of new addresses only stops the caching).
        self._seen: dict[str, bool] = {}

    def allows(self, info: ConnectionInfo) -> bool:
        """Whether this connection's peer is trusted (unix-socket peers always are). The peer
        is the balancer when a PROXY header named the client (``info.proxy``)."""
        peer = info.proxy or info.client
        if peer is None or self.any:
            return True
        host = peer[0]
        known = self._seen.get(host)
        if known is None:
            known = self._allows(host)
            if len(self._seen) < _CACHE_SIZE:
                self._seen[host] = known
        return known

    def _allows(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        return any(address in network for network in self.networks)


class SchemeConflict(ValueError):
    """Two secure-scheme headers of one request disagree (gunicorn answers 400)."""

    def __init__(self) -> None:
        super().__init__("Contradictory scheme headers")


class SchemeHeaders:
    """``secure_scheme_headers``: headers a trusted front end sets to tell the client's scheme.

    As gunicorn: a header in the map whose value is the one mapped means ``https``, any other
    value ``http``; two that disagree are an error. Names and values compare
    case-insensitively.
    """

    def __init__(self, mapping: dict[str, str] | None) -> None:
        items = (DEFAULT_SCHEME_HEADERS if mapping is None else mapping).items()
        #: environ key -> the value that means https (WSGI)
        self.environ_keys = [("HTTP_" + name.upper().replace("-", "_"), value.lower())
                             for name, value in items]
        #: lower-case header name -> the value that means https (ASGI)
        self.header_values = {name.lower().encode("latin-1"): value.lower().encode("latin-1")
                              for name, value in items}

    def from_environ(self, environ: dict[str, object]) -> str | None:
        """The scheme the environ's headers say, or None when they say nothing."""
        scheme = None
        for key, secure in self.environ_keys:
            got = environ.get(key)
            if isinstance(got, str):
                scheme = _agree(scheme, "https" if got.lower() == secure else "http")
        return scheme

    def from_headers(self, found: list[tuple[bytes, bytes]]) -> str | None:
        """The scheme that (lower-case name, value) pairs of scheme headers say, or None."""
        scheme = None
        for name, value in found:
            secure = self.header_values[name]
            scheme = _agree(scheme, "https" if value.lower() == secure else "http")
        return scheme


def _agree(scheme: str | None, this: str) -> str:
    if scheme is not None and scheme != this:
        raise SchemeConflict
    return this
