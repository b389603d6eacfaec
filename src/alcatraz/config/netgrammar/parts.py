"""The pieces lan-access and egress entries share: protocol prefix, port range, network.

Both grammars write `[PROTO://]ADDR[:PORT|:LO-HI]`; they differ in which prefixes they
accept and in their examples, which the callers pass in, so each error still shows a
correct example for the key it is about.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from typing import Final

from alcatraz.config.netgrammar.addresses import IPV4, IPAddress, parse_ipv4, parse_ipv6
from alcatraz.config.netgrammar.lexical import GrammarError, is_port_number, port_number, within
from alcatraz.errors import quote

_SCHEME_PREFIX: Final = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*|\*):(/*)")
_CIDR_EXAMPLE: Final = "write a CIDR like 192.168.1.0/24 or fd00::/8"
#: The protocol sets a rule can hold: every protocol, or TCP and/or UDP with a port range.
PROTOCOL_SETS: Final[tuple[tuple[str, ...], ...]] = ((), ("tcp",), ("udp",), ("tcp", "udp"))


def check_protocols_and_ports(
    protocols: tuple[str, ...], ports: tuple[int, int] | None, *, every: str
) -> None:
    """A rule's L4 part as its constructor must find it (lan-access and egress alike): `()`
    for every protocol with no ports, else TCP/UDP with a valid range. `every` words the
    first case in the caller's messages ("any", "every")."""
    if protocols not in PROTOCOL_SETS:
        raise ValueError(f"protocols must be one of {PROTOCOL_SETS}, not {protocols!r}")
    if protocols == ():
        if ports is not None:
            raise ValueError(f"a rule for {every} protocol cannot have ports")
    elif ports is None:
        raise ValueError("a rule restricted to tcp/udp needs a port range")
    else:
        lo, hi = ports
        if not (is_port_number(lo) and is_port_number(hi) and lo <= hi):
            raise ValueError(f"invalid port range {ports!r}")


def port_range(text: str, whole: str) -> tuple[int, int]:
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


def split_scheme(
    text: str, schemes: Sequence[str], unknown_hint: str, example: str
) -> tuple[str | None, str]:
    """Split a `PROTO://` prefix off `text`: (the protocol or None, the rest).

    `schemes` are the accepted protocols; an upper-case one, an unknown one or a prefix
    missing its `//` is an error (`unknown_hint` and `example` say what to write instead).
    """
    match = _SCHEME_PREFIX.match(text)
    if match is None:
        return None, text
    name, slashes = match.groups()
    if slashes == "//":
        if name in schemes:
            return name, text[match.end() :]
        if name.lower() in schemes:
            raise GrammarError(
                f"protocol {quote(name + '://')} in {quote(text)} must be lower case",
                f"write {quote(name.lower() + '://' + text[match.end() :])}",
            )
        expected = ", ".join(f"{s}://" for s in schemes[:-1]) + f" or {schemes[-1]}://"
        raise GrammarError(
            f"unknown protocol {quote(name)} in {quote(text)}: expected {expected}",
            unknown_hint,
        )
    if slashes or name.lower() in ("tcp", "udp"):
        raise GrammarError(
            f"malformed protocol prefix in {quote(text)}: expected '://' after the protocol",
            f"write it as tcp://ADDRESS[:PORT], e.g. {example}",
        )
    return None, text


def _prefix_length(text: str, cidr: str, whole: str, maximum: int) -> int:
    if not re.fullmatch(r"0|[1-9][0-9]{0,2}", text):
        raise GrammarError(
            f"invalid prefix length {quote(text)} of {within(cidr, whole)}: "
            f"expected a number from 0 to {maximum}",
            _CIDR_EXAMPLE,
        )
    value = int(text)
    if value > maximum:
        raise GrammarError(
            f"prefix length /{value} of {within(cidr, whole)} is out of range 0-{maximum}",
            _CIDR_EXAMPLE,
        )
    return value


def parse_network(
    text: str, whole: str, *, bracketed: bool, example: str
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
            f"missing address in {quote(whole)}", f"write an address, e.g. {example}"
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


def render_network(network: ipaddress.IPv4Network | ipaddress.IPv6Network, *, bracket: bool) -> str:
    """A single address without its /32 or /128; IPv6 in brackets when a port follows."""
    if network.prefixlen == network.max_prefixlen:
        text = str(network.network_address)
    else:
        text = str(network)
    if bracket and network.version == 6:
        return f"[{text}]"
    return text
