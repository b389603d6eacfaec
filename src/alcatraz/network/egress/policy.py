"""What the project's guard daemon enforces, and the pure decisions it makes from it.

The integrator writes a `DaemonPolicy` as JSON into the project's state dir and starts the
daemon with `--policy PATH`; the daemon reads it back here, strictly (a policy that does
not validate is refused whole rather than half applied). The nft set names live here so
that the rules renderer (`network.nft`) and the daemon cannot disagree about them.

Ports of an entry with a protocol and no port: 1-65535, as `lan-access` renders the same
case (`network.nft`); port 0 is no usable destination.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final

from alcatraz.config.netgrammar.egress import EgressRule, parse_egress_rule
from alcatraz.network.dnswire import split_host_port
from alcatraz.network.egress.rules import SetNames
from alcatraz.network.egress.rules import set_names as rules_set_names

VERSION: Final = 1
#: The nft table (family inet) whose sets the daemon fills.
TABLE: Final = "alcatraz"
EVERY_PORT: Final = (1, 65535)
_KEY = re.compile(r"[A-Za-z0-9_]{1,32}")
_IFNAME = re.compile(r"[A-Za-z0-9_.-]{1,15}")
_FIELDS: Final = (
    "version",
    "key",
    "interface",
    "listen",
    "mark",
    "egress",
    "checker_port",
    "upstreams",
    "ttl_min",
    "ttl_max",
    "events",
    "nft",
)


class PolicyError(ValueError):
    """The policy file is not one this daemon can enforce; the message names the field."""


def set_names(key: str) -> SetNames:
    """The project's sets, as `egress.rules` declares them (refused for an unusable key)."""
    if not _KEY.fullmatch(key):
        raise PolicyError(f"project key {key!r} is not usable in an nft set name")
    return rules_set_names(key)


@dataclass(frozen=True)
class DaemonPolicy:
    """The daemon's whole configuration (version 1 of the policy file)."""

    key: str
    interface: str
    listen: str
    mark: int  # SO_MARK of the daemon's sockets (0: none, for tests off the gateway)
    egress: tuple[str, ...] | None  # rendered entries; None = internet open, no filtering
    checker_port: int
    upstreams: tuple[str, ...]  # ADDR, ADDR:PORT, [V6]:PORT; empty = the host's resolv.conf
    ttl_min: int
    ttl_max: int
    events: str
    nft: tuple[str, ...]
    version: int = VERSION

    def to_json(self) -> str:
        data = asdict(self)
        for name in ("egress", "upstreams", "nft"):
            value = data[name]
            data[name] = None if value is None else list(value)
        return json.dumps({name: data[name] for name in _FIELDS}, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> DaemonPolicy:
        try:
            data = json.loads(text, parse_constant=_no_constant)
        except (ValueError, RecursionError) as error:
            raise PolicyError(f"the policy is not JSON: {error}") from None
        if not isinstance(data, dict):
            raise PolicyError("the policy must be a JSON object")
        missing = [name for name in _FIELDS if name not in data]
        unknown = sorted(set(data) - set(_FIELDS))
        if missing or unknown:
            raise PolicyError(f"policy fields missing: {missing}, unknown: {unknown}")
        if data["version"] != VERSION or type(data["version"]) is not int:
            raise PolicyError(f"policy version {data['version']!r} is not {VERSION}")
        policy = cls(
            key=_text(data, "key"),
            interface=_text(data, "interface"),
            listen=_text(data, "listen"),
            mark=_integer(data, "mark", 0, 2**32 - 1),
            egress=None if data["egress"] is None else _texts(data, "egress", empty=True),
            checker_port=_integer(data, "checker_port", 1, 65535),
            upstreams=_texts(data, "upstreams", empty=True),
            ttl_min=_integer(data, "ttl_min", 1, 2**31 - 1),
            ttl_max=_integer(data, "ttl_max", 1, 2**31 - 1),
            events=_text(data, "events"),
            nft=_texts(data, "nft", empty=False),
        )
        policy.validate()
        return policy

    def validate(self) -> None:
        """Raise PolicyError for values that are well typed but unusable."""
        set_names(self.key)
        if not _IFNAME.fullmatch(self.interface):
            raise PolicyError(f"policy interface {self.interface!r} is not an interface name")
        try:
            ipaddress.ip_address(self.listen)
        except ValueError:
            raise PolicyError(f"policy listen {self.listen!r} is not an IP address") from None
        if self.ttl_min > self.ttl_max:
            raise PolicyError(f"policy ttl_min {self.ttl_min} is above ttl_max {self.ttl_max}")
        if not self.events.startswith("/"):
            raise PolicyError(f"policy events {self.events!r} is not an absolute path")
        for upstream in self.upstreams:
            try:
                split_host_port(upstream)
            except ValueError as error:
                raise PolicyError(f"policy upstream {upstream!r}: {error}") from None
        self.rules()

    def rules(self) -> tuple[EgressRule, ...] | None:
        """The egress entries as rules (None: no filtering)."""
        if self.egress is None:
            return None
        rules: list[EgressRule] = []
        for entry in self.egress:
            try:
                rules.append(parse_egress_rule(entry))
            except ValueError as error:  # GrammarError is a ValueError too
                raise PolicyError(f"policy egress entry {entry!r}: {error}") from None
        return tuple(rules)

    def clamp_ttl(self, ttl: int) -> int:
        return max(self.ttl_min, min(self.ttl_max, ttl))


def _no_constant(word: str) -> Any:
    raise ValueError(f"{word} is not a number")


def _text(data: dict[str, Any], name: str) -> str:
    value = data[name]
    if not isinstance(value, str) or not value or "\0" in value:
        raise PolicyError(f"policy field {name!r} must be a non-empty string")
    return value


def _texts(data: dict[str, Any], name: str, *, empty: bool) -> tuple[str, ...]:
    value = data[name]
    if not isinstance(value, list) or (not value and not empty):
        raise PolicyError(f"policy field {name!r} must be a list of strings")
    return tuple(_text({name: item}, name) for item in value)


def _integer(data: dict[str, Any], name: str, low: int, high: int) -> int:
    value = data[name]
    if type(value) is not int or not low <= value <= high:
        raise PolicyError(f"policy field {name!r} must be an integer in {low}..{high}")
    return value


def _normal(name: str) -> str:
    name = name.lower()
    return name[:-1] if name.endswith(".") else name


def rules_for_name(rules: Iterable[EgressRule], name: str) -> list[EgressRule]:
    """The name entries that cover `name`: exact, or `*.x` for names strictly below x.

    `name` is presentation text (dnspython's): a backslash escapes a byte of a label, e.g.
    `a\\.example.com` is ONE label "a.example" under com, not below example.com. Entries
    are letters, digits and hyphens only, so an escaped name matches none of them.
    """
    wanted = _normal(name)
    if not wanted or "\\" in wanted:
        return []
    found: list[EgressRule] = []
    for rule in rules:
        if rule.name is None:
            continue
        below = wanted.endswith("." + rule.name)
        if below if rule.wildcard else wanted == rule.name:
            found.append(rule)
    return found


def name_allowed(rules: Iterable[EgressRule], name: str) -> bool:
    """Whether some entry names `name`, whatever its port (what DNS decides on)."""
    return bool(rules_for_name(rules, name))


def _protocols(rule: EgressRule) -> tuple[str, ...]:
    """The protocols a rule's ports apply to (a port without a prefix: tcp and udp)."""
    if rule.protocols:
        return rule.protocols
    return ("tcp", "udp") if rule.ports is not None else ()


def connection_allowed(rules: Iterable[EgressRule], name: str, protocol: str, port: int) -> bool:
    """Whether a connection presenting `name` to `protocol`/`port` is allowed by an entry."""
    for rule in rules_for_name(rules, name):
        protocols = _protocols(rule)
        low, high = rule.ports or EVERY_PORT
        if (not protocols or protocol in protocols) and (rule.ports is None or low <= port <= high):
            return True
    return False


Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def element_script(
    table: str,
    key: str,
    rules_matching: Sequence[EgressRule],
    addresses: Iterable[Address],
    ttl: int,
) -> str:
    """The nft transaction adding (or refreshing) `addresses` for the matching rules.

    Each set gets `add` (so the element exists), `delete`, `add` with the new timeout: the
    only way to refresh an element's timeout (an `add` of an existing element keeps it).
    """
    elements = set_elements(key, rules_matching, addresses)
    return "".join(refresh_lines(table, name, items, ttl) for name, items in elements.items())


def set_elements(
    key: str, rules_matching: Sequence[EgressRule], addresses: Iterable[Address]
) -> dict[str, list[str]]:
    """The elements, per set, that let `addresses` through for the matching rules.

    An entry with every protocol (no prefix, no port) puts the address in ea*, covering
    every other entry; else one ep* element per (address, protocol, port range).
    """
    names = set_names(key)
    every = any(not _protocols(rule) for rule in rules_matching)
    sets: dict[str, list[str]] = {}
    for address in dict.fromkeys(addresses):
        v = address.version
        if every:
            sets.setdefault(names.ea4 if v == 4 else names.ea6, []).append(str(address))
            continue
        for rule in rules_matching:
            low, high = rule.ports or EVERY_PORT
            ports = str(low) if low == high else f"{low}-{high}"
            for protocol in _protocols(rule):
                element = f"{address} . {protocol} . {ports}"
                target = sets.setdefault(names.ep4 if v == 4 else names.ep6, [])
                if element not in target:
                    target.append(element)
    return sets


def refresh_lines(table: str, set_name: str, elements: Sequence[str], ttl: int) -> str:
    """add/delete/add of `elements` in `inet table set_name` with timeout `ttl` seconds."""
    if not elements:
        return ""
    timed = ", ".join(f"{element} timeout {ttl}s" for element in elements)
    plain = ", ".join(elements)
    where = f"inet {table} {set_name}"
    return (
        f"add element {where} {{ {timed} }}\n"
        f"delete element {where} {{ {plain} }}\n"
        f"add element {where} {{ {timed} }}\n"
    )
