"""The host's own LANs, whatever their address range (issue 15, "LAN holes").

The private/special block list (`network.plan.BLOCKED4/6`) misses LANs on public space: a
cloud VM's neighbours on its public /20, a Wi-Fi LAN with a global IPv6 prefix, the
default gateway itself. These are computed here from the host's routing table, as the
networks it reaches without a gateway (on-link) plus its default gateways, and loaded into
the project's `p_KEY_lan4` / `p_KEY_lan6` sets, which the rules block unless lan-access
allows them.

Source of truth: `current()` reads /proc (IPv4 main table, IPv6 every table), not `ip -j`:
the daemon re-reads it every few seconds, and three `ip -j` runs cost ~5 ms of forks where
the three /proc reads cost ~0.06 ms. The price: IPv4 routes in other tables than `main`
(policy routing: Tailscale's table 52, wg-quick's 51820) are not seen by /proc, nor any
but the first next hop of a multipath IPv4 default; `parse_routes`, which reads
`ip -j ... table all` output, sees both. /proc/net/if_inet6 adds nothing: every on-link
IPv6 prefix is a route in /proc/net/ipv6_route.

What is left out, and why:
* loopback, alcatraz's own bridges (`alca-*`) and networks inside the project pool: the
  rules block them already, and listing them would only churn the set;
* link-local and multicast, IPv4 and IPv6: blocked already;
* routed networks (with a gateway): they are the internet, not a LAN, except that the
  default gateways themselves are LAN hosts (added as /32 and /128);
* on-link routes broader than /8 (IPv4) or /16 (IPv6), defaults included: a VPN that
  sends everything through its tunnel (`0.0.0.0/1 dev wg0`, `2000::/3 dev tun0`,
  `default dev tailscale0`) is a path to the internet, and blocking it would cut the
  sandbox off.
"""

from __future__ import annotations

import ipaddress
import json
import re
import sys
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from alcatraz.network.egress.rules import set_names
from alcatraz.network.plan import POOL4

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: interfaces whose routes never count: alcatraz's own project bridges
OWN_BRIDGE_PREFIX: Final = "alca-"
#: on-link routes broader than these are a tunnel's path to the internet, not a LAN
MIN_PREFIX4: Final = 8
MIN_PREFIX6: Final = 16
#: blocked already by the rules; kept out of the set
LEFT_OUT: Final[tuple[IPNetwork, ...]] = (
    POOL4,
    ipaddress.IPv4Network("169.254.0.0/16"),  # link-local (and cloud metadata)
    ipaddress.IPv4Network("224.0.0.0/4"),  # multicast
    ipaddress.IPv6Network("fe80::/10"),  # link-local
    ipaddress.IPv6Network("ff00::/8"),  # multicast
)

# route flags of /proc/net/route and /proc/net/ipv6_route (linux/route.h, ipv6_route.h)
RTF_GATEWAY: Final = 0x0002
RTF_REJECT: Final = 0x0200
RTF_ANYCAST: Final = 0x0010_0000
RTF_CACHE: Final = 0x0100_0000
RTF_LOCAL: Final = 0x8000_0000
IFF_LOOPBACK: Final = 0x8

_SET_KEY = re.compile(r"[0-9a-z]{1,32}")
_TABLE = re.compile(r"(inet|ip|ip6|bridge|netdev|arp) [A-Za-z_][A-Za-z0-9_]{0,63}")


@dataclass(frozen=True)
class HostLan:
    """The host's on-link networks and default gateways, collapsed and sorted."""

    nets4: tuple[ipaddress.IPv4Network, ...] = ()
    nets6: tuple[ipaddress.IPv6Network, ...] = ()

    def describe(self) -> str:
        return ", ".join(str(n) for n in (*self.nets4, *self.nets6)) or "none"


@dataclass(frozen=True)
class Route:
    """One unicast route, whichever source it was read from."""

    dst: IPNetwork
    gateway: IPAddress | None
    dev: str


def host_lan(routes: Iterable[Route], loopbacks: Collection[str] = ("lo",)) -> HostLan:
    """The LAN networks among `routes` (see the module docstring for what is left out)."""
    found: list[IPNetwork] = []
    for route in routes:
        if route.dev in loopbacks or route.dev.startswith(OWN_BRIDGE_PREFIX):
            continue
        if route.gateway is not None:
            if route.dst.prefixlen == 0:
                found.append(ipaddress.ip_network(route.gateway))
            continue
        minimum = MIN_PREFIX4 if route.dst.version == 4 else MIN_PREFIX6
        if route.dst.prefixlen >= minimum:
            found.append(route.dst)
    kept = [n for n in found if not _left_out(n)]
    nets4 = ipaddress.collapse_addresses(n for n in kept if isinstance(n, ipaddress.IPv4Network))
    nets6 = ipaddress.collapse_addresses(n for n in kept if isinstance(n, ipaddress.IPv6Network))
    return HostLan(tuple(sorted(nets4)), tuple(sorted(nets6)))


def _left_out(net: IPNetwork) -> bool:
    if isinstance(net, ipaddress.IPv4Network):
        return any(isinstance(o, ipaddress.IPv4Network) and net.subnet_of(o) for o in LEFT_OUT)
    return any(isinstance(o, ipaddress.IPv6Network) and net.subnet_of(o) for o in LEFT_OUT)


# --- `ip -j` output ---------------------------------------------------------------------


def parse_routes(ip_json_route_v4: str, ip_json_route_v6: str, ip_json_addr: str) -> HostLan:
    """The host LAN from `ip -j -4 route show table all`, `ip -j -6 route show table all`
    and `ip -j addr` (which says which interfaces are loopbacks)."""
    loopbacks = {
        str(link.get("ifname", ""))
        for link in _json_list(ip_json_addr)
        if link.get("link_type") == "loopback" or "LOOPBACK" in link.get("flags", [])
    }
    routes = [
        *_json_routes(_json_list(ip_json_route_v4), ipaddress.IPv4Network("0.0.0.0/0")),
        *_json_routes(_json_list(ip_json_route_v6), ipaddress.IPv6Network("::/0")),
    ]
    return host_lan(routes, loopbacks | {"lo"})


def _json_list(text: str) -> list[dict[str, Any]]:
    data = json.loads(text) if text.strip() else []
    if not isinstance(data, list):
        raise ValueError("ip -j output is not a list")
    return [item for item in data if isinstance(item, dict)]


def _json_routes(entries: Iterable[dict[str, Any]], default: IPNetwork) -> Iterator[Route]:
    """Unicast routes of `ip -j route` entries; a multipath route yields one per hop."""
    for entry in entries:
        if entry.get("type", "unicast") != "unicast" or "dst" not in entry:
            continue
        dst_text = str(entry["dst"])
        dst = default if dst_text == "default" else ipaddress.ip_network(dst_text)
        hops = entry.get("nexthops") or [entry]
        for hop in hops:
            yield Route(dst, _json_gateway(hop), str(hop.get("dev", entry.get("dev", ""))))


def _json_gateway(hop: dict[str, Any]) -> IPAddress | None:
    via = hop.get("via")
    text = via.get("host") if isinstance(via, dict) else hop.get("gateway")
    return ipaddress.ip_address(text) if text else None


# --- /proc ------------------------------------------------------------------------------


def parse_proc(
    proc_net_route: str,
    proc_net_ipv6_route: str,
    loopbacks: Collection[str] = ("lo",),
    byteorder: Literal["little", "big"] = sys.byteorder,
) -> HostLan:
    """The host LAN from /proc/net/route (IPv4, main table) and /proc/net/ipv6_route (IPv6,
    every table). `byteorder`: the kernel prints IPv4 words in the host's order."""
    routes = [*_proc_routes4(proc_net_route, byteorder), *_proc_routes6(proc_net_ipv6_route)]
    return host_lan(routes, loopbacks)


def _proc_routes4(text: str, byteorder: Literal["little", "big"]) -> Iterator[Route]:
    def address(word: str) -> ipaddress.IPv4Address:
        return ipaddress.IPv4Address(int(word, 16).to_bytes(4, byteorder))

    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8:
            continue
        dev, dst, gateway, flags, mask = fields[0], fields[1], fields[2], fields[3], fields[7]
        if int(flags, 16) & RTF_REJECT:
            continue
        network = ipaddress.IPv4Network(f"{address(dst)}/{address(mask)}", strict=False)
        via = address(gateway) if int(flags, 16) & RTF_GATEWAY else None
        yield Route(network, via, dev)


def _proc_routes6(text: str) -> Iterator[Route]:
    def address(word: str) -> ipaddress.IPv6Address:
        return ipaddress.IPv6Address(bytes.fromhex(word))

    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 10:
            continue
        flags = int(fields[8], 16)
        if flags & (RTF_REJECT | RTF_LOCAL | RTF_ANYCAST | RTF_CACHE):
            continue
        network = ipaddress.IPv6Network((address(fields[0]), int(fields[1], 16)), strict=False)
        via = address(fields[4]) if flags & RTF_GATEWAY else None
        yield Route(network, via, fields[9])


def loopback_interfaces(sys_class_net: Path = Path("/sys/class/net")) -> frozenset[str]:
    """Interfaces flagged IFF_LOOPBACK (`lo`, and any other a container engine made)."""
    found = {"lo"}
    for flags in sys_class_net.glob("*/flags"):
        try:
            if int(flags.read_text().strip(), 16) & IFF_LOOPBACK:
                found.add(flags.parent.name)
        except (OSError, ValueError):
            continue
    return frozenset(found)


def current(proc: Path = Path("/proc"), sys_class_net: Path = Path("/sys/class/net")) -> HostLan:
    """The live host's LAN (no subprocess, no packet): three small file reads."""
    net = proc / "net"
    route4 = _read_optional(net / "route")
    route6 = _read_optional(net / "ipv6_route")  # absent when IPv6 is disabled
    return parse_proc(route4, route6, loopback_interfaces(sys_class_net))


def _read_optional(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def changed(old: HostLan | None, new: HostLan) -> bool:
    """Whether the sets must be reloaded (`old` None: never loaded)."""
    return old != new


# --- the nft transaction ----------------------------------------------------------------


def lan_set_names(key: str) -> tuple[str, str]:
    """The IPv4 and IPv6 host-LAN set names of project `key` (declared by `egress.rules`)."""
    if not _SET_KEY.fullmatch(key):
        raise ValueError(f"not a project key: {key!r}")
    names = set_names(key)
    return names.lan4, names.lan6


def lan_script(table: str, key: str, hostlan: HostLan) -> str:
    """One nft transaction that replaces both host-LAN sets of project `key` in `table`
    ("inet alcatraz"): a flush and the new elements, so no packet sees an empty set."""
    if not _TABLE.fullmatch(table):
        raise ValueError(f"not an nft table: {table!r}")
    lines: list[str] = []
    for name, nets in zip(lan_set_names(key), (hostlan.nets4, hostlan.nets6), strict=True):
        lines.append(f"flush set {table} {name}")
        if nets:
            elements = ", ".join(str(n) for n in nets)
            lines.append(f"add element {table} {name} {{ {elements} }}")
    return "\n".join(lines) + "\n"
