"""Which IP addresses lie inside a cluster's networks (shared by Endpoints and ExternalName).

Why one table: hand-written Endpoints and ExternalName Services are two ways for
a tenant to aim the host's proxies, ingress controllers and DNS at an address;
both must refuse the same ranges.
"""

from __future__ import annotations

import ipaddress

INTERNAL_NETWORKS = tuple(ipaddress.ip_network(net) for net in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.168.0.0/16", "224.0.0.0/4", "240.0.0.0/4",
    "::/128", "::1/128", "fc00::/7", "fe80::/10", "ff00::/8",
))
"""Where clusters put pods, Services, nodes and API servers, plus addresses that are
never a remote workload."""


def internal(text: str) -> bool | None:
    """Whether IP address ``text`` is in :data:`INTERNAL_NETWORKS`; None if it is no IP.

    IPv4-mapped IPv6 addresses count as the IPv4 address they carry.
    """
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in INTERNAL_NETWORKS)
