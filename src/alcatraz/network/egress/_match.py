"""A minimal stand-in for `policy.connection_allowed` until that module lands (issue 15 is
built in parallel): the checker imports it from here, the integrator swaps the import."""

from __future__ import annotations

from collections.abc import Iterable

from alcatraz.config.netgrammar.egress import EgressRule


def connection_allowed(rules: Iterable[EgressRule], name: str, protocol: str, port: int) -> bool:
    """Whether some name entry lets `name` be reached over `protocol` on `port`."""
    return any(
        _name_matches(rule, name) and _service_matches(rule, protocol, port) for rule in rules
    )


def _name_matches(rule: EgressRule, name: str) -> bool:
    if rule.name is None:
        return False
    if rule.wildcard:
        return name.endswith("." + rule.name)
    return name == rule.name


def _service_matches(rule: EgressRule, protocol: str, port: int) -> bool:
    if rule.protocols and protocol not in rule.protocols:
        return False
    return rule.ports is None or rule.ports[0] <= port <= rule.ports[1]
