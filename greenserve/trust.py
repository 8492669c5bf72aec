"""Which peers may set forwarded headers (``--forwarded-allow-ips``): addresses and CIDRs."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from .streams import ConnectionInfo

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
