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

from alcatraz.config.netgrammar import (
    LanRule,
    ProxyAddress,
    resolve_proxy,
    resolve_tokens,
)
from alcatraz.config.netgrammar.egress import EgressRule
from alcatraz.config.netgrammar.ranges import BLOCKED4, BLOCKED6, POOL4, PREFIX4
from alcatraz.errors import RefusedError

# The ranges moved to `config` (the egress grammar needs them); every importer of
# `network.plan` keeps finding them here.
__all__ = [
    "BLOCKED4",
    "BLOCKED6",
    "POOL4",
    "PREFIX4",
    "Policy",
    "ProjectNetwork",
    "choose_subnet",
    "make_policy",
    "network_name",
    "project_key",
]


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
    #: `network.egress`: None leaves the internet open; a tuple allows only what it lists.
    egress: tuple[EgressRule, ...] | None = None
    #: The gateway's port 53 is alcatraz's own daemon (accepted only for its marked sockets).
    own_resolver: bool = False

    @property
    def egress_enforced(self) -> bool:
        return self.egress is not None and not self.allow_all


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
    egress: tuple[EgressRule, ...] | None = None,
    own_resolver: bool = False,
) -> Policy:
    """Resolve `${alca:HOST_IP}` to this project's gateway and bundle the policy."""
    values = {"HOST_IP": network.gateway}
    resolved = tuple(resolve_tokens(rule, values) for rule in rules)
    resolved_proxy = resolve_proxy(proxy, values) if proxy is not None else None
    return Policy(
        project_key(project_id),
        network,
        allow_all,
        resolved,
        resolved_proxy,
        egress,
        own_resolver,
    )
