"""`nlread` against the real kernel: the same answers as `nft -j list table`, on a table of
many projects, in a private network namespace (the host's ruleset is never touched)."""

from __future__ import annotations

import ipaddress
import json
import sys
from typing import Any

import pytest

from alcatraz.network import nft
from alcatraz.network.firewall import DISPATCH_MAPS, parse_table
from alcatraz.network.plan import Policy, ProjectNetwork
from tests.integration.conftest import in_ns

pytestmark = pytest.mark.integration

PROJECTS = 40


def policies(count: int) -> list[Policy]:
    found = []
    for index in range(1, count + 1):
        name = f"alcanl-{index:03d}"
        subnet = ipaddress.IPv4Network(f"198.18.{index}.0/24")
        network = ProjectNetwork(name, name, subnet, next(subnet.hosts()))
        found.append(Policy(f"nl{index:08d}", network, False, (), None))
    return found


def netlink_state(ns: str, key: str, interface: str | None = None) -> list[Any]:
    """[exists, chains, tags, counters, dispatch, seen] as `nlread` read them in `ns`."""
    code = (
        "import json, sys; from alcatraz.network import nlread, nft; "
        f"s = nlread.read_objects('alcatraz', nft.chain_names({key!r}), {DISPATCH_MAPS!r}, "
        f"nft.seen_sets({key!r}), interface={interface!r}); "
        "print(json.dumps([s.exists, sorted(s.chains), s.tags, s.counters, s.dispatch, s.seen]))"
    )
    state: list[Any] = json.loads(in_ns(ns, [sys.executable, "-c", code]))
    return state


def test_netlink_reads_what_nft_lists(netns: str) -> None:
    loaded = policies(PROJECTS)
    script = "".join(nft.apply_script(p, {}) for p in loaded)
    in_ns(netns, ["nft", "-f", "-"], stdin=script)
    probe = loaded[PROJECTS // 2]
    fwd, inp, _ = nft.chain_names(probe.key)
    seen4, seen6 = nft.seen_sets(probe.key)
    extra = (
        f"add rule {nft.T} {fwd} ip daddr 10.9.9.9 counter packets 7 bytes 70 drop\n"
        f"add element {nft.T} {seen4} {{ 10.1.2.3 counter packets 3 bytes 30 }}\n"
        f"add element {nft.T} {seen6} {{ fd00::1 }}\n"
    )
    in_ns(netns, ["nft", "-f", "-"], stdin=extra)
    full = parse_table(json.loads(in_ns(netns, ["nft", "-j", "list", "table", "inet", "alcatraz"])))
    exists, chains, tags, counters, dispatch, seen = netlink_state(netns, probe.key)
    assert exists is True
    own = set(nft.chain_names(probe.key)) | {seen4, seen6}
    assert set(chains) == own & full.chains
    assert tags == {c: t for c, t in full.tags.items() if c in own}
    assert counters == {fwd: 7, inp: 0} == {c: n for c, n in full.counters.items() if c in own}
    assert dispatch == {m: full.dispatch[m] for m in DISPATCH_MAPS}
    assert {k: [list(e) for e in v] for k, v in full.seen.items() if k in own} == seen
    assert seen == {seen4: [["10.1.2.3", 3]], seen6: [["fd00::1", 0]]}
    bridge = probe.network.interface
    one = netlink_state(netns, probe.key, bridge)[4]
    assert one == {m: {bridge: full.dispatch[m][bridge]} for m in DISPATCH_MAPS}
    assert netlink_state(netns, probe.key, "alcanl-none")[4] == {m: {} for m in DISPATCH_MAPS}

    # A flushed chain loses its tag; a deleted table is reported as missing.
    in_ns(netns, ["nft", "flush", "chain", "inet", "alcatraz", inp])
    assert inp not in netlink_state(netns, probe.key)[2]
    in_ns(netns, ["nft", "delete", "table", "inet", "alcatraz"])
    assert netlink_state(netns, probe.key)[0] is False
