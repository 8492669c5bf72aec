"""Which peers may set forwarded headers (``--forwarded-allow-ips``): addresses and CIDRs."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from .streams import ConnectionInfo

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

    def allows(self, info: ConnectionInfo) -> bool:
        """Whether this connection's peer is trusted (unix-socket peers always are)."""
        if info.client is None or self.any:
            return True
        try:
            address = ipaddress.ip_address(info.client[0].split("%", 1)[0])
        except ValueError:
            return False
        return any(address in network for network in self.networks)
