"""Address ranges the configuration and the firewall both need: the pool and the blocked set.

They live in `config` (the lowest layer that needs them) so that the grammar can refuse an
egress CIDR that the LAN block governs, without importing `network`; `network.plan`
re-exports them for the firewall.
"""

from __future__ import annotations

import ipaddress
from typing import Final

#: Project networks are carved out of this pool, one /24 each.
POOL4: Final = ipaddress.IPv4Network("10.213.0.0/16")
PREFIX4: Final = 24

#: Destinations a sandbox may never reach unless `lan-access` allows them.
BLOCKED4: Final = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",  # "this network"; OrbStack's host alias lives here
        "10.0.0.0/8",
        "100.64.0.0/10",  # CGNAT: Tailscale and other overlay networks
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, cloud metadata
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved and limited broadcast
    )
)
BLOCKED6: Final = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "::1/128",
        "::ffff:0:0/96",  # IPv4-mapped
        "64:ff9b::/96",  # NAT64 of private IPv4
        "2002::/16",  # 6to4 (embeds IPv4, private ones included)
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "ff00::/8",  # multicast
    )
)

#: IPv6 global unicast space (RFC 4291): an egress network must lie inside it.
GLOBAL_UNICAST6: Final = ipaddress.IPv6Network("2000::/3")
