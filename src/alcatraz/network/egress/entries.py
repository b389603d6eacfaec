"""Reading back the egress entries the policy file holds (rendered by the config side).

LOCAL STAND-IN: `parse_rendered_entry` reads the canonical form `render_egress_rule` writes,
for as long as `alcatraz.config.netgrammar.egress.parse_egress_rule` is missing (it is
written in parallel); `DaemonPolicy.rules` prefers the real parser whenever it exists.
Entries reach the daemon already validated by the config loader, so this parse is strict
but gives short messages.
"""

from __future__ import annotations

import ipaddress
import re

from alcatraz.config.netgrammar.egress import EgressRule

_NAME = re.compile(r"(\*\.)?[a-z0-9-]+(\.[a-z0-9-]+)*")
_PORTS = re.compile(r"([0-9]{1,5})(?:-([0-9]{1,5}))?")


def ports_of(text: str) -> tuple[int, int]:
    """`443` or `22-23` → (low, high) within 1-65535."""
    match = _PORTS.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a port or a port range")
    low = int(match.group(1))
    high = int(match.group(2) or low)
    if not 1 <= low <= high <= 65535:
        raise ValueError(f"{text!r} is not a port range within 1-65535")
    return low, high


def parse_rendered_entry(text: str) -> EgressRule:
    """An `EgressRule` from its canonical text (`udp://x.test:53`, `[2001:db8::/32]:443`)."""
    rest = text
    protocols: tuple[str, ...] = ()
    for prefix in ("tcp", "udp"):
        if rest.startswith(prefix + "://"):
            protocols, rest = (prefix,), rest[len(prefix) + 3 :]
    if rest.startswith("["):
        inner, bracket, after = rest[1:].partition("]")
        if not bracket or not after.startswith(":"):
            raise ValueError("a bracketed IPv6 network needs a port after it")
        host, port_text = inner, after[1:]
    elif rest.count(":") == 1:
        host, port_text = rest.split(":")
    else:
        host, port_text = rest, ""
    ports = ports_of(port_text) if port_text else None
    if ports is not None and not protocols:
        protocols = ("tcp", "udp")
    try:
        network = ipaddress.ip_network(host)
    except ValueError:
        network = None
    if network is not None:
        return EgressRule(None, False, network, protocols, ports)
    if not _NAME.fullmatch(host):
        raise ValueError(f"{host!r} is neither a network nor a lower-case name")
    wildcard = host.startswith("*.")
    return EgressRule(host.removeprefix("*."), wildcard, None, protocols, ports)
