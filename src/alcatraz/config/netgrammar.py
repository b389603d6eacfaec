"""Grammar of the network settings: `lan-access` rules, published `ports` and the `proxy`.

Pure parsing, stdlib only, no I/O. The text parsed here ends up in an nft ruleset and in
container-engine arguments, so each grammar works from a whitelist of characters. Anything
unusual is rejected: no trimming, no guessing, no DNS. Each parser has a canonical renderer
whose output parses back to an equal value, so values can be stored as text and shown to
users without losing anything.

Differences from upstream (see the reference, §2.6-§2.9):
- lan-access also accepts a port range `ADDR:LO-HI` (an extension).
- Forms that upstream accepted but that are ambiguous or dangerous are rejected: CIDRs
  with host bits set, IPv4 literals with leading zeros or in short or hex forms,
  IPv4-mapped IPv6, IPv6 zone ids, upper-case protocol prefixes.
- A bracketed IPv6 proxy host parses (B8). The nft renderer handles the address family.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Final, Literal, TypeAlias

from alcatraz.errors import quote

__all__ = [
    "ALCA_TOKENS",
    "MAX_TEXT_LENGTH",
    "Address",
    "AlcaToken",
    "GrammarError",
    "IPAddress",
    "LanRule",
    "PortMapping",
    "ProxyAddress",
    "parse_lan_access",
    "parse_lan_rule",
    "parse_port",
    "parse_proxy",
    "port_from_object",
    "render_lan_rule",
    "render_port",
    "render_proxy",
    "resolve_proxy",
    "resolve_tokens",
]


class GrammarError(ValueError):
    """Invalid rule, port or proxy text.

    `message` says what is wrong and quotes the offending text. `hint` says how to fix it,
    with a correct example. The caller adds the file and key path.
    """

    def __init__(self, message: str, hint: str):
        super().__init__(message)
        self.message = message
        self.hint = hint


ALCA_TOKENS: Final = ("HOST_IP",)
"""Known `${alca:NAME}` tokens. Each stands for an address that is only known at `up` time."""

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_TEXT_LENGTH: Final = 256
"""Longer than any valid rule (about 70 characters), so a longer text is a mistake or an attack."""

_PORT_MIN: Final = 1
_PORT_MAX: Final = 65535
_ALL_PORTS: Final = (_PORT_MIN, _PORT_MAX)
_SCHEMES: Final = ("tcp", "udp", "*")
_PROTOCOL_SETS: Final[tuple[tuple[str, ...], ...]] = ((), ("tcp",), ("udp",), ("tcp", "udp"))

# Characters each grammar can contain. Anything else (such as `;`, quotes or `%`) is rejected
# before parsing.
_LAN_CHARS: Final = re.compile(r"[0-9A-Za-z.:/\[\]*${}_-]*")
_PORT_CHARS: Final = re.compile(r"[0-9A-Za-z.:/\[\]-]*")
_PROXY_CHARS: Final = re.compile(r"[0-9A-Za-z.:\[\]${}_-]*")
_HOST_IP_CHARS: Final = re.compile(r"[0-9A-Za-z.:\[\]-]*")

_DIGITS: Final = re.compile(r"[0-9]+")
_OCTET: Final = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_IPV4: Final = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")
_NUMERIC_LABEL: Final = re.compile(r"[0-9]+|0[xX][0-9A-Fa-f]*")
_HOSTNAME: Final = re.compile(
    r"(?=.*[A-Za-z])[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.?"
)
_SCHEME_PREFIX: Final = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*|\*):(/*)")
_TOKEN_NAME: Final = re.compile(r"[A-Za-z0-9_]+")

_LAN_EXAMPLE: Final = '"192.168.1.10:8080", "udp://10.0.0.53:53" or "[fd00::1]:443"'
_PORT_EXAMPLE: Final = '"8080:80", "127.0.0.1:8080:80/udp" or "[::1]:8080:80"'
_PROXY_EXAMPLE: Final = '"192.168.1.2:1080", "[fd00::2]:1080" or "${alca:HOST_IP}:1080"'


def _in(part: str, whole: str) -> str:
    """Quote `part`, and the whole text too when they differ, so each message says where."""
    return quote(whole) if part == whole else f"{quote(part)} in {quote(whole)}"


def _is_port_number(value: object) -> bool:
    return (
        isinstance(value, int) and not isinstance(value, bool) and _PORT_MIN <= value <= _PORT_MAX
    )


def _check_text(text: object, what: str, allowed: re.Pattern[str], example: str) -> str:
    """Reject non-strings, empty text, whitespace, control and foreign characters up front."""
    if not isinstance(text, str):
        raise GrammarError(
            f"{what} must be a string, not {type(text).__name__} {quote(text)}",
            f"write it as a quoted string, e.g. {example}",
        )
    if text == "":
        raise GrammarError(f"empty {what} {quote(text)}", f"write a value, e.g. {example}")
    if text.strip() == "":
        raise GrammarError(f"{what} {quote(text)} is blank", f"write a value, e.g. {example}")
    if any(c.isspace() for c in text):
        stripped = text.strip()
        if not any(c.isspace() for c in stripped):
            hint = f"remove the surrounding whitespace: {quote(stripped)}"
        else:
            hint = f"write it without spaces or line breaks, e.g. {example}"
        raise GrammarError(f"{what} {quote(text)} contains whitespace", hint)
    if not text.isprintable():
        raise GrammarError(
            f"{what} {quote(text)} contains a control character",
            f"remove it; a valid value looks like {example}",
        )
    if len(text) > MAX_TEXT_LENGTH:
        raise GrammarError(
            f"{what} {quote(text[:60] + '…')} is too long "
            f"({len(text)} characters, at most {MAX_TEXT_LENGTH})",
            f"write a single value, e.g. {example}",
        )
    if "%" in text:
        raise GrammarError(
            f"{what} {quote(text)} has an IPv6 zone id (%): zone ids are not supported",
            "remove the %zone part, or use a global or unique-local IPv6 address, e.g. fd00::1",
        )
    if not allowed.fullmatch(text):
        bad = next(c for c in text if not allowed.fullmatch(c))
        raise GrammarError(
            f"invalid character {quote(bad)} in {what} {quote(text)}",
            f"write only an address and port, e.g. {example}",
        )
    return text


# --- numbers ---------------------------------------------------------------------------------


def _port_number(text: str, whole: str, label: str = "port") -> int:
    """A decimal port 1-65535 with no sign, no leading zeros and no spaces."""
    if text == "":
        raise GrammarError(
            f"missing {label} in {quote(whole)}",
            "write a number from 1 to 65535 after the ':', e.g. 192.168.1.10:8080",
        )
    if not _DIGITS.fullmatch(text):
        raise GrammarError(
            f"invalid {label} {_in(text, whole)}: expected a number from 1 to 65535",
            "write the port in decimal digits, e.g. 8080",
        )
    if len(text) > 1 and text.startswith("0"):
        value = int(text)
        fix = f"write {value}" if _PORT_MIN <= value <= _PORT_MAX else "write a number"
        raise GrammarError(
            f"invalid {label} {_in(text, whole)}: leading zeros are not allowed",
            f"{fix} without leading zeros (1 to 65535)",
        )
    value = int(text) if len(text) <= 6 else _PORT_MAX + 1
    if not _PORT_MIN <= value <= _PORT_MAX:
        raise GrammarError(
            f"{label} {text} in {quote(whole)} is out of range: expected a number from 1 to 65535",
            "use a port from 1 to 65535, e.g. 8080",
        )
    return value


def _port_range(text: str, whole: str) -> tuple[int, int]:
    """`N` or `LO-HI` (inclusive, LO <= HI)."""
    lo_text, sep, hi_text = text.partition("-")
    if not sep or lo_text == "":
        value = _port_number(text, whole)
        return (value, value)
    lo = _port_number(lo_text, whole)
    hi = _port_number(hi_text, whole)
    if lo > hi:
        raise GrammarError(
            f"port range {quote(text)} in {quote(whole)} is reversed",
            f"write the lower port first: {hi}-{lo}",
        )
    return (lo, hi)


def _prefix_length(text: str, cidr: str, whole: str, maximum: int) -> int:
    if not re.fullmatch(r"0|[1-9][0-9]{0,2}", text):
        raise GrammarError(
            f"invalid prefix length {quote(text)} of {_in(cidr, whole)}: "
            f"expected a number from 0 to {maximum}",
            "write a CIDR like 192.168.1.0/24 or fd00::/8",
        )
    value = int(text)
    if value > maximum:
        raise GrammarError(
            f"prefix length /{value} of {_in(cidr, whole)} is out of range 0-{maximum}",
            "write a CIDR like 192.168.1.0/24 or fd00::/8",
        )
    return value


# --- addresses -------------------------------------------------------------------------------


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
            f"invalid IPv4 address {_in(text, whole)}: {reason}",
            "write four decimal numbers from 0 to 255 without leading zeros, e.g. 192.168.1.10",
        )
    if _HOSTNAME.fullmatch(text):
        return GrammarError(
            f"{what} {_in(text, whole)} must be an IP address, not a hostname",
            "write the IP address (names are not resolved when the configuration is read), "
            "e.g. 192.168.1.10",
        )
    return GrammarError(
        f"invalid address {_in(text, whole)}: expected an IPv4 or IPv6 address",
        "write an address like 192.168.1.10 or fd00::1, or a CIDR like 192.168.1.0/24",
    )


def _ipv4(text: str, whole: str, what: str = "address") -> ipaddress.IPv4Address:
    """A dotted-quad IPv4 literal: exactly four decimal octets, no leading zeros."""
    if not _IPV4.fullmatch(text):
        raise _ipv4_error(text, whole, what)
    return ipaddress.IPv4Address(text)


def _ipv6(text: str, whole: str, *, allow_mapped: bool = False) -> ipaddress.IPv6Address:
    """An IPv6 literal without a zone id and, unless allowed, not IPv4-mapped."""
    try:
        address = ipaddress.IPv6Address(text)
    except ValueError:
        raise GrammarError(
            f"invalid IPv6 address {_in(text, whole)}",
            "write an IPv6 address like fd00::1; to add a port, put the address in brackets: "
            "[fd00::1]:8080",
        ) from None
    if address.scope_id is not None:  # unreachable after the character check; kept as a guard
        raise GrammarError(
            f"invalid address {_in(text, whole)}: IPv6 zone ids are not supported",
            "remove the %zone part, e.g. fd00::1",
        )
    if address.ipv4_mapped is not None and not allow_mapped:
        raise GrammarError(
            f"invalid address {_in(text, whole)}: IPv4-mapped IPv6 addresses are not allowed",
            f"write the IPv4 form instead: {address.ipv4_mapped}",
        )
    return address


def _ip(text: str, whole: str, what: str) -> IPAddress:
    return _ipv6(text, whole) if ":" in text else _ipv4(text, whole, what)


def _network(
    text: str, whole: str, *, bracketed: bool
) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """An address (a /32 or /128 network) or a CIDR whose host bits are all zero."""
    host_text, slash, prefix_text = text.partition("/")
    if "/" in prefix_text:
        raise GrammarError(
            f"invalid CIDR {_in(text, whole)}: more than one '/'",
            "write a single prefix length, e.g. 10.0.0.0/8",
        )
    if host_text == "":
        raise GrammarError(
            f"missing address in {quote(whole)}", f"write an address, e.g. {_LAN_EXAMPLE}"
        )
    address: IPAddress
    if bracketed and ":" not in host_text:
        if _IPV4.fullmatch(host_text):
            raise GrammarError(
                f"invalid address {_in(text, whole)}: brackets are only for IPv6",
                f"remove the brackets, e.g. {text}:8080",
            )
        raise GrammarError(
            f"invalid IPv6 address {_in(host_text, whole)}",
            "write an IPv6 address in the brackets, e.g. [fd00::1]:8080",
        )
    # The IPv4-mapped check of a CIDR is done on the network, so its hint can be a CIDR.
    if ":" in host_text:
        address = _ipv6(host_text, whole, allow_mapped=bool(slash))
    else:
        address = _ipv4(host_text, whole)
    if not slash:
        return ipaddress.ip_network((address, address.max_prefixlen))
    prefix = _prefix_length(prefix_text, text, whole, address.max_prefixlen)
    try:
        network = ipaddress.ip_network((address, prefix), strict=True)
    except ValueError:
        loose = ipaddress.ip_network((address, prefix), strict=False)
        raise GrammarError(
            f"invalid CIDR {_in(text, whole)}: host bits are set (its network is {loose})",
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
            f"invalid network {_in(text, whole)}: IPv4-mapped IPv6 networks are not allowed",
            f"write the IPv4 form instead: {v4}",
        )


# --- ${alca:NAME} tokens ---------------------------------------------------------------------


@dataclass(frozen=True)
class AlcaToken:
    """An unresolved `${alca:NAME}` that stands for an address known only at `up` time."""

    name: str

    def __post_init__(self) -> None:
        if self.name not in ALCA_TOKENS:
            raise ValueError(f"unknown alca token {self.name!r}")

    def __str__(self) -> str:
        return f"${{alca:{self.name}}}"


Address: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network | AlcaToken


def _token(text: str, whole: str) -> tuple[AlcaToken, str]:
    """Parse a `${alca:NAME}` at the start of `text`; return it and the text after it."""
    valid = ", ".join(ALCA_TOKENS)
    if not text.startswith("${"):
        raise GrammarError(
            f"unexpected '$' in {quote(whole)}",
            "write a token as ${alca:HOST_IP}, or write the IP address",
        )
    end = text.find("}")
    if end < 0:
        raise GrammarError(
            f"unterminated token {_in(text, whole)}: missing '}}'",
            "close the token with '}', e.g. ${alca:HOST_IP}:8080",
        )
    body = text[2:end]
    written = text[: end + 1]
    if not body.startswith("alca:"):
        if body.lower().startswith("alca:"):
            hint = f"write the prefix in lower case: ${{alca:{body[5:]}}}"
        else:
            hint = (
                "environment variables are not expanded here; write ${alca:HOST_IP} for the "
                "host as seen from the container, or write the IP address"
            )
        raise GrammarError(f"{_in(written, whole)} is not an alca token", hint)
    name = body[5:]
    if not _TOKEN_NAME.fullmatch(name):
        raise GrammarError(
            f"invalid alca token syntax {_in(written, whole)}: "
            "a name is letters, digits and underscores",
            f"use one of the valid tokens: {valid}, e.g. ${{alca:HOST_IP}}",
        )
    if name not in ALCA_TOKENS:
        if name.upper() in ALCA_TOKENS:
            hint = f"token names are upper case: write ${{alca:{name.upper()}}}"
        else:
            hint = f"use one of the valid tokens: {valid}, e.g. ${{alca:HOST_IP}}"
        raise GrammarError(
            f"unknown alca token {quote(name)} in {quote(whole)}; valid tokens: {valid}", hint
        )
    return AlcaToken(name), text[end + 1 :]


def _resolved_address(token: AlcaToken, values: Mapping[str, IPAddress], whole: str) -> IPAddress:
    value = values.get(token.name)
    if value is None:
        raise GrammarError(
            f"no value for {token} in {quote(whole)}",
            f"make sure alca can find the address {token} stands for "
            "(the container engine's bridge gateway), or write the IP address",
        )
    if not isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        raise TypeError(f"value of {token} must be an IP address, not {type(value).__name__}")
    if isinstance(value, ipaddress.IPv6Address) and (
        value.scope_id is not None or value.ipv4_mapped is not None
    ):
        raise GrammarError(
            f"{token} resolved to {quote(str(value))}, which cannot be used in a rule",
            "write the IP address instead of the token",
        )
    return value


# --- lan-access ------------------------------------------------------------------------------


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
            if not (_is_port_number(lo) and _is_port_number(hi) and lo <= hi):
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
    _check_text(text, "lan-access rule", _LAN_CHARS, _LAN_EXAMPLE)
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
        address, after = _token(rest, whole)
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
    value = _resolved_address(rule.address, values, render_lan_rule(rule))
    return replace(rule, address=ipaddress.ip_network((value, value.max_prefixlen)))


# --- ports -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PortMapping:
    """One published port. The constructor checks the values, so every mapping renders."""

    container_port: int
    host_port: int
    host_ip: IPAddress | None  # None = all interfaces
    protocol: str  # "tcp" | "udp"

    def __post_init__(self) -> None:
        for name in ("container_port", "host_port"):
            if not _is_port_number(getattr(self, name)):
                raise ValueError(f"{name} must be 1-65535, not {getattr(self, name)!r}")
        if self.protocol not in ("tcp", "udp"):
            raise ValueError(f"protocol must be tcp or udp, not {self.protocol!r}")
        ip = self.host_ip
        if isinstance(ip, ipaddress.IPv6Address):
            if ip.scope_id is not None or ip.ipv4_mapped is not None:
                raise ValueError(f"unsupported host IP {ip}")
        elif ip is not None and not isinstance(ip, ipaddress.IPv4Address):
            raise TypeError(f"host_ip must be an IP address or None, not {ip!r}")

    def docker_arg(self) -> str:
        """The value of `-p`: `[ip:]hostPort:port[/udp]`; brackets for IPv6; no `/tcp`."""
        if self.host_ip is None:
            ip = ""
        elif self.host_ip.version == 6:
            ip = f"[{self.host_ip}]:"
        else:
            ip = f"{self.host_ip}:"
        suffix = "/udp" if self.protocol == "udp" else ""
        return f"{ip}{self.host_port}:{self.container_port}{suffix}"


def _port_protocol(text: str, whole: str) -> str:
    if text in ("tcp", "udp"):
        return text
    if text == "":
        raise GrammarError(
            f"missing protocol after '/' in {quote(whole)}",
            "write /tcp or /udp, or nothing for tcp, e.g. 8080:80/udp",
        )
    if text.lower() in ("tcp", "udp"):
        raise GrammarError(
            f"protocol {quote(text)} in {quote(whole)} must be lower case",
            f"write /{text.lower()}, e.g. 8080:80/{text.lower()}",
        )
    raise GrammarError(
        f"unknown protocol {quote(text)} in {quote(whole)}: expected tcp or udp",
        "write /tcp or /udp, or nothing for tcp, e.g. 8080:80/udp",
    )


def parse_port(text: str) -> PortMapping:
    """Parse `[hostIp:]hostPort:containerPort[/tcp|udp]` or `containerPort[/tcp|udp]`.

    `containerPort` alone publishes on the same host port (not a random one), like the table
    form. An IPv6 host IP must be in brackets: `[::1]:8080:80`.
    """
    _check_text(text, "port mapping", _PORT_CHARS, _PORT_EXAMPLE)
    body, slash, proto_text = text.rpartition("/")
    if not slash:
        body, protocol = text, "tcp"
    else:
        protocol = _port_protocol(proto_text, text)
        if "/" in body:
            raise GrammarError(
                f"more than one '/' in {quote(text)}",
                "give one protocol at the end, e.g. 8080:80/udp",
            )
    if body == "":
        raise GrammarError(
            f"missing port in {quote(text)}", f"write the ports, e.g. {_PORT_EXAMPLE}"
        )
    host_ip: IPAddress | None = None
    if body.startswith("["):
        end = body.find("]")
        if end < 0:
            raise GrammarError(
                f"missing ']' in {quote(text)}", "close the IPv6 address: [::1]:8080:80"
            )
        inside = body[1:end]
        if ":" not in inside:
            raise GrammarError(
                f"host IP {_in(inside, text)} is inside brackets: brackets are only for IPv6",
                f"remove the brackets, e.g. {inside}:8080:80",
            )
        host_ip = _ipv6(inside, text)
        after = body[end + 1 :]
        parts = after[1:].split(":") if after.startswith(":") else []
        if len(parts) != 2:
            raise GrammarError(
                f"invalid port mapping {quote(text)}: expected [IPv6]:hostPort:containerPort",
                "write the host port and the container port after the address: [::1]:8080:80",
            )
        host_text, container_text = parts
    else:
        if "[" in body or "]" in body:
            raise GrammarError(
                f"misplaced bracket in {quote(text)}",
                "brackets enclose an IPv6 host IP at the start, e.g. [::1]:8080:80",
            )
        parts = body.split(":")
        if len(parts) > 3:
            raise GrammarError(
                f"too many colons in {quote(text)}",
                "write an IPv6 host IP in brackets, e.g. [::1]:8080:80",
            )
        if len(parts) == 3:
            ip_text, host_text, container_text = parts
            if ip_text == "":
                raise GrammarError(
                    f"missing host IP before ':' in {quote(text)}",
                    "write the host IP, or leave it out to listen on all interfaces: 8080:80",
                )
            host_ip = _ipv4(ip_text, text, "host IP")
        elif len(parts) == 2:
            host_text, container_text = parts
        else:
            host_text = container_text = parts[0]
    container_port = _port_number(container_text, text, "container port")
    host_port = _port_number(host_text, text, "host port")
    return PortMapping(container_port, host_port, host_ip, protocol)


def port_from_object(
    port: int, host_port: int | None = None, host_ip: str = "", protocol: str = "tcp"
) -> PortMapping:
    """Build a mapping from the table form `{port, hostPort, hostIp, protocol}`.

    hostPort defaults to port; hostIp "" means all interfaces and may be a bare IPv6.
    """
    where = f"port {quote(port)}" if not _is_port_number(port) else f"port {port}"
    for label, value in (("port", port), ("hostPort", host_port)):
        if label == "hostPort" and value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise GrammarError(
                f"{label} must be a number from 1 to 65535, not {quote(value)}",
                f"write it as a bare number, e.g. {{ {label} = 8080 }}",
            )
        if not _is_port_number(value):
            raise GrammarError(
                f"{label} {value} is out of range: expected a number from 1 to 65535",
                f"use a port from 1 to 65535, e.g. {{ {label} = 8080 }}",
            )
    if not isinstance(host_ip, str):
        raise GrammarError(
            f"hostIp of {where} must be a string, not {quote(host_ip)}",
            'write an IP address in quotes, e.g. hostIp = "127.0.0.1"',
        )
    if not isinstance(protocol, str) or protocol not in ("tcp", "udp"):
        hint = 'write protocol = "tcp" or protocol = "udp"'
        if isinstance(protocol, str) and protocol.lower() in ("tcp", "udp"):
            hint = f'protocol names are lower case: protocol = "{protocol.lower()}"'
        raise GrammarError(
            f"unknown protocol {quote(protocol)} of {where}: expected tcp or udp", hint
        )
    ip: IPAddress | None = None
    if host_ip != "":
        text = _check_text(host_ip, "hostIp", _HOST_IP_CHARS, '"127.0.0.1"')
        if text.startswith("[") and text.endswith("]") and ":" in text:
            text = text[1:-1]
        ip = _ip(text, host_ip, "hostIp")
    return PortMapping(port, port if host_port is None else host_port, ip, protocol)


def render_port(m: PortMapping) -> str:
    """Canonical string form; the same text as the `-p` value."""
    return m.docker_arg()


# --- proxy -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProxyAddress:
    """Where outgoing TCP is redirected. The constructor rejects hosts no proxy can be on."""

    host: IPAddress | AlcaToken
    port: int

    def __post_init__(self) -> None:
        host = self.host
        if isinstance(host, ipaddress.IPv4Address | ipaddress.IPv6Address):
            reason = _unusable_proxy_host(host)
            if reason:
                raise ValueError(f"proxy host {host} is {reason}")
        elif not isinstance(host, AlcaToken):
            raise TypeError(f"host must be an IP address or AlcaToken, not {host!r}")
        if not _is_port_number(self.port):
            raise ValueError(f"port must be 1-65535, not {self.port!r}")

    @property
    def family(self) -> int | None:
        """4 or 6, or None for a token."""
        return None if isinstance(self.host, AlcaToken) else self.host.version


def _unusable_proxy_host(host: IPAddress) -> str | None:
    if host.is_unspecified:
        return "unspecified"
    if host.is_multicast:
        return "a multicast address"
    if host.is_loopback:
        # Inside the sandbox, loopback is the container itself: redirected traffic would vanish.
        return "a loopback address (inside the sandbox it is the container itself)"
    if isinstance(host, ipaddress.IPv6Address):
        if host.scope_id is not None:
            return "scoped (zone ids are not supported)"
        if host.ipv4_mapped is not None:
            return "IPv4-mapped"
    return None


def parse_proxy(text: str) -> ProxyAddress:
    """Parse `host:port` with host an IPv4 literal, `[IPv6]` or `${alca:HOST_IP}`."""
    _check_text(text, "proxy address", _PROXY_CHARS, _PROXY_EXAMPLE)
    expected = GrammarError(
        f"invalid proxy address {quote(text)}: expected host:port",
        f"add the port, e.g. {_PROXY_EXAMPLE}",
    )
    host: IPAddress | AlcaToken
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise GrammarError(
                f"missing ']' in proxy address {quote(text)}", "close it: [fd00::2]:1080"
            )
        inside = text[1:end]
        if ":" not in inside:
            raise GrammarError(
                f"proxy host {_in(inside, text)} is inside brackets: brackets are only for IPv6",
                f"remove the brackets, e.g. {inside}{text[end + 1 :] or ':1080'}",
            )
        host = _ipv6(inside, text)
        after = text[end + 1 :]
    elif text.startswith("$"):
        host, after = _token(text, text)
    else:
        colons = text.count(":")
        if colons == 0:
            raise expected
        if colons > 1:
            raise GrammarError(
                f"invalid proxy address {quote(text)}: an IPv6 host must be in brackets",
                "write [IPv6]:port, e.g. [fd00::2]:1080",
            )
        host_text, _, port_text = text.partition(":")
        if host_text == "":
            raise GrammarError(
                f"invalid proxy address {quote(text)}: missing host before ':'",
                f"write host:port, e.g. {_PROXY_EXAMPLE}",
            )
        host = _ipv4(host_text, text, "host")
        after = ":" + port_text
    if after == "":
        raise expected
    if not after.startswith(":"):
        raise GrammarError(
            f"unexpected {quote(after)} in proxy address {quote(text)}",
            f"only ':PORT' may follow the host, e.g. {_PROXY_EXAMPLE}",
        )
    port = _port_number(after[1:], text)
    if not isinstance(host, AlcaToken):
        _check_proxy_host(host, text)
    return ProxyAddress(host, port)


def _check_proxy_host(host: IPAddress, whole: str) -> None:
    reason = _unusable_proxy_host(host)
    if reason:
        raise GrammarError(
            f"invalid proxy address {quote(whole)}: host {host} is {reason}",
            "write the address the proxy listens on, e.g. 192.168.1.2:1080 or ${alca:HOST_IP}:1080",
        )


def render_proxy(p: ProxyAddress) -> str:
    """Canonical `host:port`, with IPv6 in brackets."""
    if isinstance(p.host, ipaddress.IPv6Address):
        return f"[{p.host}]:{p.port}"
    return f"{p.host}:{p.port}"


def resolve_proxy(p: ProxyAddress, values: Mapping[str, IPAddress]) -> ProxyAddress:
    """Replace a token host by its value."""
    if not isinstance(p.host, AlcaToken):
        return p
    value = _resolved_address(p.host, values, render_proxy(p))
    _check_proxy_host(value, render_proxy(p))
    return replace(p, host=value)
