"""The nft pieces of egress by name and of the host-LAN block (pure; `nft.py` assembles them).

Per project, in alcatraz's table:

- `lan4`/`lan6`: the host's directly connected subnets and default gateways, whatever their
  range; the project's daemon keeps them current (`egress.hostlan`), `up` fills them first.
- with `egress`: `ea4`/`ea6` (addresses of allowed names whose entry allows every protocol
  and port) and `ep4`/`ep6` (address . protocol . port range), filled by the daemon from the
  DNS answers it relays, each element living for the answer's TTL (bounded); `live`, which
  holds the project's bridge only while the daemon refreshes it, so a dead daemon lets
  nothing pass. TCP to a named address is redirected to the daemon's name checker, which
  reads the TLS SNI or HTTP Host before it connects on; listed CIDRs go direct.
- the gateway's port 53 (and the checker's port) are accepted only for sockets carrying
  `MARK`, which the daemon sets on its own: no other service on the host answers there.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Final, NamedTuple

from alcatraz.config.netgrammar.egress import EgressRule

#: SO_MARK of the daemon's listening sockets; the input rules accept DNS and the checker's
#: port only for a socket carrying it.
MARK: Final = 0x0A1CA053
#: The name checker's port on the project gateway (redirected TCP arrives there).
CHECKER_PORT: Final = 15353
#: How long the daemon's heartbeat keeps the live gate open.
LIVE_TIMEOUT_S: Final = 15


class SetNames(NamedTuple):
    ea4: str
    ea6: str
    ep4: str
    ep6: str
    lan4: str
    lan6: str
    live: str


def set_names(key: str) -> SetNames:
    return SetNames(*(f"p_{key}_{suffix}" for suffix in SetNames._fields))


def declare_sets(table: str, key: str, *, egress: bool) -> list[str]:
    """`add set` for the host-LAN sets (always) and the egress sets (with `egress`); adding
    an existing set changes nothing, so the daemon's elements survive a rules reload."""
    s = set_names(key)
    lines = [
        f"add set {table} {s.lan4} {{ type ipv4_addr ; flags interval ; auto-merge ; }}",
        f"add set {table} {s.lan6} {{ type ipv6_addr ; flags interval ; auto-merge ; }}",
    ]
    if egress:
        lines += [
            f"add set {table} {s.ea4} {{ type ipv4_addr ; flags timeout ; size 65536 ; }}",
            f"add set {table} {s.ea6} {{ type ipv6_addr ; flags timeout ; size 65536 ; }}",
            f"add set {table} {s.ep4} {{ type ipv4_addr . inet_proto . inet_service ; "
            "flags interval,timeout ; size 65536 ; }",
            f"add set {table} {s.ep6} {{ type ipv6_addr . inet_proto . inet_service ; "
            "flags interval,timeout ; size 65536 ; }",
            f"add set {table} {s.live} {{ type ifname ; flags timeout ; }}",
        ]
    return lines


def all_set_names(key: str) -> tuple[str, ...]:
    return tuple(set_names(key))


def lan_drops(table: str, chain: str, key: str, seen4: str, seen6: str) -> list[str]:
    """The host's own LANs and gateways, dropped (and recorded) like the private ranges."""
    s = set_names(key)
    return [
        f"add rule {table} {chain} ip daddr @{s.lan4} update @{seen4} {{ ip daddr }} counter drop",
        f"add rule {table} {chain} ip6 daddr @{s.lan6} update @{seen6} {{ ip6 daddr }} counter drop",
    ]


def destination_matches(
    network: ipaddress.IPv4Network | ipaddress.IPv6Network,
    protocols: tuple[str, ...],
    ports: tuple[int, int] | None,
) -> list[str]:
    """nft matches for one destination rule, one per protocol (`()`: every protocol); the
    `lan-access` rules (`nft`) and the egress CIDRs render through here alike."""
    family = "ip" if network.version == 4 else "ip6"
    target = f"{family} daddr {network}"
    if not protocols:
        return [target]
    lo, hi = ports or (1, 65535)
    span = str(lo) if lo == hi else f"{lo}-{hi}"
    return [f"{target} {proto} dport {span}" for proto in protocols]


def cidr_matches(rules: Iterable[EgressRule]) -> list[str]:
    return [
        m
        for rule in rules
        if rule.network is not None
        for m in destination_matches(rule.network, rule.protocols, rule.ports)
    ]


def forward_egress(table: str, chain: str, key: str, rules: tuple[EgressRule, ...]) -> list[str]:
    """After the LAN drops: only while the daemon is alive, the listed CIDRs, then non-TCP
    to named addresses (TCP to them was redirected to the checker in prerouting; any that
    was not is dropped here, so TCP never reaches a name's address unchecked)."""
    s = set_names(key)
    seen4, seen6 = f"p_{key}_seen4", f"p_{key}_seen6"
    lines = [
        f'add rule {table} {chain} iifname != @{s.live} counter drop comment "egress: daemon down"'
    ]
    lines += [f"add rule {table} {chain} {m} accept" for m in cidr_matches(rules)]
    lines += [
        f"add rule {table} {chain} meta l4proto tcp ip daddr @{s.ea4} counter drop",
        f"add rule {table} {chain} meta l4proto tcp ip daddr . meta l4proto . th dport @{s.ep4} counter drop",
        f"add rule {table} {chain} meta l4proto tcp ip6 daddr @{s.ea6} counter drop",
        f"add rule {table} {chain} meta l4proto tcp ip6 daddr . meta l4proto . th dport @{s.ep6} counter drop",
        f"add rule {table} {chain} ip daddr @{s.ea4} accept",
        f"add rule {table} {chain} ip6 daddr @{s.ea6} accept",
        f"add rule {table} {chain} ip daddr . meta l4proto . th dport @{s.ep4} accept",
        f"add rule {table} {chain} ip6 daddr . meta l4proto . th dport @{s.ep6} accept",
        f'add rule {table} {chain} meta nfproto ipv4 update @{seen4} {{ ip daddr }} counter drop comment "egress: not allowed"',
        f'add rule {table} {chain} meta nfproto ipv6 update @{seen6} {{ ip6 daddr }} counter drop comment "egress: not allowed"',
        f'add rule {table} {chain} counter drop comment "egress: not allowed"',
    ]
    return lines


def nat_egress(
    table: str,
    chain: str,
    key: str,
    rules: tuple[EgressRule, ...],
    blocked4: str,
    blocked6: str,
) -> list[str]:
    """Prerouting: TCP to a named address goes to the checker on the gateway; the LAN, the
    host itself and listed CIDRs are left alone (the filter decides about them)."""
    s = set_names(key)
    lines = [
        f"add rule {table} {chain} ip daddr {blocked4} return",
        f"add rule {table} {chain} ip6 daddr {blocked6} return",
        f"add rule {table} {chain} ip daddr @{s.lan4} return",
        f"add rule {table} {chain} ip6 daddr @{s.lan6} return",
        f"add rule {table} {chain} fib daddr type local return",
    ]
    lines += [f"add rule {table} {chain} {m} return" for m in cidr_matches(rules)]
    redirect = f"redirect to :{CHECKER_PORT}"
    lines += [
        f"add rule {table} {chain} meta nfproto ipv4 meta l4proto tcp ip daddr @{s.ea4} {redirect}",
        f"add rule {table} {chain} meta nfproto ipv4 meta l4proto tcp ip daddr . meta l4proto . th dport @{s.ep4} {redirect}",
    ]
    return lines


def daemon_inputs(
    table: str,
    chain: str,
    gateway: ipaddress.IPv4Address,
    *,
    marked: bool,
    egress: bool,
) -> list[str]:
    """The gateway's DNS port (and the checker's), for the project's daemon only when
    `marked` (alcatraz runs it); unmarked for an engine's own resolver (Podman's)."""
    mark = f" socket mark {MARK:#x}" if marked else ""
    lines = [
        f"add rule {table} {chain} ip daddr {gateway} udp dport 53{mark} accept",
        f"add rule {table} {chain} ip daddr {gateway} tcp dport 53{mark} accept",
    ]
    if egress:
        lines.append(
            f"add rule {table} {chain} ip daddr {gateway} tcp dport {CHECKER_PORT}{mark} accept"
        )
    return lines
