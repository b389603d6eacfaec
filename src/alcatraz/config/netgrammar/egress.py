"""The `network.egress` grammar: which internet names and addresses a sandbox may reach.

(Stub for the shared interface; the parser lands with the config change of issue 15.)
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass


@dataclass(frozen=True)
class EgressRule:
    """One entry of `network.egress`: a name (`wildcard`: its subdomains only) or a network,
    with protocols and ports as a `lan-access` rule has them (`()` = every protocol)."""

    name: str | None
    wildcard: bool
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None
    protocols: tuple[str, ...]
    ports: tuple[int, int] | None
