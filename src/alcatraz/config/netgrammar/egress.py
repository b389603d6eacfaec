"""The `network.egress` grammar: which internet names and addresses a sandbox may reach.

An entry is `[tcp://|udp://]HOST[:PORT|:LO-HI]`, with HOST a name (`example.com`), its
subdomains (`*.example.com`, not the name itself) or a public network (`203.0.113.0/24`,
`[2001:db8::/32]` when a port follows). Ports and prefixes read as in `lan-access`, except
that an entry with a port and no prefix covers both tcp and udp: no prefix and no port is
every protocol (ICMP too), a prefix and no port is that protocol on every port.

Private and special-purpose destinations are `lan-access`'s, so a network that overlaps
them is refused here. `network.dns` (the resolvers the sandbox's lookups go to) is parsed
here too: an address and an optional port.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from alcatraz.config.netgrammar.addresses import IPAddress, parse_ipv4, parse_ipv6
from alcatraz.config.netgrammar.lan import LanRule, render_lan_rule
from alcatraz.config.netgrammar.lexical import (
    PORT_MAX,
    PORT_MIN,
    GrammarError,
    check_text,
    port_number,
)
from alcatraz.config.netgrammar.names import MAX_NAME_LENGTH, name_problem, parse_name
from alcatraz.config.netgrammar.parts import (
    check_protocols_and_ports,
    parse_network,
    port_range,
    render_network,
    split_scheme,
)
from alcatraz.config.netgrammar.ranges import BLOCKED4, BLOCKED6, GLOBAL_UNICAST6, POOL4
from alcatraz.errors import quote

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_ALL_PORTS: Final = (PORT_MIN, PORT_MAX)
_SCHEMES: Final = ("tcp", "udp")
# ASCII that an entry can contain, and any non-ASCII character, so that a Unicode name gets
# its own message (with the A-label form) instead of "invalid character".
_EGRESS_CHARS: Final = re.compile(r"(?:[0-9A-Za-z.:/\[\]*-]|[^\x00-\x7f])*")
_EGRESS_EXAMPLE: Final = '"example.com", "*.example.com:443" or "udp://ntp.example.com:123"'
#: The longest name with a prefix and a port range: `udp://` + 253 + `:65535-65535`.
_MAX_ENTRY: Final = len("udp://") + MAX_NAME_LENGTH + len(":65535-65535")
_NUMERIC: Final = re.compile(r"[0-9]+|0[xX][0-9A-Fa-f]*")


@dataclass(frozen=True)
class EgressRule:
    """One entry of `network.egress`: a name (`wildcard`: its subdomains only) or a network,
    with protocols and ports as a `lan-access` rule has them (`()` = every protocol).

    The constructor enforces what the parser does, so every rule renders and parses back.
    """

    name: str | None
    wildcard: bool
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None
    protocols: tuple[str, ...]
    ports: tuple[int, int] | None

    def __post_init__(self) -> None:
        if (self.name is None) == (self.network is None):
            raise ValueError("an egress rule has either a name or a network")
        if not isinstance(self.wildcard, bool):
            raise TypeError(f"wildcard must be a bool, not {self.wildcard!r}")
        if self.name is not None:
            problem = name_problem(self.name) if isinstance(self.name, str) else "not a string"
            if problem:
                raise ValueError(f"invalid egress name {self.name!r}: {problem}")
        elif not isinstance(self.network, ipaddress.IPv4Network | ipaddress.IPv6Network):
            raise TypeError(f"network must be an IP network, not {self.network!r}")
        else:
            if self.wildcard:
                raise ValueError("only a name can be a wildcard")
            reason = not_public(self.network)
            if reason:
                raise ValueError(f"egress network {self.network} {reason}")
        check_protocols_and_ports(self.protocols, self.ports, every="every")


def _special_ranges(network: Network) -> tuple[Network, ...]:
    """The blocked ranges of the network's family."""
    return BLOCKED6 if network.version == 6 else BLOCKED4


def not_public(network: Network) -> str | None:
    """Why egress cannot list `network` (private or special-purpose), or None."""
    if isinstance(network, ipaddress.IPv6Network) and network.network_address.scope_id:
        return "has a zone id"
    for special in _special_ranges(network):
        if network.overlaps(special):
            return f"overlaps the private or special-purpose range {special}"
    if isinstance(network, ipaddress.IPv6Network) and not network.subnet_of(GLOBAL_UNICAST6):
        return f"is not inside the global unicast space {GLOBAL_UNICAST6}"
    return None


def parse_egress(entries: Sequence[str]) -> tuple[EgressRule, ...]:
    """Parse an `egress` list; exact duplicates are dropped, the order is kept."""
    if isinstance(entries, str):
        raise GrammarError(
            f"egress must be a list of entries, not the string {quote(entries)}",
            f"put the entry in a list: [{quote(entries)}]",
        )
    return tuple(dict.fromkeys(parse_egress_rule(entry) for entry in entries))


def parse_egress_rule(text: str) -> EgressRule:
    """Parse `[tcp://|udp://]HOST[:PORT|:LO-HI]` (see the module's docstring)."""
    if isinstance(text, str) and "${" in text:
        raise GrammarError(
            f"egress entry {quote(text)} has a token: the host is on the LAN",
            "the host and the LAN are reached through lan-access, e.g. "
            'lan-access = ["${alca:HOST_IP}:8080"]',
        )
    check_text(text, "egress entry", _EGRESS_CHARS, _EGRESS_EXAMPLE, max_length=_MAX_ENTRY)
    if text == "*" or text.startswith("*://"):
        raise GrammarError(
            f"{quote(text)} is not an egress entry",
            "to let the sandbox reach the whole internet, remove the egress key; without a "
            "prefix an entry with a port covers tcp and udp, e.g. example.com:443",
        )
    scheme, rest = split_scheme(
        text,
        _SCHEMES,
        "an egress entry is a name or an address, not a URL: write it without a prefix, "
        "or with tcp:// or udp://, e.g. example.com:443 or udp://ntp.example.com:123",
        "tcp://git.example.com:22",
    )
    host, port_text = _split_host(rest, text)
    ports = None if port_text is None else port_range(port_text, text)
    if scheme is not None:
        protocols: tuple[str, ...] = (scheme,)
        ports = ports or _ALL_PORTS
    else:
        protocols = () if ports is None else ("tcp", "udp")
    if isinstance(host, ipaddress.IPv4Network | ipaddress.IPv6Network):
        _check_public(host, text, protocols, ports)
        return EgressRule(None, False, host, protocols, ports)
    name, wildcard = host
    return EgressRule(name, wildcard, None, protocols, ports)


def _split_host(rest: str, whole: str) -> tuple[Network | tuple[str, bool], str | None]:
    """Split `HOST[:PORT]` into the network or (name, wildcard) and the port text."""
    if rest == "":
        raise GrammarError(
            f"missing name or address in {quote(whole)}", f"write one, e.g. {_EGRESS_EXAMPLE}"
        )
    if rest.startswith("["):
        end = rest.find("]")
        if end < 0:
            raise GrammarError(
                f"missing ']' in {quote(whole)}", "close the IPv6 network: [2001:db8::/32]:443"
            )
        network = parse_network(rest[1:end], whole, bracketed=True, example=_EGRESS_EXAMPLE)
        after = rest[end + 1 :]
        if after and not after.startswith(":"):
            raise GrammarError(
                f"unexpected {quote(after)} after ']' in {quote(whole)}",
                "only ':PORT' may follow, e.g. [2001:db8::/32]:443",
            )
        return network, after[1:] if after else None
    if "[" in rest or "]" in rest:
        raise GrammarError(
            f"misplaced bracket in {quote(whole)}",
            "brackets enclose a whole IPv6 address or network, e.g. [2001:db8::/32]:443",
        )
    first = rest.partition(":")[0]
    if rest.count(":") >= 2:
        if re.fullmatch(r"[0-9A-Fa-f]*", first):
            if ":" in rest.partition("/")[2]:
                raise GrammarError(
                    f"a port follows the IPv6 network in {quote(whole)} without brackets",
                    f"put the network in brackets: [{rest.rpartition(':')[0]}]:"
                    f"{rest.rpartition(':')[2]}",
                )
            # A bare IPv6 address never carries a port: `2001:db8::1:443` is one address.
            return parse_network(rest, whole, bracketed=False, example=_EGRESS_EXAMPLE), None
        raise GrammarError(
            f"too many ':' in {quote(whole)}",
            "give one port or a range, e.g. example.com:443 or example.com:8000-8100",
        )
    host, colon, port_text = rest.partition(":")
    if host == "":
        raise GrammarError(
            f"missing name or address before ':' in {quote(whole)}",
            "write it before the port, e.g. example.com:443",
        )
    return _host(host, whole), port_text if colon else None


def _host(host: str, whole: str) -> Network | tuple[str, bool]:
    address, slash, _ = host.partition("/")
    if address and all(_NUMERIC.fullmatch(label) for label in address.split(".")):
        return parse_network(host, whole, bracketed=False, example=_EGRESS_EXAMPLE)
    if slash:
        raise GrammarError(
            f"unexpected '/' in {quote(whole)}: a name takes no path or prefix length",
            "write the name alone, e.g. example.com or example.com:443",
        )
    return parse_name(host, whole)


def _check_public(
    network: Network, whole: str, protocols: tuple[str, ...], ports: tuple[int, int] | None
) -> None:
    reason = not_public(network)
    if reason is None:
        return
    message = (
        f"egress entry {quote(whole)} {reason}: private destinations are governed by lan-access"
    )
    if network.prefixlen == 0:
        hint = "to let the sandbox reach the whole internet, remove the egress key"
    elif any(
        s.prefixlen <= network.prefixlen and network.overlaps(s) for s in _special_ranges(network)
    ):
        lan = render_lan_rule(LanRule(network, protocols, ports))
        hint = f'move it to lan-access: lan-access = ["{lan}"]'
    elif "global unicast" in reason:
        hint = f"internet IPv6 addresses are inside {GLOBAL_UNICAST6}: write a network there"
    else:
        hint = (
            "list only public networks in egress (split this one around the special range), "
            "and private destinations in lan-access"
        )
    raise GrammarError(message, hint)


def render_egress_rule(rule: EgressRule) -> str:
    """Canonical text: `HOST` for every protocol, `HOST:PORTS` for tcp and udp,
    `PROTO://HOST` for one protocol on every port, else `PROTO://HOST:PORTS`."""
    with_port = rule.ports is not None and not (
        len(rule.protocols) == 1 and rule.ports == _ALL_PORTS
    )
    if rule.network is not None:
        host = render_network(rule.network, bracket=with_port)
    else:
        host = ("*." if rule.wildcard else "") + str(rule.name)
    prefix = f"{rule.protocols[0]}://" if len(rule.protocols) == 1 else ""
    if not with_port or rule.ports is None:
        return prefix + host
    lo, hi = rule.ports
    return f"{prefix}{host}:{lo if lo == hi else f'{lo}-{hi}'}"


# -- network.dns ---------------------------------------------------------------------------

DNS_PORT: Final = 53
_DNS_CHARS: Final = re.compile(r"[0-9A-Za-z.:\[\]-]*")
_DNS_EXAMPLE: Final = '"198.51.100.53", "198.51.100.53:5353" or "[2001:db8::53]:5353"'


def parse_dns_server(text: str) -> tuple[IPAddress, int]:
    """`ADDR[:PORT]` or `[IPv6][:PORT]` (a bare IPv6 takes no port): address and port (53)."""
    check_text(text, "dns server", _DNS_CHARS, _DNS_EXAMPLE)
    port_text: str | None
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise GrammarError(f"missing ']' in {quote(text)}", "close it: [2001:db8::53]:5353")
        address: IPAddress = parse_ipv6(text[1:end], text)
        after = text[end + 1 :]
        if after and not after.startswith(":"):
            raise GrammarError(
                f"unexpected {quote(after)} after ']' in {quote(text)}",
                "only ':PORT' may follow, e.g. [2001:db8::53]:5353",
            )
        port_text = after[1:] if after else None
    elif text.count(":") >= 2:
        if "." in text.partition(":")[0]:
            raise GrammarError(
                f"too many ':' in {quote(text)}", f"give one port, e.g. {_DNS_EXAMPLE}"
            )
        address, port_text = parse_ipv6(text, text), None
    else:
        host, colon, rest = text.partition(":")
        address = parse_ipv4(host, text, "dns server")
        port_text = rest if colon else None
    port = DNS_PORT if port_text is None else port_number(port_text, text)
    _check_dns_address(address, text)
    return address, port


def _check_dns_address(address: IPAddress, whole: str) -> None:
    if address.is_loopback:
        return  # the resolver runs on the host, where a local one is common
    if address.is_unspecified or address.is_multicast or address.is_reserved:
        reason = "not the address of a host"
    elif isinstance(address, ipaddress.IPv6Address) and address.is_link_local:
        reason = "link-local (it would need a zone id, which is not supported)"
    elif isinstance(address, ipaddress.IPv4Address) and address in POOL4:
        reason = f"inside alcatraz's project networks ({POOL4}): that is a sandbox"
    else:
        return
    raise GrammarError(
        f"dns server {quote(whole)} is {reason}",
        f"write the address of a resolver the host can reach, e.g. {_DNS_EXAMPLE}",
    )


def render_dns_server(address: IPAddress, port: int = DNS_PORT) -> str:
    """Canonical text: the address alone for port 53, else `ADDR:PORT` or `[IPv6]:PORT`."""
    if port == DNS_PORT:
        return str(address)
    if address.version == 6:
        return f"[{address}]:{port}"
    return f"{address}:{port}"
