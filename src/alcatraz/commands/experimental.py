"""`alca experimental sync check|resolve`: file-sync conflicts (reference §1.9, §4.4)."""

from __future__ import annotations

import argparse
import json
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, NamedTuple

from alcatraz.app import App
from alcatraz.errors import AlcaError, ExitCode, UsageError

if TYPE_CHECKING:
    from alcatraz.config.layer import Mount
    from alcatraz.config.load import Config
    from alcatraz.runtime.base import Runtime
    from alcatraz.sync.conflicts import Conflict
    from alcatraz.sync.mutagen import Mutagen

WARNING = (
    "Warning: EXPERIMENTAL COMMAND\n"
    "This feature is experimental and may change or be removed in future versions.\n"
    "Use with caution in production environments.\n\n"
)
RESOLVED: Final = {"local": "local overwrites container", "container": "container overwrites local"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="experimental_command", metavar="<command>", required=True)
    sync = sub.add_parser("sync", help="File sync conflicts")
    verbs = sync.add_subparsers(dest="sync_command", metavar="<subcommand>", required=True)
    check = verbs.add_parser("check", help="List sync conflicts (exit 1 when there are any)")
    check.add_argument("--json", action="store_true", help="machine-readable output")
    verbs.add_parser("resolve", help="Resolve sync conflicts interactively")


@dataclass(frozen=True)
class SyncConflicts:
    """The conflicts of a running sandbox, and what resolving them acts on."""

    runtime: Runtime
    config: Config
    project_id: str
    state_dir: Path
    container: str
    conflicts: tuple[Conflict, ...]


def main(args: argparse.Namespace, app: App) -> int:
    app.err(WARNING.removesuffix("\n"))
    found = gather(app)
    if found is None:
        app.out("No sync conflicts.")
        return 0
    if args.sync_command == "check":
        return _check(app, found.conflicts, as_json=args.json)
    return _resolve(app, found)


def gather(app: App) -> SyncConflicts | None:
    """Mutagen's conflicts for this project, or None when it has no synced sandbox."""
    from alcatraz.config.load import load_config
    from alcatraz.runtime.base import ContainerState
    from alcatraz.sandbox import filesync
    from alcatraz.sandbox import project as sandbox

    root = sandbox.locate(app)
    config = load_config(root, environ=app.environ, cwd=app.cwd)
    project = sandbox.open_project(app, root)
    if project.project_id is None or not filesync.needs_sync(config):
        return None
    runtime = sandbox.engine_for(app, config.runtime, project.state)
    info = sandbox.find_container(runtime, project)
    if info is None or info.state is not ContainerState.RUNNING:
        raise AlcaError("container is not running: run 'alca up' first")
    conflicts, _ = filesync.poll_conflicts(app, runtime, project.project_id, project.state_dir)
    return SyncConflicts(
        runtime, config, project.project_id, project.state_dir, info.name, tuple(conflicts)
    )


def check_json(conflicts: Sequence[Conflict], detected_at: str) -> dict[str, Any]:
    """`sync check --json`: the conflicts under the names the Go tool used."""
    return {
        "count": len(conflicts),
        "conflicts": [
            {
                "path": c.path,
                "mount": c.mount_index,
                "session": c.session,
                "localState": c.local_state,
                "containerState": c.container_state,
                "detectedAt": detected_at,
            }
            for c in conflicts
        ],
    }


def _check(app: App, conflicts: Sequence[Conflict], *, as_json: bool) -> int:
    if as_json:
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        app.out(json.dumps(check_json(conflicts, now), indent=2))
    if not conflicts:
        if not as_json:
            app.out("No sync conflicts.")
        return 0
    if not as_json:
        from alcatraz.sync.conflicts import banner

        app.out(banner(conflicts))
    app.err(f"{len(conflicts)} sync conflict{'s' if len(conflicts) != 1 else ''} found")
    return int(ExitCode.FAILURE)


def conflict_prompt(index: int, total: int, conflict: Conflict) -> list[str]:
    """The question `sync resolve` asks about one conflict."""
    return [
        f"[{index}/{total}] {conflict.path}",
        f"  Local (your machine):  {conflict.local_state}",
        f"  Container:             {conflict.container_state}",
        "How to resolve?  1) Local overwrites container  2) Container overwrites local  3) Skip",
    ]


def _resolve(app: App, found: SyncConflicts) -> int:
    from alcatraz.sandbox import filesync

    conflicts = found.conflicts
    if not conflicts:
        app.out("No sync conflicts.")
        return 0
    if not app.interactive:
        raise UsageError(
            "resolving conflicts needs a terminal: each one is your choice",
            hint="run 'alca experimental sync resolve' in a terminal; "
            "'alca experimental sync check --json' lists them for scripts",
        )
    target = _Target(
        list(found.config.all_mounts),
        filesync.mutagen_for(app, found.runtime),
        found.state_dir / "conflict-backups" / time.strftime("%Y%m%dT%H%M%S"),
    )
    total = len(conflicts)
    app.out(f"{total} sync conflict{'s' if total != 1 else ''} found:")
    app.out()
    resolved = skipped = 0
    for i, conflict in enumerate(conflicts, 1):
        for line in conflict_prompt(i, total, conflict):
            app.out(line)
        app.write("> ")
        answer = app.stdin.readline()
        if not answer:
            filesync.poll_conflicts(app, found.runtime, found.project_id, found.state_dir)
            app.out(f"Aborted. {resolved} resolved, {skipped} skipped.")
            return 1
        if answer.strip() not in ("1", "2"):
            skipped += 1
            app.out("  Skipped")
            continue
        winner: Literal["local", "container"] = "local" if answer.strip() == "1" else "container"
        if _apply(app, found, target, conflict, winner):
            resolved += 1
            app.out(f"  Resolved: {RESOLVED[winner]}")
    # Refresh the cache behind `alca run`'s banner.
    filesync.poll_conflicts(app, found.runtime, found.project_id, found.state_dir)
    app.out(f"Done: {resolved} resolved, {skipped} skipped.")
    return 0


class _Target(NamedTuple):
    """What resolving acts on besides the container: the mounts, Mutagen, the backups."""

    mounts: list[Mount]
    mutagen: Mutagen
    backups: Path  # the host's losing copies are moved here, never deleted


def _apply(
    app: App,
    found: SyncConflicts,
    target: _Target,
    conflict: Conflict,
    winner: Literal["local", "container"],
) -> bool:
    """Delete the losing copy (the host's is moved aside, never deleted), then flush."""
    from alcatraz.sync.conflicts import check_inside, deletion_for
    from alcatraz.sync.mutagen import project_selector

    try:
        deletion = deletion_for(conflict, target.mounts, winner)
        if deletion.side == "container":
            code = found.runtime.exec(found.container, ["rm", "-rf", "--", deletion.path])
            if code != 0:
                raise AlcaError(f"could not remove {deletion.path} in the container")
        else:
            check_inside(deletion.path, target.mounts[conflict.mount_index].source)
            kept = target.backups / str(conflict.mount_index) / conflict.path
            kept.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(deletion.path, kept)
            app.out(f"  (your copy was kept in {kept})")
        target.mutagen.flush_all(label_selector=project_selector(found.project_id))
    except AlcaError as error:
        app.out(f"  Error: {error.message}")
        return False
    return True
