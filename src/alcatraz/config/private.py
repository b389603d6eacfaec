"""`${alca:PRIVATE}/NAME` mount sources: directories that belong to one project's sandbox.

An agent preset needs somewhere for the agent's own state (sessions, caches, its copy of
settings) that is neither the user's home (whatever the host agent reads from there, it
may execute: hooks, plugins, settings) nor the project (the agent rewrites it at will, and
the host reads it). `${alca:PRIVATE}/NAME` is `<alca home>/projects/<key>/private/NAME`:
outside every project, created by `alca up` with owner-only permissions
(`alcatraz.sources.ensure_private`), seen only by this project's sandbox.

Exactly one name follows the token: a deeper path could pass through a symlink the agent
planted inside a private directory it can write, and a mount of the private root itself
would let the agent plant one there. The name is a plain file name (no `/`, `.` or `..`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Final

from alcatraz import state
from alcatraz.errors import ConfigError, quote

TOKEN: Final = "${alca:PRIVATE}"  # noqa: S105 (a path token, not a secret)
_NAME: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}")


def is_private(source: str) -> bool:
    """Whether a raw mount source uses an `${alca:...}` token (and so is handled here)."""
    return source.startswith("${alca:")


def private_name(source: str, *, key: str) -> str:
    """NAME of `${alca:PRIVATE}/NAME`; anything else with an alca token is a config error."""
    if not source.startswith(TOKEN + "/"):
        raise ConfigError(
            f"unknown token in mount source {quote(source)}",
            key=key,
            hint=f"the only mount source token is {TOKEN}/NAME (a directory private to "
            "this project's sandbox)",
        )
    name = source[len(TOKEN) + 1 :]
    if not _NAME.fullmatch(name) or name in (".", ".."):
        raise ConfigError(
            f"mount source {quote(source)} must name one private directory",
            key=key,
            hint=f"write {TOKEN}/NAME with a plain name such as {TOKEN}/claude",
        )
    return name


def private_root(home: Path, project_root: Path) -> Path:
    """Where this project's private directories live (under its per-user state)."""
    return state.project_dir(home, project_root) / "private"


def resolve(source: str, home: Path, project_root: Path) -> str:
    """The host path of a `${alca:PRIVATE}/NAME` source already checked by `private_name`."""
    return os.path.join(private_root(home, project_root), source[len(TOKEN) + 1 :])
