"""What `alca net allow` needs of the egress grammar: read an entry, render it, and tell
whether the configuration already allows it.

`parse_entry` is a MINIMAL LOCAL CHECK (names only, `tcp://`/`udp://`, `:port`, `:lo-hi`),
written while `alcatraz.config.netgrammar.parse_egress_rule` was being written in
parallel. REPLACE `parse_entry` and `render_entry` with `parse_egress_rule` and
`render_egress_rule` once they land: the full grammar also takes CIDRs, and its messages
are the ones the config loader shows.
"""

from __future__ import annotations

import re
from typing import Final

from alcatraz.config.netgrammar import GrammarError
from alcatraz.config.netgrammar.egress import EgressRule
from alcatraz.errors import quote

_ENTRY: Final = re.compile(
    r"(?:(?P<scheme>tcp|udp)://)?(?P<wild>\*\.)?(?P<name>[a-z0-9.-]+)"
    r"(?::(?P<lo>[0-9]{1,5})(?:-(?P<hi>[0-9]{1,5}))?)?"
)
_LABEL: Final = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_EXAMPLE: Final = "example.com, *.example.com:443 or tcp://git.example.com:22"


def parse_entry(text: str) -> EgressRule:
    """An egress entry naming a host (see the module docstring: to be replaced)."""
    if not text.isprintable():
        raise GrammarError(
            f"egress entry {quote(text)} holds control characters",
            f"write a host name, e.g. {_EXAMPLE}",
        )
    if not text.isascii():
        try:
            shown = text.encode("idna").decode("ascii")
        except UnicodeError:
            shown = "its punycode (xn--) form"
        raise GrammarError(
            f"egress entry {quote(text)} is not ASCII", f"write the name as {quote(shown)}"
        )
    if text != text.lower():
        raise GrammarError(
            f"egress entry {quote(text)} has upper-case letters",
            f"write it in lower case: {quote(text.lower())}",
        )
    match = _ENTRY.fullmatch(text)
    name = match.group("name") if match else ""
    labels = name.split(".")
    if match is None or len(name) > 253 or not all(_LABEL.fullmatch(x) for x in labels):
        raise GrammarError(
            f"egress entry {quote(text)} is not a host name with an optional port",
            f"write e.g. {_EXAMPLE} (addresses and CIDRs: edit .alca.toml yourself)",
        )
    if len(labels) < 2 or labels[-1].isdigit():
        raise GrammarError(
            f"egress entry {quote(text)} is not a domain name",
            f"write e.g. {_EXAMPLE}",
        )
    return EgressRule(name, bool(match.group("wild")), None, *_protocols(match, text))


def _protocols(match: re.Match[str], text: str) -> tuple[tuple[str, ...], tuple[int, int] | None]:
    scheme, low, high = match.group("scheme"), match.group("lo"), match.group("hi")
    if low is None:
        return ((scheme,), (1, 65535)) if scheme else ((), None)
    ports = (int(low), int(high or low))
    if not (1 <= ports[0] <= ports[1] <= 65535):
        raise GrammarError(
            f"egress entry {quote(text)} has an invalid port range",
            "ports go from 1 to 65535, low-high",
        )
    return ((scheme,) if scheme else ("tcp", "udp")), ports


def render_entry(rule: EgressRule) -> str:
    """The canonical text of a name entry (see the module docstring: to be replaced)."""
    text = ("*." if rule.wildcard else "") + str(rule.name or rule.network)
    if rule.ports is not None and rule.ports != (1, 65535):
        low, high = rule.ports
        text += f":{low}" if low == high else f":{low}-{high}"
    if len(rule.protocols) == 1:
        text = f"{rule.protocols[0]}://{text}"
    elif rule.ports == (1, 65535) and rule.protocols:  # both protocols, every port
        text += ":1-65535"
    return text


def covers(existing: EgressRule, wanted: EgressRule) -> bool:
    """Whether `existing` already allows everything `wanted` would."""
    if not _covers_destination(existing, wanted):
        return False
    if existing.protocols == ():
        return True
    if wanted.protocols == () or not set(wanted.protocols) <= set(existing.protocols):
        return False
    if existing.ports is None or wanted.ports is None:
        return existing.ports is None
    return existing.ports[0] <= wanted.ports[0] and wanted.ports[1] <= existing.ports[1]


def _covers_destination(existing: EgressRule, wanted: EgressRule) -> bool:
    if existing.network is not None and wanted.network is not None:
        if existing.network.version != wanted.network.version:
            return False
        return wanted.network.subnet_of(existing.network)  # type: ignore[arg-type]
    if existing.name is None or wanted.name is None:
        return False
    if existing.wildcard:
        return wanted.name.endswith("." + existing.name) or (
            wanted.wildcard and wanted.name == existing.name
        )
    return not wanted.wildcard and wanted.name == existing.name
