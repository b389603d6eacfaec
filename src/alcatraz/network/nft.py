"""Render alcatraz's nftables rules as text for `nft -f -` (pure; tested with golden files).

One table, `inet alcatraz`, owned by alcatraz and nobody else:

- base chains `forward` and `input` (filter, priority filter - 2, before the engines' own
  rules) and `prerouting` (nat, dstnat - 1) dispatch on the *ingress bridge* through verdict
  maps, so the cost per packet does not grow with the number of projects, and IPv4 and IPv6
  are covered alike;
- per project, `p_<key>_fwd` (traffic leaving through the host), `p_<key>_in` (traffic to
  the host itself: only DNS to the project gateway and explicit exceptions pass) and, with a
  proxy, `p_<key>_nat`;
- per project, the sets `egress.rules` declares: the host's own LANs (always, for an
  isolated project) and, with `network.egress`, the addresses allowed names resolved to and
  the daemon's heartbeat (filled by the project's daemon, never saved);
- fail-closed backstops in the base chains: anything from a bridge named `alca-*` or from
  the project address pool that no project chain claimed is dropped.

Every script is one transaction: the kernel applies all of it or none of it.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable
from typing import Final

from alcatraz.config.netgrammar import AlcaToken, LanRule
from alcatraz.network.egress import rules as egress_rules
from alcatraz.network.plan import BLOCKED4, BLOCKED6, POOL4, Policy

TABLE: Final = "alcatraz"
FAMILY: Final = "inet"
T: Final = f"{FAMILY} {TABLE}"
BRIDGE_PATTERN: Final = "alca-*"
SEEN_TIMEOUT: Final = "1d"
#: IPv6 prefixes that embed any IPv4 address, public ones included (NAT64, 6to4).
EMBEDDING_IPV4: Final = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("2002::/16"))


def chain_names(key: str) -> tuple[str, str, str]:
    return f"p_{key}_fwd", f"p_{key}_in", f"p_{key}_nat"


def seen_sets(key: str) -> tuple[str, str]:
    return f"p_{key}_seen4", f"p_{key}_seen6"


def _q(text: str) -> str:
    """An nft quoted string; callers only pass validated names, this is defence in depth."""
    if any(ch in text for ch in '"\\\n\r;') or not text.isprintable():
        raise ValueError(f"unsafe name for nft: {text!r}")
    return f'"{text}"'


def _set(networks: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> str:
    return "{ " + ", ".join(str(n) for n in networks) + " }"


def base_script() -> str:
    """Create the table and base chains if missing; (re)write the base chains' rules."""
    lines = [
        f"add table {T}",
        f"add map {T} fwd_dispatch {{ type ifname : verdict ; }}",
        f"add map {T} in_dispatch {{ type ifname : verdict ; }}",
        f"add map {T} nat_dispatch {{ type ifname : verdict ; }}",
        f"add set {T} bridges {{ type ifname ; }}",
        f"add chain {T} forward {{ type filter hook forward priority filter - 2 ; policy accept ; }}",
        f"add chain {T} input {{ type filter hook input priority filter - 2 ; policy accept ; }}",
        f"add chain {T} prerouting {{ type nat hook prerouting priority dstnat - 1 ; policy accept ; }}",
        f"flush chain {T} forward",
        f"add rule {T} forward iifname vmap @fwd_dispatch",
        f'add rule {T} forward iifname @bridges counter drop comment "alcatraz: bridge without policy"',
        f'add rule {T} forward iifname "{BRIDGE_PATTERN}" counter drop comment "alcatraz: bridge without policy"',
        f'add rule {T} forward ip saddr {POOL4} counter drop comment "alcatraz: pool without policy"',
        f"flush chain {T} input",
        f"add rule {T} input iifname vmap @in_dispatch",
        f'add rule {T} input iifname @bridges counter drop comment "alcatraz: bridge without policy"',
        f'add rule {T} input iifname "{BRIDGE_PATTERN}" counter drop comment "alcatraz: bridge without policy"',
        f'add rule {T} input ip saddr {POOL4} counter drop comment "alcatraz: pool without policy"',
        f"flush chain {T} prerouting",
        f"add rule {T} prerouting iifname vmap @nat_dispatch",
    ]
    return "\n".join(lines) + "\n"


def _rule_matches(rule: LanRule) -> list[str]:
    """nft match expressions for one allow rule (one per protocol)."""
    address = rule.address
    if isinstance(address, AlcaToken):
        raise ValueError("tokens must be resolved before rendering")
    return egress_rules.destination_matches(address, rule.protocols, rule.ports)


def policy_digest(policy: Policy) -> str:
    """Identifies the exact rules loaded for a project, to detect a changed or stale chain."""
    return hashlib.sha256(project_chains(policy, digest="").encode()).hexdigest()[:16]


def project_chains(policy: Policy, *, digest: str | None = None) -> str:
    """The project's chains, replaced as a whole (add + flush + rules)."""
    if digest is None:
        digest = policy_digest(policy)
    tag = f'comment "alcatraz {policy.key} {digest}"'
    lines = _project_headers(policy.key)
    if not policy.allow_all:
        lines += egress_rules.declare_sets(T, policy.key, egress=policy.egress is not None)
    fwd, inp, _ = chain_names(policy.key)
    proxy_matches = _proxy_matches(policy)
    if policy.allow_all and not proxy_matches:
        lines += [
            f"add rule {T} {fwd} accept {tag}",
            f"add rule {T} {inp} accept {tag}",
        ]
        return "\n".join(lines) + "\n"
    if policy.allow_all:
        lines += _allow_all_forward_rules(policy.key, tag, proxy_matches)
        lines.append(f"add rule {T} {inp} accept {tag}")
    else:
        allows = [m for rule in policy.rules for m in _rule_matches(rule)]
        lines += _forward_rules(policy, tag, allows, proxy_matches)
        lines += _input_rules(policy, tag, allows, proxy_matches)
    lines += _proxy_redirect(policy)
    if policy.egress is not None and not policy.allow_all:
        _, _, nat = chain_names(policy.key)
        lines += egress_rules.nat_egress(
            T, nat, policy.key, policy.egress, _set(BLOCKED4), _set(BLOCKED6)
        )
    return "\n".join(lines) + "\n"


def _project_headers(key: str) -> list[str]:
    """Create the project's chains and seen-sets if missing, and empty the chains."""
    fwd, inp, nat = chain_names(key)
    seen4, seen6 = seen_sets(key)
    return [
        f"add chain {T} {fwd}",
        f"add chain {T} {inp}",
        f"add chain {T} {nat}",
        f"add set {T} {seen4} {{ type ipv4_addr ; flags dynamic,timeout ; timeout {SEEN_TIMEOUT} ; size 4096 ; counter ; }}",
        f"add set {T} {seen6} {{ type ipv6_addr ; flags dynamic,timeout ; timeout {SEEN_TIMEOUT} ; size 4096 ; counter ; }}",
        f"flush chain {T} {fwd}",
        f"flush chain {T} {inp}",
        f"flush chain {T} {nat}",
    ]


def _proxy_matches(policy: Policy) -> list[str]:
    """The matches for TCP and UDP to the proxy's host:port (as the Go tool allows both;
    only TCP is redirected), or none without a proxy."""
    proxy = policy.proxy
    if proxy is None:
        return []
    host = proxy.host
    if isinstance(host, AlcaToken):
        raise ValueError("tokens must be resolved before rendering")
    family = "ip" if host.version == 4 else "ip6"
    return [f"{family} daddr {host} {proto} dport {proxy.port}" for proto in ("tcp", "udp")]


def _forward_rules(
    policy: Policy, tag: str, allows: list[str], proxy_matches: list[str]
) -> list[str]:
    """Traffic leaving through the host: allowed rules, the proxy, the blocked ranges and
    the host's own LANs, then the internet (all of it, or what `egress` lists)."""
    key = policy.key
    fwd, _, _ = chain_names(key)
    seen4, seen6 = seen_sets(key)
    lines = [f"add rule {T} {fwd} ct state established,related accept {tag}"]
    lines += [f"add rule {T} {fwd} {m} accept" for m in allows]
    lines += _only_through_proxy(fwd, proxy_matches)
    lines += [
        f"add rule {T} {fwd} ip6 daddr ff02::/16 meta l4proto ipv6-icmp drop",
        f"add rule {T} {fwd} ip daddr {_set(BLOCKED4)} update @{seen4} {{ ip daddr }} counter drop",
        f"add rule {T} {fwd} ip6 daddr {_set(BLOCKED6)} update @{seen6} {{ ip6 daddr }} counter drop",
        *egress_rules.lan_drops(T, fwd, key, seen4, seen6),
    ]
    if policy.egress is not None:
        return lines + egress_rules.forward_egress(T, fwd, key, policy.egress)
    # The internet. Explicit, because dispatch *jumps*: an emptied (flushed) chain returns
    # to the base chain, whose backstop drops everything from the bridge (fail closed).
    return [*lines, f"add rule {T} {fwd} accept {tag}"]


def _only_through_proxy(fwd: str, proxy_matches: list[str]) -> list[str]:
    """With a proxy, TCP leaves only through it: the proxy's host:port is accepted, and
    TCP that was not redirected (e.g. the other IP family) is dropped, not sent direct."""
    if not proxy_matches:
        return []
    return [f"add rule {T} {fwd} {m} accept" for m in proxy_matches] + [
        f"add rule {T} {fwd} meta l4proto tcp counter drop"
    ]


def _allow_all_forward_rules(key: str, tag: str, proxy_matches: list[str]) -> list[str]:
    """`lan-access = ["*"]` with a proxy: every private destination is reached directly (it
    is not redirected), internet TCP only through the proxy, anything else passes.

    The IPv6 prefixes that embed any IPv4 address (NAT64, 6to4) reach public hosts too:
    TCP to them is dropped before the private ranges are accepted, so no translator carries
    TCP past the proxy."""
    fwd, _, _ = chain_names(key)
    return [
        f"add rule {T} {fwd} ct state established,related accept {tag}",
        f"add rule {T} {fwd} ip daddr {_set(BLOCKED4)} accept",
        f"add rule {T} {fwd} ip6 daddr {_set(EMBEDDING_IPV4)} meta l4proto tcp counter drop",
        f"add rule {T} {fwd} ip6 daddr {_set(BLOCKED6)} accept",
        *_only_through_proxy(fwd, proxy_matches),
        f"add rule {T} {fwd} accept {tag}",
    ]


def _input_rules(
    policy: Policy, tag: str, allows: list[str], proxy_matches: list[str]
) -> list[str]:
    """Traffic to the host itself: DNS to the gateway, explicit exceptions, nothing else."""
    _, inp, _ = chain_names(policy.key)
    seen4, seen6 = seen_sets(policy.key)
    gateway = policy.network.gateway
    lines = [
        f"add rule {T} {inp} ct state established,related accept {tag}",
        *egress_rules.daemon_inputs(
            T,
            inp,
            gateway,
            marked=policy.own_resolver,
            egress=policy.egress is not None,
        ),
    ]
    lines += [f"add rule {T} {inp} {m} accept" for m in allows]
    lines += [f"add rule {T} {inp} {m} accept" for m in proxy_matches]
    lines += [
        # The kernel's own IPv6 neighbour/router discovery: dropped, but not an "attempt".
        f"add rule {T} {inp} ip6 daddr ff02::/16 meta l4proto ipv6-icmp drop",
        f"add rule {T} {inp} meta nfproto ipv4 update @{seen4} {{ ip daddr }} counter drop",
        f"add rule {T} {inp} meta nfproto ipv6 update @{seen6} {{ ip6 daddr }} counter drop",
        f"add rule {T} {inp} counter drop",
    ]
    return lines


def _proxy_redirect(policy: Policy) -> list[str]:
    """Transparent proxy: redirect outgoing TCP, except to the proxy, the LAN or the host.

    LAN and host destinations stay blocked by the filter chains (or, where `lan-access`
    allows them, `["*"]` included, are reached directly); the proxy is skipped so that
    redirected traffic does not loop. The same with or without `["*"]`.
    """
    proxy = policy.proxy
    if proxy is None or isinstance(proxy.host, AlcaToken):
        return []
    _, _, nat = chain_names(policy.key)
    host = proxy.host
    if host.version == 4:
        return [
            f"add rule {T} {nat} ip daddr {host} return",
            f"add rule {T} {nat} ip daddr {_set(BLOCKED4)} return",
            f"add rule {T} {nat} fib daddr type local return",
            f"add rule {T} {nat} meta nfproto ipv4 meta l4proto tcp dnat ip to {host}:{proxy.port}",
        ]
    return [
        f"add rule {T} {nat} ip6 daddr {host} return",
        f"add rule {T} {nat} ip6 daddr {_set(BLOCKED6)} return",
        f"add rule {T} {nat} fib daddr type local return",
        f"add rule {T} {nat} meta nfproto ipv6 meta l4proto tcp dnat ip6 to [{host}]:{proxy.port}",
    ]


def dispatch_elements(policy: Policy, existing: dict[str, set[str]]) -> str:
    """Point the project's bridge at its chains, replacing stale entries for that bridge.

    `existing` maps each dispatch map to the interface names it currently holds.
    """
    fwd, inp, nat = chain_names(policy.key)
    ifname = _q(policy.network.interface)
    lines: list[str] = []
    for map_name, target in (
        ("fwd_dispatch", f"jump {fwd}"),
        ("in_dispatch", f"jump {inp}"),
        ("nat_dispatch", f"jump {nat}"),
    ):
        if policy.network.interface in existing.get(map_name, set()):
            lines.append(f"delete element {T} {map_name} {{ {ifname} }}")
        lines.append(f"add element {T} {map_name} {{ {ifname} : {target} }}")
    lines.append(f"add element {T} bridges {{ {ifname} }}")
    return "\n".join(lines) + "\n"


def apply_script(policy: Policy, existing: dict[str, set[str]]) -> str:
    """Everything needed to enforce `policy`, as one transaction."""
    return base_script() + project_chains(policy) + dispatch_elements(policy, existing)


def removal_script(
    key: str, interfaces: Iterable[str], existing: dict[str, set[str]], chains: set[str]
) -> str:
    """Remove a project's dispatch entries and chains (only what exists, so it never fails)."""
    lines: list[str] = []
    for ifname in interfaces:
        for map_name in ("fwd_dispatch", "in_dispatch", "nat_dispatch", "bridges"):
            if ifname in existing.get(map_name, set()):
                lines.append(f"delete element {T} {map_name} {{ {_q(ifname)} }}")
    for chain in chain_names(key):
        if chain in chains:
            lines.append(f"flush chain {T} {chain}")
    for chain in chain_names(key):
        if chain in chains:
            lines.append(f"delete chain {T} {chain}")
    for named_set in (*seen_sets(key), *egress_rules.all_set_names(key)):
        if named_set in chains:
            lines.append(f"delete set {T} {named_set}")
    return "\n".join(lines) + ("\n" if lines else "")


#: The second layer's table, in the sandbox's own network namespace.
GUARD_TABLE: Final = "alcatraz_guard"
G: Final = f"{FAMILY} {GUARD_TABLE}"


def guard_tag(policy: Policy) -> str:
    return f"alcatraz-guard {policy.key} {policy_digest(policy)}"


def guard_script(policy: Policy) -> str:
    """The policy again, as an output chain inside the sandbox's network namespace.

    The host's table can go under a running sandbox (`nft flush ruleset` when nftables.service
    restarts, a user deleting it); a ruleset in the container's own namespace does not, and
    the agent cannot change it (no CAP_NET_ADMIN). It blocks what the host's forward chain
    blocks, and the private addresses of the host (the gateway, other bridges, the LAN
    interface) as the input chain does; the host's public addresses it cannot know. The
    engine's resolver stays reachable (Docker: 127.0.0.11 on loopback; Podman: the gateway's
    port 53), and so is the proxy's host:port (TCP and UDP, as on the host). With `allow_all`
    the table is removed, proxy or not: it would block nothing. It never redirects (a nat
    output chain here would work, but the proxy's SO_ORIGINAL_DST would name the proxy
    itself), so without the host's table TCP leaves past the proxy. One transaction,
    replacing any earlier version.
    """
    lines = [f"add table {G}", f"delete table {G}"]
    if policy.allow_all:
        return "\n".join(lines) + "\n"
    gateway = policy.network.gateway
    lines += [
        f"add table {G}",
        # Blocked destinations are recorded as on the host, for `alca net log` and `status`.
        f"add set {G} seen4 {{ type ipv4_addr ; flags dynamic,timeout ; timeout {SEEN_TIMEOUT} ; size 4096 ; counter ; }}",
        f"add set {G} seen6 {{ type ipv6_addr ; flags dynamic,timeout ; timeout {SEEN_TIMEOUT} ; size 4096 ; counter ; }}",
        f"add chain {G} output {{ type filter hook output priority filter ; policy accept ; }}",
        f'add rule {G} output oifname "lo" accept',
        f"add rule {G} output ct state established,related accept",
        f"add rule {G} output ip daddr {gateway} udp dport 53 accept",
        f"add rule {G} output ip daddr {gateway} tcp dport 53 accept",
    ]
    lines += [
        f"add rule {G} output {m} accept" for rule in policy.rules for m in _rule_matches(rule)
    ]
    lines += [f"add rule {G} output {m} accept" for m in _proxy_matches(policy)]
    lines += [
        f"add rule {G} output ip daddr {_set(BLOCKED4)} update @seen4 {{ ip daddr }} counter drop",
        f"add rule {G} output ip6 daddr {_set(BLOCKED6)} update @seen6 {{ ip6 daddr }} counter drop",
        f'add rule {G} output accept comment "{guard_tag(policy)}"',
    ]
    return "\n".join(lines) + "\n"
