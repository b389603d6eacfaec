"""Pure network planning: per-project names, subnet choice, and the policy to enforce.

Every isolated project gets its own engine network (one bridge, one /24 from a private
pool) so rules can be keyed on the bridge interface, which is stable across container
restarts and reboots, instead of on a container IP that changes (upstream §7.1 S5).
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from alcatraz.config.netgrammar import (
    LanRule,
    ProxyAddress,
    resolve_proxy,
    resolve_tokens,
)
from alcatraz.errors import RefusedError

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


def project_key(project_id: str) -> str:
    """10 hex characters: short enough for a 15-character interface name."""
    return project_id.replace("-", "")[:10].lower()


def network_name(project_id: str) -> str:
    return "alca-" + project_key(project_id)


@dataclass(frozen=True)
class ProjectNetwork:
    """An engine network created for one project."""

    name: str
    interface: str  # bridge device on the host
    subnet: ipaddress.IPv4Network
    gateway: ipaddress.IPv4Address


@dataclass(frozen=True)
class Policy:
    """What the firewall enforces for one project."""

    key: str
    network: ProjectNetwork
    allow_all: bool
    rules: tuple[LanRule, ...]  # tokens resolved
    proxy: ProxyAddress | None  # token resolved


def choose_subnet(
    project_id: str,
    taken: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network],
) -> ipaddress.IPv4Network:
    """A /24 of the pool overlapping nothing in `taken` (host routes, engine networks).

    The starting point is derived from the project id so that concurrent projects rarely
    race for the same subnet; the engine rejects a duplicate anyway.
    """
    busy = [n for n in taken if isinstance(n, ipaddress.IPv4Network)]
    candidates = list(POOL4.subnets(new_prefix=PREFIX4))
    start = int(hashlib.sha256(project_id.encode()).hexdigest(), 16) % len(candidates)
    for offset in range(len(candidates)):
        subnet = candidates[(start + offset) % len(candidates)]
        if not any(subnet.overlaps(other) for other in busy):
            return subnet
    raise RefusedError(
        f"no free /{PREFIX4} left in {POOL4} for a project network",
        hint="run 'alca cleanup' to remove networks of deleted projects",
    )


def make_policy(
    project_id: str,
    network: ProjectNetwork,
    *,
    allow_all: bool,
    rules: Iterable[LanRule],
    proxy: ProxyAddress | None,
) -> Policy:
    """Resolve `${alca:HOST_IP}` to this project's gateway and bundle the policy."""
    values = {"HOST_IP": network.gateway}
    resolved = tuple(resolve_tokens(rule, values) for rule in rules)
    resolved_proxy = resolve_proxy(proxy, values) if proxy is not None else None
    return Policy(project_key(project_id), network, allow_all, resolved, resolved_proxy)
