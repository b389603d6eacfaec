"""What the kernel holds in `inet alcatraz` (or the part of it that was read), parsed.

Shared by the two ways it is read: `nft -j` (`parse_table`, in `firewall`) and netlink
(`nlread`), so the checks that judge it do not care which one was used.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["TableState", "parse_table"]


@dataclass
class TableState:
    """What the kernel holds in `inet alcatraz` right now."""

    exists: bool = False
    chains: set[str] = field(default_factory=set)  # chains and sets, by name
    dispatch: dict[str, dict[str, str]] = field(default_factory=dict)  # map -> ifname -> chain
    tags: dict[str, str] = field(default_factory=dict)  # chain -> "alcatraz <key> <digest>"
    counters: dict[str, int] = field(default_factory=dict)  # chain -> dropped packets
    seen: dict[str, list[tuple[str, int]]] = field(default_factory=dict)  # set -> (addr, packets)

    def interfaces(self) -> dict[str, set[str]]:
        """Map or set name -> the bridge names it holds (dispatch maps and `bridges`)."""
        found = {name: set(elements) for name, elements in self.dispatch.items()}
        found["bridges"] = {address for address, _ in self.seen.get("bridges", [])}
        return found


def parse_table(document: Mapping[str, Any]) -> TableState:
    """Parse `nft -j list table inet alcatraz` output."""
    state = TableState(exists=True)
    for item in document.get("nftables", []):
        if "chain" in item:
            state.chains.add(item["chain"]["name"])
        elif "set" in item:
            body = item["set"]
            state.chains.add(body["name"])
            entries: list[tuple[str, int]] = []
            for element in body.get("elem", []) or []:
                value = element.get("elem", {}) if isinstance(element, dict) else {}
                address = value.get("val", element) if isinstance(value, dict) else element
                packets = 0
                counter = value.get("counter") if isinstance(value, dict) else None
                if isinstance(counter, dict):
                    packets = int(counter.get("packets", 0))
                entries.append((str(address), packets))
            state.seen[body["name"]] = entries
        elif "map" in item:
            body = item["map"]
            elements: dict[str, str] = {}
            for key, verdict in body.get("elem", []) or []:
                target = ""
                if isinstance(verdict, dict):
                    for kind in ("goto", "jump"):
                        if kind in verdict:
                            target = verdict[kind]["target"]
                    if "accept" in verdict:
                        target = "accept"
                elements[str(key)] = target
            state.dispatch[body["name"]] = elements
        elif "rule" in item:
            rule = item["rule"]
            chain = rule["chain"]
            comment = rule.get("comment")
            if isinstance(comment, str) and comment.startswith("alcatraz "):
                state.tags[chain] = comment
            for expr in rule.get("expr", []):
                if isinstance(expr, dict) and "counter" in expr:
                    has_drop = any(isinstance(e, dict) and "drop" in e for e in rule["expr"])
                    if has_drop:
                        packets = int(expr["counter"].get("packets", 0))
                        state.counters[chain] = state.counters.get(chain, 0) + packets
    return state
