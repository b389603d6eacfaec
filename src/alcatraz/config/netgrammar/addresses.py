"""IP address literals as the network grammars accept them: strict, unambiguous forms only.

Shared by lan-access rules, published ports and the proxy. IPv4 is four decimal octets
(no leading zeros, short or hex forms, which some tools read differently); IPv6 has no
zone id and is not IPv4-mapped. A name is refused with a hint: nothing here resolves DNS.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Final, TypeAlias

from alcatraz.config.netgrammar.lexical import GrammarError, within

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address

_OCTET: Final = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
IPV4: Final = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")
_NUMERIC_LABEL: Final = re.compile(r"[0-9]+|0[xX][0-9A-Fa-f]*")
_HOSTNAME: Final = re.compile(
    r"(?=.*[A-Za-z])[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.?"
)


def _ipv4_error(text: str, whole: str, what: str) -> GrammarError:
    """Explain why `text`, which has no ':', is not an IPv4 literal."""
    labels = text.split(".")
    if text and all(_NUMERIC_LABEL.fullmatch(label) for label in labels):
        if any(label[:2] in ("0x", "0X") for label in labels):
            reason = "hexadecimal forms are not allowed"
        elif len(labels) != 4:
            reason = "expected four decimal numbers separated by dots"
        elif any(len(label) > 1 and label.startswith("0") for label in labels):
            reason = "leading zeros are not allowed (some tools read them as octal)"
        else:
            reason = "each of the four numbers must be from 0 to 255"
        return GrammarError(
            f"invalid IPv4 address {within(text, whole)}: {reason}",
            "write four decimal numbers from 0 to 255 without leading zeros, e.g. 192.168.1.10",
        )
    if _HOSTNAME.fullmatch(text):
        return GrammarError(
            f"{what} {within(text, whole)} must be an IP address, not a hostname",
            "write the IP address (names are not resolved when the configuration is read), "
            "e.g. 192.168.1.10",
        )
    return GrammarError(
        f"invalid address {within(text, whole)}: expected an IPv4 or IPv6 address",
        "write an address like 192.168.1.10 or fd00::1, or a CIDR like 192.168.1.0/24",
    )


def parse_ipv4(text: str, whole: str, what: str = "address") -> ipaddress.IPv4Address:
    """A dotted-quad IPv4 literal: exactly four decimal octets, no leading zeros."""
    if not IPV4.fullmatch(text):
        raise _ipv4_error(text, whole, what)
    return ipaddress.IPv4Address(text)


def parse_ipv6(text: str, whole: str, *, allow_mapped: bool = False) -> ipaddress.IPv6Address:
    """An IPv6 literal without a zone id and, unless allowed, not IPv4-mapped."""
    try:
        address = ipaddress.IPv6Address(text)
    except ValueError:
        raise GrammarError(
            f"invalid IPv6 address {within(text, whole)}",
            "write an IPv6 address like fd00::1; to add a port, put the address in brackets: "
            "[fd00::1]:8080",
        ) from None
    if address.scope_id is not None:  # unreachable after the character check; kept as a guard
        raise GrammarError(
            f"invalid address {within(text, whole)}: IPv6 zone ids are not supported",
            "remove the %zone part, e.g. fd00::1",
        )
    if address.ipv4_mapped is not None and not allow_mapped:
        raise GrammarError(
            f"invalid address {within(text, whole)}: IPv4-mapped IPv6 addresses are not allowed",
            f"write the IPv4 form instead: {address.ipv4_mapped}",
        )
    return address


def parse_ip(text: str, whole: str, what: str) -> IPAddress:
    """An IPv6 literal if `text` has a ':', else an IPv4 one."""
    return parse_ipv6(text, whole) if ":" in text else parse_ipv4(text, whole, what)
