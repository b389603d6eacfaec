"""Isolation as the kernel has it now, for `status` and `net log` (reads only)."""

from __future__ import annotations

import ipaddress
import os
import sys
from datetime import UTC, datetime
from typing import Any

from alcatraz.app import App
from alcatraz.config.load import Config
from alcatraz.errors import AlcaError
from alcatraz.network import nft
from alcatraz.network.egress.events import events_path, read_events
from alcatraz.network.firewall import Firewall, TableState
from alcatraz.network.plan import Policy, ProjectNetwork
from alcatraz.sandbox.guard import in_namespace_of, policy_for
from alcatraz.statefile import IsolationRecord


def report(
    app: App, config: Config, project_id: str, record: IsolationRecord | None, pid: int = 0
) -> dict[str, Any]:
    """Isolation as the kernel has it now, for `status` and `net log`.

    `state` is one of: off, enabled, outdated (rules of an older config), missing, none
    (no sandbox network yet); `lan: "all"`: `["*"]` with a proxy, whose rules the state is
    of. With the running container's `pid`, the blocked packets and destinations include
    what the second layer in its namespace dropped first.
    """
    if record is None:
        return {"state": "none"}
    result: dict[str, Any] = {
        "network": record.network,
        "interface": record.interface,
        "subnet": record.subnet,
        "gateway": record.gateway,
    }
    if record.allow_all and not config.proxy:
        return {**result, "state": "off"}
    if record.allow_all:  # a proxy's rules, nothing isolated
        result["lan"] = "all"
    command = list(record.nft or ())
    if not command:
        return {**result, "state": "missing"}
    fw = Firewall(app.runner, command)
    policy = _expected_policy(project_id, record, config)
    table = fw.read_project(policy.key, interface=policy.network.interface, seen=True)
    network = policy.network
    fwd, inp, _ = nft.chain_names(policy.key)
    seen4, seen6 = nft.seen_sets(policy.key)
    if fw.verify(policy, table):
        state = "enabled"
    elif table.dispatch.get("fwd_dispatch", {}).get(network.interface) == fwd and table.tags.get(
        fwd, ""
    ).startswith(f"alcatraz {policy.key} "):
        state = "outdated"  # our rules, from another configuration
    else:
        state = "missing"  # deleted, flushed or never loaded
    blocked = table.counters.get(fwd, 0) + table.counters.get(inp, 0)
    packets: dict[str, int] = {}
    for address, count in table.seen.get(seen4, []) + table.seen.get(seen6, []):
        packets[address] = packets.get(address, 0) + count
    inside = _guard_state(app, command, pid)
    if inside is not None:
        blocked += inside.counters.get("output", 0)
        for address, count in inside.seen.get("seen4", []) + inside.seen.get("seen6", []):
            packets[address] = packets.get(address, 0) + count
    seen = sorted(packets.items(), key=lambda item: -item[1])
    return {
        **result,
        "state": state,
        "blocked": blocked,
        "destinations": [{"address": a, "packets": p} for a, p in seen],
    }


def _expected_policy(project_id: str, record: IsolationRecord, config: Config) -> Policy:
    """The policy `up` would load now on the recorded network (with the project's daemon
    when the record has one: its rules differ)."""
    network = ProjectNetwork(
        record.network,
        record.interface,
        ipaddress.IPv4Network(str(record.subnet)),
        ipaddress.IPv4Address(str(record.gateway)),
    )
    daemon = record.resolver is not None and bool(record.resolver.policy)
    return policy_for(project_id, network, config, own_resolver=daemon)


def _guard_state(app: App, command: list[str], pid: int) -> TableState | None:
    """The second layer's table in the sandbox's namespace, when it can be read here."""
    if pid <= 0 or sys.platform != "linux" or os.geteuid() != 0:
        return None
    if app.environ.get("ALCA_FIREWALL") == "helper":
        return None
    try:
        table = in_namespace_of(app, pid, command).read(nft.GUARD_TABLE)
    except AlcaError:
        return None
    return table if table.exists else None


def egress_report(state_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """What the project's egress daemon refused, from its events file, for `net log`.

    `refused_names`: names the resolver refused (per name: count, first, last, query
    types); `refused_connections`: connections the name checker reset (per name, address
    and port); `resolved`: address -> names that resolved to it, to join with the refused
    addresses. Names are as the sandbox sent them: escape them before printing.
    """
    names: dict[str, dict[str, Any]] = {}
    connections: dict[tuple[str, str, int], dict[str, Any]] = {}
    resolved: dict[str, set[str]] = {}
    for event in read_events(events_path(state_dir)):
        if event.kind == "dns-refused":
            entry = _tally(names, event.name, event.time, name=event.name, qtypes=[])
            if event.qtype and event.qtype not in entry["qtypes"] and len(entry["qtypes"]) < 8:
                entry["qtypes"].append(event.qtype)
        elif event.kind == "check-refused":
            key = (event.name, event.address, event.port)
            fields = {"name": event.name, "address": event.address, "port": event.port}
            _tally(connections, key, event.time, **fields, why=event.why)
        else:
            for address in event.addresses:
                resolved.setdefault(_canonical(address), set()).add(event.name)
    return {
        "refused_names": _by_last(names),
        "refused_connections": _by_last(connections),
        "resolved": {address: sorted(found) for address, found in resolved.items()},
    }


def _tally(table: dict[Any, dict[str, Any]], key: Any, moment: float, **fields: Any) -> Any:
    """Count one more event under `key`, keeping the first and last times."""
    entry = table.get(key)
    if entry is None:
        entry = table[key] = {**fields, "count": 0, "first": moment, "last": moment}
    entry["count"] += 1
    entry["first"] = min(entry["first"], moment)
    entry["last"] = max(entry["last"], moment)
    return entry


def _by_last(table: dict[Any, dict[str, Any]]) -> list[dict[str, Any]]:
    """The entries, most recent first, with times as ISO 8601 UTC."""
    entries = sorted(table.values(), key=lambda entry: -entry["last"])
    return [{**e, "first": _iso(e["first"]), "last": _iso(e["last"])} for e in entries]


def _iso(moment: float) -> str:
    try:
        return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return "?"


def _canonical(address: str) -> str:
    """The address as nft prints it (IPv6 compressed), so the join matches."""
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return address
