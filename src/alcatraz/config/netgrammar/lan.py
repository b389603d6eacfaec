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

from alcatraz.config.netgrammar.addresses import IPAddress
from alcatraz.config.netgrammar.lexical import (
    PORT_MAX,
    PORT_MIN,
    GrammarError,
    check_text,
)
from alcatraz.config.netgrammar.parts import (
    check_protocols_and_ports,
    parse_network,
    port_range,
    render_network,
    split_scheme,
)
from alcatraz.config.netgrammar.tokens import AlcaToken, parse_token, resolved_address
from alcatraz.errors import quote

_ALL_PORTS: Final = (PORT_MIN, PORT_MAX)
_SCHEMES: Final = ("tcp", "udp", "*")

# The characters a rule can contain; anything else (such as `;`, quotes or `%`) is rejected
# before parsing.
_LAN_CHARS: Final = re.compile(r"[0-9A-Za-z.:/\[\]*${}_-]*")
_LAN_EXAMPLE: Final = '"192.168.1.10:8080", "udp://10.0.0.53:53" or "[fd00::1]:443"'

Address: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network | AlcaToken


def _network(
    text: str, whole: str, *, bracketed: bool
) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return parse_network(text, whole, bracketed=bracketed, example=_LAN_EXAMPLE)


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
        check_protocols_and_ports(self.protocols, self.ports, every="any")

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
    ports = None if port_text is None or port_text == "*" else port_range(port_text, text)
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
    return split_scheme(
        text,
        _SCHEMES,
        "use tcp:// or udp:// (or *:// for both), e.g. udp://10.0.0.53:53",
        "tcp://192.168.1.10:8080",
    )


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
    return render_network(address, bracket=bracket)


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
