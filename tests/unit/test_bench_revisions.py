"""bench/revisions.py's check that a warm `up` changed nothing (pure parsing, pinned here)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_PATH = Path(__file__).resolve().parents[2] / "bench" / "revisions.py"
_SPEC = importlib.util.spec_from_file_location("bench_revisions", _PATH)
assert _SPEC is not None and _SPEC.loader is not None
revisions = importlib.util.module_from_spec(_SPEC)
sys.modules["bench_revisions"] = revisions  # dataclasses look their module up while created
_SPEC.loader.exec_module(revisions)

WARM_UP = """\
→ Container already running: alca-1
→ Executing: docker container inspect alca-1
→ Executing: docker network inspect -- alca-1n
→ Executing: nft -j list table inet alcatraz
"""


def test_a_warm_up_that_only_looks_changes_nothing():
    commands = revisions.executed(WARM_UP)
    assert commands[1] == ["docker", "network", "inspect", "--", "alca-1n"]
    assert revisions.rebuilding(commands, "docker") == []


def test_creating_removing_or_starting_is_a_rebuild():
    commands = [
        ["docker", "rm", "-f", "alca-1"],
        ["docker", "container", "start", "alca-1"],
        ["docker", "network", "create", "alca-1n"],
        ["podman", "rm", "-f", "alca-1"],  # another engine: not this sandbox's
    ]
    assert revisions.rebuilding(commands, "docker") == [
        "docker rm -f",
        "docker container start",
        "docker network create",
    ]
