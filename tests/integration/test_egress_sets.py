"""The daemon's element scripts against the real nft (1.0.6 here), in a throwaway table.

The table `inet alcaprobe_<pid>` is created with the project sets as the egress design
declares them, written only through `SetWriter` (what the daemon runs), listed, and deleted
at the end: only that table, never the ruleset. No packet is sent.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from alcatraz.config.netgrammar.egress import EgressRule
from alcatraz.network.egress.policy import set_names
from alcatraz.network.egress.sets import REFRESH_AFTER, Added, PlainRunner, SetWriter
from tests.unit.network.egress.test_policy import policy

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        os.geteuid() != 0 or shutil.which("nft") is None, reason="needs root and nft"
    ),
]

KEY = "0123456789"
TABLE = f"alcaprobe_{os.getpid()}"


def nft(*args: str, script: str | None = None) -> str:
    done = subprocess.run(
        ["nft", *args], input=script, capture_output=True, text=True, check=True, timeout=10
    )
    return done.stdout


@pytest.fixture
def writer() -> Iterator[SetWriter]:
    names = set_names(KEY)
    where = f"inet {TABLE}"
    nft(
        "-f",
        "-",
        script=(
            f"add table {where}\n"
            f"add set {where} {names.ea4} {{ type ipv4_addr; flags timeout; }}\n"
            f"add set {where} {names.ea6} {{ type ipv6_addr; flags timeout; }}\n"
            f"add set {where} {names.ep4} {{ type ipv4_addr . inet_proto . inet_service; "
            "flags interval,timeout; }\n"
            f"add set {where} {names.ep6} {{ type ipv6_addr . inet_proto . inet_service; "
            "flags interval,timeout; }\n"
            f"add set {where} {names.live} {{ type ifname; flags timeout; }}\n"
        ),
    )
    try:
        yield SetWriter(policy(key=KEY), PlainRunner(), table=TABLE)
    finally:
        nft("delete", "table", "inet", TABLE)


def elements(set_name: str) -> list[dict[str, Any]]:
    listed = json.loads(nft("-j", "list", "set", "inet", TABLE, set_name))
    found: list[dict[str, Any]] = []
    for item in listed["nftables"]:
        if "set" in item:
            found += item["set"].get("elem", [])
    return found


def timeouts(set_name: str) -> list[int]:
    return sorted(int(e["elem"]["timeout"]) for e in elements(set_name))


A = ipaddress.ip_address("203.0.113.7")
SIX = ipaddress.ip_address("2001:db8::7")
ANY = EgressRule("a.test", False, None, (), None)
WEB = EgressRule("a.test", False, None, ("tcp", "udp"), (443, 443))
GIT = EgressRule("a.test", False, None, ("tcp",), (22, 23))


def test_elements_are_added_and_their_timeout_refreshed(writer: SetWriter) -> None:
    names = set_names(KEY)
    assert writer.add_addresses([ANY], [A, SIX], 60) == Added(2, [], [])
    assert timeouts(names.ea4) == [60] and timeouts(names.ea6) == [60]
    # refreshed, not kept at 60 (less than half of 600 was left)
    assert writer.add_addresses([ANY], [A], 600) == Added(1, [], [])
    assert timeouts(names.ea4) == [600]
    assert writer.add_addresses([WEB, GIT], [A, SIX], 90) == Added(6, [], [])
    assert len(elements(names.ep4)) == 3 and timeouts(names.ep6) == [90, 90, 90]
    # Interval elements are refreshed too (once they were written REFRESH_AFTER ago: a name
    # asked again at once keeps its elements as they are).
    writer.written = {k: (at - REFRESH_AFTER, end) for k, (at, end) in writer.written.items()}
    assert writer.add_addresses([WEB, GIT], [A], 120) == Added(3, [], [])
    assert timeouts(names.ep4) == [120, 120, 120]


def test_an_overlapping_range_loses_only_itself(writer: SetWriter) -> None:
    names = set_names(KEY)
    wide = EgressRule("b.test", False, None, ("tcp",), (400, 500))
    inside = EgressRule("c.test", False, None, ("tcp",), (440, 450))
    assert writer.add_addresses([wide], [A], 60) == Added(1, [], [])
    added = writer.add_addresses([inside, WEB], [A], 60)
    # 440-450 and tcp 443 fall inside 400-500 (covered by it); udp 443 gets in alone.
    assert added.count == 1 and len(added.overlapping) == 2 and not added.failed
    assert "440-450" in added.overlapping[0]
    assert len(elements(names.ep4)) == 2


def test_flush_and_the_live_gate(writer: SetWriter) -> None:
    names = set_names(KEY)
    writer.add_addresses([ANY, WEB], [A], 60)
    assert writer.refresh_live() is None
    assert timeouts(names.live) == [15]
    assert writer.flush_addresses() is None
    assert elements(names.ea4) == [] and elements(names.ep4) == []
    assert len(elements(names.live)) == 1
