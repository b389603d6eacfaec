"""Sync conflicts: what they are, how to show them, and where their two copies live.

In two-way-safe mode Mutagen never overwrites a path that changed on both sides; it keeps
both copies and reports a conflict (`conflicts[]` in `mutagen sync list` JSON, alpha being
the host and beta the container). A conflict is resolved by deleting the losing copy: the
other side's change then propagates on the next cycle or flush.

Everything here is pure except the cache file and `check_inside`. Paths come from Mutagen,
and what Mutagen reports about the container side is written by the sandbox, so a path is
never trusted: it must be relative and canonical before it is joined to the mount it came
from (the mount index recorded with the session, never the workdir: upstream bug B9), and
it is escaped before it reaches a terminal.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

from alcatraz.errors import AlcaError, quote
from alcatraz.printable import printable

if TYPE_CHECKING:
    from pathlib import Path

CACHE_VERSION: Final = 1
BANNER_LINES: Final = 3
RESOLVE_COMMAND: Final = "alca experimental sync resolve"

# Per-side states, phrased to read after the path: "modified on both sides",
# "deleted locally, created in container".
UNCHANGED: Final = "unchanged"
CREATED: Final = "created"
MODIFIED: Final = "modified"
DELETED: Final = "deleted"
CHANGED_INSIDE: Final = "changed inside"
HAS_EXCLUDED: Final = "holds excluded files"

_KIND_WORDS: Final = {
    "file": "file",
    "directory": "directory",
    "phantom-directory": "directory",
    "symlink": "symlink",
    "untracked": "excluded file",
    "problematic": "unsyncable entry",
}


class UnsafePathError(AlcaError):
    """A conflict path that cannot be mapped to a host or container path without risk."""


@dataclass(frozen=True)
class Conflict:
    """One conflict root in one sync session; `path` is relative to that mount's root."""

    session: str
    mount_index: int  # -1 when the session carries no usable alca-mount label
    path: str
    local_state: str  # host (alpha) side
    container_state: str  # container (beta) side

    def describe(self) -> str:
        if self.local_state == self.container_state:
            return f"{self.local_state} on both sides"
        return f"{self.local_state} locally, {self.container_state} in container"


class MountLike(Protocol):
    """What resolution needs of a mount (`alcatraz.config.layer.Mount` fits)."""

    @property
    def source(self) -> str: ...

    @property
    def target(self) -> str: ...


@dataclass(frozen=True)
class ResolutionPaths:
    """Where the two copies of a conflicting path are."""

    host: str
    container: str


@dataclass(frozen=True)
class Deletion:
    """What to delete so that `winner`'s copy propagates (then flush)."""

    side: Literal["host", "container"]
    path: str


@dataclass(frozen=True)
class ConflictCache:
    """The last poll's conflicts, for the `alca run` banner only (see `read_cache`)."""

    updated_at: datetime
    conflicts: tuple[Conflict, ...]
    unlisted: int = 0  # conflicts Mutagen counted but did not list (beyond 10 per session)

    @property
    def total(self) -> int:
        return len(self.conflicts) + self.unlisted


# --- parsing -------------------------------------------------------------------------------


def _kind(entry: object) -> str | None:
    if isinstance(entry, Mapping):
        kind = entry.get("kind")
        return kind if isinstance(kind, str) else "unknown"
    return None


def _changes(raw: object) -> list[tuple[str, str | None, str | None]]:
    """(path, old kind, new kind) of each change; None = nothing there."""
    if not isinstance(raw, list):
        return []
    changes = []
    for item in raw:
        if isinstance(item, Mapping):
            path = item.get("path", "")
            changes.append(
                (
                    path if isinstance(path, str) else "",
                    _kind(item.get("old")),
                    _kind(item.get("new")),
                )
            )
    return changes


def side_state(raw_changes: object, root: str) -> str:
    """One side's change at a conflict root, in words."""
    changes = _changes(raw_changes)
    if not changes:
        return UNCHANGED
    if any(new == "untracked" for _, _, new in changes):
        return HAS_EXCLUDED  # this side has excluded content the other side's change would hit
    at_root = [c for c in changes if c[0] == root]
    if not at_root:
        return CHANGED_INSIDE
    _, old, new = at_root[0]
    if new is None:
        return DELETED
    word = _KIND_WORDS.get(new, new)
    if old is None:
        return CREATED if word == "file" else f"{CREATED} {word}"
    if _KIND_WORDS.get(old, old) != word:
        return f"replaced by {word}"
    return MODIFIED


def parse_conflicts(session: Mapping[str, Any], *, mount_index: int) -> list[Conflict]:
    """The conflicts of one session object from `mutagen sync list --template '{{json .}}'`."""
    name = session.get("name") or session.get("identifier") or ""
    raw = session.get("conflicts")
    if not isinstance(raw, list):
        return []
    conflicts = []
    for item in raw:
        if not isinstance(item, Mapping):
            continue
        root = item.get("root", "")
        root = root if isinstance(root, str) else ""
        conflicts.append(
            Conflict(
                session=str(name),
                mount_index=mount_index,
                path=root,
                local_state=side_state(item.get("alphaChanges"), root),
                container_state=side_state(item.get("betaChanges"), root),
            )
        )
    return conflicts


# --- display -------------------------------------------------------------------------------


def display_path(conflict: Conflict, targets: Sequence[str] | None = None) -> str:
    """The container path when mount targets are known, else the path (with its mount #)."""
    rel = conflict.path or "."
    if targets is not None and 0 <= conflict.mount_index < len(targets):
        shown = str(PurePosixPath(targets[conflict.mount_index]) / rel)
    elif conflict.mount_index > 0:
        shown = f"[mount {conflict.mount_index}] {rel}"
    else:
        shown = rel
    return printable(shown)


def banner(
    conflicts: Sequence[Conflict], *, unlisted: int = 0, targets: Sequence[str] | None = None
) -> str:
    """The warning `alca run` prints (no trailing newline), or "" when there is nothing."""
    total = len(conflicts) + max(unlisted, 0)
    if total == 0:
        return ""
    noun, verb = ("conflict", "needs") if total == 1 else ("conflicts", "need")
    lines = [f"⚠ {total} sync {noun} {verb} attention:"]
    shown = conflicts[:BANNER_LINES]
    for conflict in shown:
        lines.append(f"  {display_path(conflict, targets):<30} ({conflict.describe()})")
    if total > len(shown):
        lines.append(f"  ...and {total - len(shown)} more")
    lines.append(f"Run '{RESOLVE_COMMAND}' to resolve.")
    return "\n".join(lines)


# --- cache ---------------------------------------------------------------------------------


def cache_data(
    conflicts: Iterable[Conflict], *, unlisted: int = 0, now: datetime | None = None
) -> dict[str, Any]:
    """The cache file's JSON object."""
    when = (now or datetime.now(UTC)).astimezone(UTC)
    return {
        "version": CACHE_VERSION,
        "updatedAt": when.isoformat().replace("+00:00", "Z"),
        "unlisted": unlisted,
        "conflicts": [
            {
                "session": c.session,
                "mountIndex": c.mount_index,
                "path": c.path,
                "local": c.local_state,
                "container": c.container_state,
            }
            for c in conflicts
        ],
    }


def write_cache(
    path: Path, conflicts: Iterable[Conflict], *, unlisted: int = 0, now: datetime | None = None
) -> None:
    """Write the cache atomically (owner-only). Keep it outside the project: the sandbox can
    write anything inside the project, including a cache that hides conflicts."""
    from alcatraz.state import write_json

    write_json(path, cache_data(conflicts, unlisted=unlisted, now=now))


def parse_cache(data: object) -> ConflictCache | None:
    """A cache object, or None when it is not one this version wrote."""
    if not isinstance(data, Mapping) or data.get("version") != CACHE_VERSION:
        return None
    try:
        updated = datetime.fromisoformat(str(data["updatedAt"]).replace("Z", "+00:00"))
        unlisted = int(data.get("unlisted", 0))
        conflicts = tuple(
            Conflict(
                session=str(item["session"]),
                mount_index=int(item["mountIndex"]),
                path=str(item["path"]),
                local_state=str(item["local"]),
                container_state=str(item["container"]),
            )
            for item in data["conflicts"]
        )
    except (KeyError, TypeError, ValueError):
        return None
    if updated.tzinfo is None:
        updated = updated.replace(tzinfo=UTC)
    return ConflictCache(updated, conflicts, max(unlisted, 0))


def read_cache(path: Path) -> ConflictCache | None:
    """The cached conflicts, or None (missing or unreadable: no banner rather than a crash).

    Only for the banner. A decision that can lose data (`down`) must poll Mutagen instead:
    a cache can be stale in both directions (upstream bug B17).
    """
    from alcatraz.state import read_json

    try:
        data = read_json(path)
    except (OSError, ValueError):
        return None
    return parse_cache(data)


# --- resolution ----------------------------------------------------------------------------


def check_relative(path: str) -> PurePosixPath:
    """`path` as a canonical relative path, or UnsafePathError.

    Refused: the mount root itself (""), absolute paths, `.`/`..`/empty components, NUL.
    Mutagen only reports canonical paths, so anything else means the data is not Mutagen's.
    """
    if not path:
        raise UnsafePathError(
            "the conflict is at the root of the synced mount", hint="resolve it by hand"
        )
    if "\x00" in path:
        raise UnsafePathError(f"conflict path {quote(path)} contains NUL")
    if path.startswith("/"):
        raise UnsafePathError(f"conflict path {quote(path)} is absolute")
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise UnsafePathError(
            f"conflict path {quote(path)} is not a plain relative path (empty, . or .. component)"
        )
    return PurePosixPath(*parts)


def resolution_paths(conflict: Conflict, mounts: Sequence[MountLike]) -> ResolutionPaths:
    """Host and container paths of a conflict: its own mount's source and target + path.

    `mounts` must be indexed like the sessions were (`alca-mount` label = index here).
    """
    index = conflict.mount_index
    if not 0 <= index < len(mounts):
        raise UnsafePathError(
            f"conflict {quote(conflict.path)} comes from sync session {quote(conflict.session)}, "
            f"mount #{index}, which the configuration does not have",
            hint="run `alca up` so the sync sessions match the configuration",
        )
    rel = check_relative(conflict.path)
    mount = mounts[index]
    source, target = PurePosixPath(mount.source), PurePosixPath(mount.target)
    if not source.is_absolute() or not target.is_absolute():
        raise UnsafePathError(f"mount #{index} has a relative source or target")
    return ResolutionPaths(host=str(source / rel), container=str(target / rel))


def deletion_for(
    conflict: Conflict, mounts: Sequence[MountLike], winner: Literal["local", "container"]
) -> Deletion:
    """The copy to delete so that `winner` wins: local wins = delete the container copy."""
    paths = resolution_paths(conflict, mounts)
    if winner == "local":
        return Deletion("container", paths.container)
    if winner == "container":
        return Deletion("host", paths.host)
    raise ValueError(f"winner must be 'local' or 'container', not {winner!r}")


def check_inside(host_path: str, root: str) -> None:
    """Refuse a host path whose parent resolves outside `root` (a symlinked directory).

    Run just before deleting on the host: the pure mapping cannot see symlinks.
    """
    real_root = os.path.realpath(root)
    real_parent = os.path.realpath(os.path.dirname(host_path))
    if os.path.commonpath([real_root, real_parent]) != real_root:
        raise UnsafePathError(
            f"{quote(host_path)} lies outside {quote(root)} once symlinks are followed",
            hint="resolve this conflict by hand",
        )
