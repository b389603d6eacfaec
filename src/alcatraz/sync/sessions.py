"""What Mutagen says about its sessions, parsed, and why a session is not syncing, in words.

`mutagen sync list --template '{{json .}}'` is the only view of a session's state; it is
read tolerantly (Mutagen omits zero values), while conflicts are parsed in
`alcatraz.sync.conflicts`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from alcatraz.errors import AlcaError
from alcatraz.printable import printable
from alcatraz.sync.arguments import LABEL_MOUNT
from alcatraz.sync.conflicts import Conflict, parse_conflicts

if TYPE_CHECKING:
    from alcatraz.proc import Result


class SyncError(AlcaError):
    """A sync operation could not be done, or its result cannot be trusted."""


@dataclass(frozen=True)
class Problem:
    """A path Mutagen could not scan or write on one endpoint."""

    endpoint: str  # "alpha" (host) or "beta" (container)
    kind: str  # "scan" or "transition"
    path: str  # relative to the synced root; "" = the root itself
    error: str


@dataclass(frozen=True)
class Session:
    """What `mutagen sync list` says about one session."""

    name: str
    identifier: str
    status: str  # "watching", "scanning", "disconnected", "halted-on-root-emptied", ...
    paused: bool
    alpha_connected: bool
    beta_connected: bool
    last_error: str
    successful_cycles: int
    conflicts: tuple[Conflict, ...]
    excluded_conflicts: int  # conflicts beyond the 10 Mutagen lists
    problems: tuple[Problem, ...]
    labels: Mapping[str, str] = field(default_factory=dict)
    mode: str = ""
    ignore_paths: tuple[str, ...] = ()
    alpha_path: str = ""
    beta_host: str = ""
    beta_path: str = ""

    @property
    def mount_index(self) -> int:
        """From the `alca-mount` label; -1 if missing (then it maps to no mount)."""
        return _mount_index(self.labels)

    @property
    def connected(self) -> bool:
        return self.alpha_connected and self.beta_connected

    @property
    def halted(self) -> bool:
        """Mutagen stopped to protect data (e.g. the container's copy was emptied)."""
        return self.status.startswith("halted")

    @property
    def conflict_count(self) -> int:
        return len(self.conflicts) + self.excluded_conflicts

    @property
    def root_problems(self) -> tuple[Problem, ...]:
        """Problems with the synced root itself: nothing syncs (e.g. a missing parent)."""
        return tuple(p for p in self.problems if p.path == "")


def _mount_index(labels: Mapping[str, str]) -> int:
    value = labels.get(LABEL_MOUNT, "")
    return int(value) if value.isascii() and value.isdigit() else -1


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _dict(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _problems(endpoint: str, data: Mapping[str, Any]) -> list[Problem]:
    found = []
    for kind in ("scan", "transition"):
        raw = data.get(f"{kind}Problems")
        for item in raw if isinstance(raw, list) else []:
            item = _dict(item)
            found.append(Problem(endpoint, kind, _str(item.get("path")), _str(item.get("error"))))
    return found


def parse_session(data: Mapping[str, Any]) -> Session:
    """One session object; tolerant of missing fields (Mutagen omits zero values)."""
    alpha, beta = _dict(data.get("alpha")), _dict(data.get("beta"))
    labels = {str(k): str(v) for k, v in _dict(data.get("labels")).items()}
    paths = _dict(data.get("ignore")).get("paths")
    return Session(
        name=_str(data.get("name")),
        identifier=_str(data.get("identifier")),
        status=_str(data.get("status")),
        paused=data.get("paused") is True,
        alpha_connected=alpha.get("connected") is True,
        beta_connected=beta.get("connected") is True,
        last_error=_str(data.get("lastError")),
        successful_cycles=_int(data.get("successfulCycles")),
        conflicts=tuple(parse_conflicts(data, mount_index=_mount_index(labels))),
        excluded_conflicts=_int(data.get("excludedConflicts")),
        problems=tuple(_problems("alpha", alpha) + _problems("beta", beta)),
        labels=labels,
        mode=_str(data.get("mode")),
        ignore_paths=tuple(p for p in paths if isinstance(p, str))
        if isinstance(paths, list)
        else (),
        alpha_path=_str(alpha.get("path")),
        beta_host=_str(beta.get("host")),
        beta_path=_str(beta.get("path")),
    )


def parse_sessions(text: str) -> list[Session]:
    """The output of `mutagen sync list --template '{{json .}}'` (a JSON array)."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise SyncError(f"mutagen printed a session list that is not JSON: {exc}") from None
    if data is None:
        return []
    if not isinstance(data, list):
        raise SyncError("mutagen printed a session list that is not a JSON array")
    return [parse_session(item) for item in data if isinstance(item, Mapping)]


def error_text(result: Result) -> str:
    """Mutagen's own error line, without the `\\r` progress lines around it."""
    text = (result.stderr or result.stdout).replace("\r", "\n")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line.removeprefix("Error: ") for line in lines if line.startswith("Error: ")]
    if errors:
        return errors[-1]
    return lines[-1] if lines else "(no output)"


_HALTED: Final = {
    "halted-on-root-emptied": "one side's copy was emptied (a recreated container?), and Mutagen "
    "stopped rather than delete the other side's files",
    "halted-on-root-deletion": "the synced directory was deleted on one side, and Mutagen "
    "stopped rather than delete it on the other",
    "halted-on-root-type-change": "the synced path changed between file and directory on one "
    "side, and Mutagen stopped",
}


def explain(session: Session) -> str:
    """Why a session is not syncing, in words."""
    if session.paused:
        return "it is paused"
    if session.status in _HALTED:
        return _HALTED[session.status]
    if session.last_error:
        return f"{session.status or 'not syncing'} ({session.last_error})"
    return (session.status or "unknown state") + _unsynced(session)


def _unsynced(session: Session) -> str:
    """The paths Mutagen skipped (a name it cannot carry, a file it cannot read), or ""."""
    skipped = [p for p in session.problems if p.path]
    if not skipped:
        return ""
    first = skipped[0]
    side = "host" if first.endpoint == "alpha" else "container"
    more = f" and {len(skipped) - 1} more" if len(skipped) > 1 else ""
    return f"; not synced: {printable(first.path)} in the {side} ({first.error}){more}"


def check_root(session: Session) -> None:
    """Fail when the synced root itself cannot be written: then nothing syncs at all."""
    problems = session.root_problems
    if problems:
        where = "host" if problems[0].endpoint == "alpha" else "container"
        raise SyncError(
            f"sync session {session.name} cannot write its {where} directory: {problems[0].error}",
            hint="check that the directory's parent exists and is writable",
        )
