"""Whether an egress entry already allows what another would (`alca net allow` adds only
entries the configuration does not cover yet); parsing and rendering are the grammar's
(`alcatraz.config.netgrammar.parse_egress_rule`, `render_egress_rule`)."""

from __future__ import annotations

from alcatraz.config.netgrammar.egress import EgressRule


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
