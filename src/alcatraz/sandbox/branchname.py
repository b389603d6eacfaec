"""Branch sandboxes, the pure part: the branch name, where a copy lives, what `down` may do.

`NAME` in `alca up -b NAME` becomes a git ref in the user's repository, a refspec, a path
component of nothing (copies are keyed by a hash of it) and text on a terminal, so it is
checked here before anything uses it: stricter than `git check-ref-format --branch`, so no
name can be an option, a revision expression, a path that climbs, or a control character.
Nothing here touches the system.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from alcatraz.errors import UsageError
from alcatraz.printable import printable
from alcatraz.state import project_key

MAX_NAME: Final = 100
_COMPONENT: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*")
_OBJECT_ID: Final = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
#: Where the agent's commits wait in the user's repository when they cannot be applied.
INCOMING_PREFIX: Final = "refs/alca/branches/"
_NAME_HINT: Final = (
    "use letters, digits and '_', '.', '+', '-' in components separated by '/', "
    "e.g. 'agent/fix-login' (no leading '-' or '.', no '..', no '.lock' ending)"
)


def check_branch_name(name: str) -> str:
    """`name` when it is a plain branch name, else a `UsageError` naming the problem."""
    shown = printable(name)
    if not name:
        raise UsageError("branch name is empty", hint=_NAME_HINT)
    if len(name) > MAX_NAME:
        raise UsageError(f"branch name is longer than {MAX_NAME} characters", hint=_NAME_HINT)
    for component in name.split("/"):
        if not _COMPONENT.fullmatch(component):
            raise UsageError(f"invalid branch name {shown!r}", hint=_NAME_HINT)
        if component.endswith((".", ".lock")) or ".." in component:
            raise UsageError(f"invalid branch name {shown!r}", hint=_NAME_HINT)
    if name in ("HEAD", "FETCH_HEAD", "ORIG_HEAD", "MERGE_HEAD") or name.startswith("refs/"):
        raise UsageError(f"branch name {shown!r} is reserved by git", hint=_NAME_HINT)
    return name


def is_object_id(text: str) -> bool:
    """A full SHA-1 or SHA-256 object name in lowercase hex (what git prints for a commit)."""
    return _OBJECT_ID.fullmatch(text) is not None


def branch_key(name: str) -> str:
    """The directory name of a branch's copy: a hash, so the name never becomes a path."""
    return hashlib.sha256(name.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class BranchPaths:
    """Where one branch sandbox of one project lives under the alcatraz home.

    `<home>/branches/<project key>/<branch key>/`: `work/` is the private copy (the
    sandbox's project root, so its state is keyed by project and branch), `branch.json`
    what alcatraz recorded when it made the copy (never inside the copy, which is the
    agent's), `incoming/` the pack read from the sandbox before the host checks it.
    """

    directory: Path

    @classmethod
    def of(cls, home: Path, user_root: Path, name: str) -> BranchPaths:
        project = project_key(user_root)
        return cls(home / "branches" / project / branch_key(check_branch_name(name)))

    @property
    def work(self) -> Path:
        return self.directory / "work"

    @property
    def record(self) -> Path:
        return self.directory / "branch.json"

    @property
    def incoming(self) -> Path:
        return self.directory / "incoming"


def branch_ref(name: str) -> str:
    return "refs/heads/" + check_branch_name(name)


def incoming_ref(name: str) -> str:
    return INCOMING_PREFIX + check_branch_name(name)


def inside(path: Path | str, directory: Path | str) -> bool:
    """Whether `path` is `directory` or beneath it (lexically; both absolute)."""
    path, directory = Path(path), Path(directory)
    return path == directory or directory in path.parents


@dataclass(frozen=True)
class DownCheck:
    """What `down -b` found before it removes anything."""

    running: bool  # the sandbox runs, so its copy could be asked about its work
    dirty: bool  # uncommitted changes in the copy (unknown when not running: assumed)
    force: bool
    purge: bool


def down_refusal(check: DownCheck) -> str | None:
    """Why `down -b` must not go on (nothing removed), or None. Nothing the user owns is lost:
    a copy with uncommitted work is removed only with `--force --purge`."""
    if check.force:
        return None
    if check.running and check.dirty:
        return "the branch sandbox's copy has uncommitted changes"
    if not check.running and check.purge:
        return "the sandbox is not running, so its copy cannot be checked for uncommitted work"
    return None
