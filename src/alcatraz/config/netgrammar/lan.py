"""The `network.lan-access` grammar: which LAN addresses and ports a sandbox may reach.

Each rule becomes an nft match, so an address is a network with no host bits set (or a
single address, or a token), and the protocol and ports are written out in the canonical
form. `lan-access` also accepts a port range `ADDR:LO-HI`, an extension over upstream.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Final, Literal, TypeAlias

from alcatraz.config.netgrammar.addresses import IPV4, IPAddress, parse_ipv4, parse_ipv6
from alcatraz.config.netgrammar.lexical import (
    PORT_MAX,
    PORT_MIN,
    GrammarError,
    check_text,
    is_port_number,
    port_number,
    within,
)
from alcatraz.config.netgrammar.tokens import AlcaToken, parse_token, resolved_address
from alcatraz.errors import quote

_ALL_PORTS: Final = (PORT_MIN, PORT_MAX)
_SCHEMES: Final = ("tcp", "udp", "*")
_PROTOCOL_SETS: Final[tuple[tuple[str, ...], ...]] = ((), ("tcp",), ("udp",), ("tcp", "udp"))

# The characters a rule can contain; anything else (such as `;`, quotes or `%`) is rejected
# before parsing.
_LAN_CHARS: Final = re.compile(r"[0-9A-Za-z.:/\[\]*${}_-]*")
_SCHEME_PREFIX: Final = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*|\*):(/*)")
_LAN_EXAMPLE: Final = '"192.168.1.10:8080", "udp://10.0.0.53:53" or "[fd00::1]:443"'

Address: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network | AlcaToken


def _port_range(text: str, whole: str) -> tuple[int, int]:
    """`N` or `LO-HI` (inclusive, LO <= HI)."""
    lo_text, sep, hi_text = text.partition("-")
    if not sep or lo_text == "":
        value = port_number(text, whole)
        return (value, value)
    lo = port_number(lo_text, whole)
    hi = port_number(hi_text, whole)
    if lo > hi:
        raise GrammarError(
            f"port range {quote(text)} in {quote(whole)} is reversed",
            f"write the lower port first: {hi}-{lo}",
        )
    return (lo, hi)


def _prefix_length(text: str, cidr: str, whole: str, maximum: int) -> int:
    if not re.fullmatch(r"0|[1-9][0-9]{0,2}", text):
        raise GrammarError(
            f"invalid prefix length {quote(text)} of {within(cidr, whole)}: "
            f"expected a number from 0 to {maximum}",
            "write a CIDR like 192.168.1.0/24 or fd00::/8",
        )
    value = int(text)
    if value > maximum:
        raise GrammarError(
            f"prefix length /{value} of {within(cidr, whole)} is out of range 0-{maximum}",
            "write a CIDR like 192.168.1.0/24 or fd00::/8",
        )
    return value


def _network(
    text: str, whole: str, *, bracketed: bool
) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """An address (a /32 or /128 network) or a CIDR whose host bits are all zero."""
    host_text, slash, prefix_text = text.partition("/")
    if "/" in prefix_text:
        raise GrammarError(
            f"invalid CIDR {within(text, whole)}: more than one '/'",
            "write a single prefix length, e.g. 10.0.0.0/8",
        )
    if host_text == "":
        raise GrammarError(
            f"missing address in {quote(whole)}", f"write an address, e.g. {_LAN_EXAMPLE}"
        )
    address: IPAddress
    if bracketed and ":" not in host_text:
        if IPV4.fullmatch(host_text):
            raise GrammarError(
                f"invalid address {within(text, whole)}: brackets are only for IPv6",
                f"remove the brackets, e.g. {text}:8080",
            )
        raise GrammarError(
            f"invalid IPv6 address {within(host_text, whole)}",
            "write an IPv6 address in the brackets, e.g. [fd00::1]:8080",
        )
    # The IPv4-mapped check of a CIDR is done on the network, so its hint can be a CIDR.
    if ":" in host_text:
        address = parse_ipv6(host_text, whole, allow_mapped=bool(slash))
    else:
        address = parse_ipv4(host_text, whole)
    if not slash:
        return ipaddress.ip_network((address, address.max_prefixlen))
    prefix = _prefix_length(prefix_text, text, whole, address.max_prefixlen)
    try:
        network = ipaddress.ip_network((address, prefix), strict=True)
    except ValueError:
        loose = ipaddress.ip_network((address, prefix), strict=False)
        raise GrammarError(
            f"invalid CIDR {within(text, whole)}: host bits are set (its network is {loose})",
            f"write the network address {quote(str(loose))}, "
            f"or {quote(str(address))} alone for that single host",
        ) from None
    if isinstance(network, ipaddress.IPv6Network):
        _reject_mapped_network(network, text, whole)
    return network


def _reject_mapped_network(network: ipaddress.IPv6Network, text: str, whole: str) -> None:
    mapped = network.network_address.ipv4_mapped
    if mapped is not None and network.prefixlen >= 96:
        v4 = ipaddress.IPv4Network((mapped, network.prefixlen - 96))
        raise GrammarError(
            f"invalid network {within(text, whole)}: IPv4-mapped IPv6 networks are not allowed",
            f"write the IPv4 form instead: {v4}",
        )


@dataclass(frozen=True)
class LanRule:
    """One allow rule of `network.lan-access`.

    `protocols == ()` means any protocol with no L4 match (and then `ports is None`);
    otherwise `ports` is an inclusive range. The constructor enforces this, so every rule
    can be rendered and parsed back.
    """

    address: Address
    protocols: tuple[str, ...]
    ports: tuple[int, int] | None

    def __post_init__(self) -> None:
        address = self.address
        if isinstance(address, ipaddress.IPv6Network):
            if address.network_address.scope_id is not None:
                raise ValueError("IPv6 zone ids are not supported")
            if address.network_address.ipv4_mapped is not None and address.prefixlen >= 96:
                raise ValueError("IPv4-mapped IPv6 networks are not allowed")
        elif not isinstance(address, ipaddress.IPv4Network | AlcaToken):
            raise TypeError(f"address must be a network or AlcaToken, not {address!r}")
        if self.protocols not in _PROTOCOL_SETS:
            raise ValueError(f"protocols must be one of {_PROTOCOL_SETS}, not {self.protocols!r}")
        if self.protocols == ():
            if self.ports is not None:
                raise ValueError("a rule for any protocol cannot have ports")
        elif self.ports is None:
            raise ValueError("a rule restricted to tcp/udp needs a port range")
        else:
            lo, hi = self.ports
            if not (is_port_number(lo) and is_port_number(hi) and lo <= hi):
                raise ValueError(f"invalid port range {self.ports!r}")

    @property
    def family(self) -> int | None:
        """4 or 6, or None for a token (its family is only known once it is resolved)."""
        if isinstance(self.address, AlcaToken):
            return None
        return self.address.version


def parse_lan_access(entries: Sequence[str]) -> tuple[bool, tuple[LanRule, ...]]:
    """Parse a `lan-access` list into (allow_all, rules).

    `"*"` anywhere means allow_all. The other entries are still validated and returned, so
    mistakes surface before someone removes the `*`. Exact duplicates are dropped.
    """
    if isinstance(entries, str):
        raise GrammarError(
            f"lan-access must be a list of rules, not the string {quote(entries)}",
            f"put the rule in a list: [{quote(entries)}]",
        )
    allow_all = False
    rules: dict[LanRule, None] = {}
    for entry in entries:
        parsed = parse_lan_rule(entry)
        if parsed == "*":
            allow_all = True
        else:
            rules[parsed] = None
    return allow_all, tuple(rules)


def parse_lan_rule(text: str) -> LanRule | Literal["*"]:
    """Parse `*` or `[tcp://|udp://|*://]ADDR[:PORT|:LO-HI|:*]`."""
    check_text(text, "lan-access rule", _LAN_CHARS, _LAN_EXAMPLE)
    if text == "*":
        return "*"
    scheme, rest = _split_scheme(text)
    address, port_text = _split_lan_address(rest, text)
    ports = None if port_text is None or port_text == "*" else _port_range(port_text, text)
    if scheme is None:
        if ports is None:
            return LanRule(address, (), None)
        return LanRule(address, ("tcp",), ports)
    if scheme == "*":
        if ports is None:
            return LanRule(address, (), None)
        return LanRule(address, ("tcp", "udp"), ports)
    return LanRule(address, (scheme,), ports or _ALL_PORTS)


def _split_scheme(text: str) -> tuple[str | None, str]:
    match = _SCHEME_PREFIX.match(text)
    if match is None:
        return None, text
    name, slashes = match.groups()
    if slashes == "//":
        if name in _SCHEMES:
            return name, text[match.end() :]
        if name.lower() in _SCHEMES:
            raise GrammarError(
                f"protocol {quote(name + '://')} in {quote(text)} must be lower case",
                f"write {quote(name.lower() + '://' + text[match.end() :])}",
            )
        raise GrammarError(
            f"unknown protocol {quote(name)} in {quote(text)}: expected tcp://, udp:// or *://",
            "use tcp:// or udp:// (or *:// for both), e.g. udp://10.0.0.53:53",
        )
    if slashes or name.lower() in ("tcp", "udp"):
        raise GrammarError(
            f"malformed protocol prefix in {quote(text)}: expected '://' after the protocol",
            "write it as tcp://ADDRESS[:PORT], e.g. tcp://192.168.1.10:8080",
        )
    return None, text


def _split_lan_address(rest: str, whole: str) -> tuple[Address, str | None]:
    """Split `ADDR[:PORT]` after the scheme into the address and the port text."""
    if rest == "":
        raise GrammarError(
            f"missing address in {quote(whole)}", f"write an address, e.g. {_LAN_EXAMPLE}"
        )
    address: Address
    if rest.startswith("["):
        end = rest.find("]")
        if end < 0:
            raise GrammarError(
                f"missing ']' in {quote(whole)}", "close the IPv6 address: [fd00::1]:8080"
            )
        address = _network(rest[1:end], whole, bracketed=True)
        after = rest[end + 1 :]
    elif rest.startswith("$"):
        address, after = parse_token(rest, whole)
    elif rest == "*" or rest.startswith("*:"):
        raise GrammarError(
            f"'*' in {quote(whole)} is not an address",
            'write "*" alone to allow all LAN traffic, or give an address, '
            "e.g. tcp://192.168.1.10:80 or tcp://192.168.1.0/24:80",
        )
    else:
        if "$" in rest:
            raise GrammarError(
                f"a token must be the whole address in {quote(whole)}",
                "write the token alone before the port, e.g. ${alca:HOST_IP}:8080",
            )
        if "[" in rest or "]" in rest:
            raise GrammarError(
                f"misplaced bracket in {quote(whole)}",
                "brackets enclose a whole IPv6 address, e.g. [fd00::1]:8080",
            )
        colons = rest.count(":")
        if colons >= 2:
            if re.match(r"[0-9]+\.", rest):
                raise GrammarError(
                    f"too many ':' in {quote(whole)}",
                    "give one port or a range, e.g. 10.0.0.1:80 or 10.0.0.1:8000-8100",
                )
            # A bare IPv6 address never carries a port: `fe80::1:8080` is one address.
            return _network(rest, whole, bracketed=False), None
        host, colon, port_text = rest.partition(":")
        if host == "":
            raise GrammarError(
                f"missing address before ':' in {quote(whole)}",
                "write the address before the port, e.g. 192.168.1.10:8080",
            )
        return _network(host, whole, bracketed=False), port_text if colon else None
    if after == "":
        return address, None
    if not after.startswith(":"):
        closing = "']'" if rest.startswith("[") else "the token"
        raise GrammarError(
            f"unexpected {quote(after)} after {closing} in {quote(whole)}",
            "only ':PORT' may follow, e.g. [fd00::1]:8080 or ${alca:HOST_IP}:8080",
        )
    return address, after[1:]


def _render_address(address: Address, *, bracket: bool) -> str:
    if isinstance(address, AlcaToken):
        return str(address)
    if address.prefixlen == address.max_prefixlen:
        text = str(address.network_address)
    else:
        text = str(address)
    if bracket and address.version == 6:
        return f"[{text}]"
    return text


def render_lan_rule(rule: LanRule) -> str:
    """Canonical text of a rule: `ADDR` for any protocol, else `PROTO://ADDR:PORT[-HI]`.

    The protocol and port are always written out, so the text says exactly what is allowed.
    """
    if rule.ports is None:
        return _render_address(rule.address, bracket=False)
    scheme = "*" if len(rule.protocols) == 2 else rule.protocols[0]
    lo, hi = rule.ports
    ports = str(lo) if lo == hi else f"{lo}-{hi}"
    return f"{scheme}://{_render_address(rule.address, bracket=True)}:{ports}"


def resolve_tokens(rule: LanRule, values: Mapping[str, IPAddress]) -> LanRule:
    """Replace a token address by the /32 or /128 network of its value."""
    if not isinstance(rule.address, AlcaToken):
        return rule
    value = resolved_address(rule.address, values, render_lan_rule(rule))
    return replace(rule, address=ipaddress.ip_network((value, value.max_prefixlen)))
