"""Approval of configuration, so the sandboxed agent cannot widen its own policy.

The agent can write the project directory, so it can add `.alca.x.toml` or (through a
path the read-only mounts do not cover) change what `alca up` would apply: host hooks,
mounts of host directories, `lan-access`. `up` therefore compares the effective
configuration with the last one the user approved, and a difference needs a "yes" on a
terminal or `alca trust`. The approval lives in alcatraz's per-user directory.

What is approved is the effective configuration (after merging and expansion) together with
the list of files that took part, so a comment-only edit needs no new approval while any
change in behaviour does.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alcatraz import state
from alcatraz.config.load import Config
from alcatraz.config.show import document, render_text
from alcatraz.printable import printable
from alcatraz.state import read_json, write_json

APPROVAL_FILE = state.APPROVAL_FILE  # the names of a project's files are `ProjectStore`'s


def fingerprint(config: Config) -> dict[str, Any]:
    """What an approval covers."""
    return {
        "files": [str(path) for path in config.files],
        "config": document(config),
    }


def digest(config: Config) -> str:
    canonical = json.dumps(fingerprint(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class TrustCheck:
    """Whether the current configuration is the approved one, and if not, how it differs."""

    approved: bool
    first_time: bool
    diff: str


def _listing(data: dict[str, Any]) -> list[str]:
    lines = ["files:"] + [f"  {printable(f)}" for f in data.get("files", [])]
    lines += json.dumps(data.get("config", {}), indent=2, sort_keys=True).splitlines()
    return lines


def check(config: Config, state_dir: Path) -> TrustCheck:
    record = read_json(state_dir / APPROVAL_FILE)
    current = fingerprint(config)
    if record is None:
        text = render_text(config)
        return TrustCheck(False, True, text)
    if record.get("digest") == digest(config):
        return TrustCheck(True, False, "")
    diff = "\n".join(
        difflib.unified_diff(
            _listing(record.get("fingerprint", {})),
            _listing(current),
            fromfile="approved",
            tofile="current",
            lineterm="",
        )
    )
    return TrustCheck(False, False, diff)


def approve(config: Config, state_dir: Path) -> None:
    write_json(
        state_dir / APPROVAL_FILE,
        {
            "digest": digest(config),
            "fingerprint": fingerprint(config),
            "approved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
    )
