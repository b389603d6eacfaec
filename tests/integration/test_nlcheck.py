"""`alca run`'s netlink check against the real kernel, in a private network namespace (the
host's ruleset is never touched): the same verdict as `nft list chain` for a loaded, a
rewritten, a flushed and a deleted chain, among many projects."""

from __future__ import annotations

import subprocess
import sys

import pytest

from alcatraz.network import nft
from tests.integration.conftest import in_ns
from tests.integration.test_nlread import policies  # the same projects' rules

pytestmark = pytest.mark.integration


def netlink_says(ns: str, chain: str, tag: str) -> object:
    code = (
        "from alcatraz.network.nlcheck import chain_has_comment; "
        f"print(chain_has_comment('alcatraz', {chain!r}, {tag!r}))"
    )
    return in_ns(ns, [sys.executable, "-c", code]).strip()


def nft_says(ns: str, chain: str, tag: str) -> str:
    done = subprocess.run(
        ["ip", "netns", "exec", ns, "nft", "list", "chain", "inet", "alcatraz", chain],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return str(done.returncode == 0 and f'comment "{tag}"' in done.stdout)


def test_the_run_check_agrees_with_nft(netns: str) -> None:
    loaded = policies(30)
    in_ns(netns, ["nft", "-f", "-"], stdin="".join(nft.apply_script(p, {}) for p in loaded))
    probe = loaded[11]
    fwd = nft.chain_names(probe.key)[0]
    listing = in_ns(netns, ["nft", "list", "chain", "inet", "alcatraz", fwd])
    tag = listing.split('comment "', 1)[1].split('"', 1)[0]
    assert tag.startswith(f"alcatraz {probe.key} ")
    other = nft.chain_names(loaded[12].key)[0]
    cases = [
        (fwd, tag, "True"),
        (fwd, tag + "0", "False"),  # another digest: the rules were rewritten
        (fwd, tag[:-1], "False"),
        (other, tag, "False"),  # another project's chain
        ("p_0000000000_fwd", tag, "False"),  # no such chain
    ]
    for chain, wanted, expected in cases:
        assert (netlink_says(netns, chain, wanted), nft_says(netns, chain, wanted)) == (
            expected,
            expected,
        ), (chain, wanted)
    in_ns(netns, ["nft", "flush", "chain", "inet", "alcatraz", fwd])
    assert netlink_says(netns, fwd, tag) == nft_says(netns, fwd, tag) == "False"
    in_ns(netns, ["nft", "delete", "table", "inet", "alcatraz"])
    assert netlink_says(netns, fwd, tag) == nft_says(netns, fwd, tag) == "False"


def test_without_cap_net_admin_it_cannot_tell(netns: str) -> None:
    """Not root: None, so `alca run` asks `nft` (through sudo or the helper) instead."""
    code = (
        "import os; from alcatraz.network.nlcheck import chain_has_comment; "
        "os.setgid(65534); os.setuid(65534); "
        "print(chain_has_comment('alcatraz', 'p_x_fwd', 'alcatraz x y'))"
    )
    assert in_ns(netns, [sys.executable, "-c", code]).strip() == "None"
