"""`alca experimental sync check|resolve`: file-sync conflicts (reference §1.9, §4.4)."""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from alcatraz.app import App
from alcatraz.errors import AlcaError, ExitCode, UsageError

if TYPE_CHECKING:
    from alcatraz.config.load import Config
    from alcatraz.runtime.base import Runtime
    from alcatraz.sync.conflicts import Conflict

WARNING = (
    "Warning: EXPERIMENTAL COMMAND\n"
    "This feature is experimental and may change or be removed in future versions.\n"
    "Use with caution in production environments.\n\n"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="experimental_command", metavar="<command>", required=True)
    sync = sub.add_parser("sync", help="File sync conflicts")
    verbs = sync.add_subparsers(dest="sync_command", metavar="<subcommand>", required=True)
    check = verbs.add_parser("check", help="List sync conflicts (exit 1 when there are any)")
    check.add_argument("--json", action="store_true", help="machine-readable output")
    verbs.add_parser("resolve", help="Resolve sync conflicts interactively")


def main(args: argparse.Namespace, app: App) -> int:
    from alcatraz.config.load import load_config
    from alcatraz.runtime.base import ContainerState
    from alcatraz.runtime.detect import resolve_runtime
    from alcatraz.sandbox import filesync
    from alcatraz.sandbox import project as sandbox

    app.err(WARNING.removesuffix("\n"))
    root = sandbox.locate(app)
    config = load_config(root, environ=app.environ, cwd=app.cwd)
    project = sandbox.open_project(app, root)
    if project.project_id is None or not filesync.needs_sync(config):
        app.out("No sync conflicts.")
        return 0
    recorded = project.state.runtime.lower()
    runtime, _ = resolve_runtime(
        recorded if recorded in ("docker", "podman") else config.runtime,
        runner=app.runner,
        environ=app.environ,
    )
    info = sandbox.find_container(runtime, project)
    if info is None or info.state is not ContainerState.RUNNING:
        raise AlcaError("container is not running: run 'alca up' first")
    conflicts, _ = filesync.poll_conflicts(app, runtime, project.project_id, project.state_dir)
    if args.sync_command == "check":
        return _check(app, conflicts, as_json=args.json)
    return _resolve(
        app, runtime, config, project.project_id, project.state_dir, info.name, conflicts
    )


def _check(app: App, conflicts: list[Conflict], *, as_json: bool) -> int:
    if as_json:
        payload = {
            "count": len(conflicts),
            "conflicts": [
                {
                    "path": c.path,
                    "mount": c.mount_index,
                    "session": c.session,
                    "localState": c.local_state,
                    "containerState": c.container_state,
                    "detectedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                }
                for c in conflicts
            ],
        }
        app.out(json.dumps(payload, indent=2))
    if not conflicts:
        if not as_json:
            app.out("No sync conflicts.")
        return 0
    if not as_json:
        from alcatraz.sync.conflicts import banner

        app.out(banner(conflicts))
    app.err(f"{len(conflicts)} sync conflict{'s' if len(conflicts) != 1 else ''} found")
    return int(ExitCode.FAILURE)


def _resolve(
    app: App,
    runtime: Runtime,
    config: Config,
    project_id: str,
    state_dir: Path,
    container: str,
    conflicts: list[Conflict],
) -> int:
    from alcatraz.sandbox import filesync
    from alcatraz.sync.conflicts import check_inside, deletion_for
    from alcatraz.sync.mutagen import project_selector

    if not conflicts:
        app.out("No sync conflicts.")
        return 0
    if not app.interactive:
        raise UsageError(
            "resolving conflicts needs a terminal: each one is your choice",
            hint="run 'alca experimental sync resolve' in a terminal; "
            "'alca experimental sync check --json' lists them for scripts",
        )
    mounts = list(config.all_mounts)
    mutagen = filesync.mutagen_for(app, runtime)
    backups = state_dir / "conflict-backups" / time.strftime("%Y%m%dT%H%M%S")
    total = len(conflicts)
    app.out(f"{total} sync conflict{'s' if total != 1 else ''} found:")
    app.out()
    resolved = skipped = 0
    for i, conflict in enumerate(conflicts, 1):
        app.out(f"[{i}/{total}] {conflict.path}")
        app.out(f"  Local (your machine):  {conflict.local_state}")
        app.out(f"  Container:             {conflict.container_state}")
        app.out(
            "How to resolve?  1) Local overwrites container  2) Container overwrites local  3) Skip"
        )
        app.write("> ")
        line = app.stdin.readline()
        if not line:
            filesync.poll_conflicts(app, runtime, project_id, state_dir)
            app.out(f"Aborted. {resolved} resolved, {skipped} skipped.")
            return 1
        choice = line.strip()
        if choice not in ("1", "2"):
            skipped += 1
            app.out("  Skipped")
            continue
        winner: Literal["local", "container"] = "local" if choice == "1" else "container"
        try:
            deletion = deletion_for(conflict, mounts, winner)
            if deletion.side == "container":
                code = runtime.exec(container, ["rm", "-rf", "--", deletion.path])
                if code != 0:
                    raise AlcaError(f"could not remove {deletion.path} in the container")
            else:
                source = mounts[conflict.mount_index].source
                check_inside(deletion.path, source)
                # Keep the host copy: moved aside, never deleted.
                target = backups / str(conflict.mount_index) / conflict.path
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(deletion.path, target)
                app.out(f"  (your copy was kept in {target})")
            mutagen.flush_all(label_selector=project_selector(project_id))
        except AlcaError as error:
            app.out(f"  Error: {error.message}")
            continue
        resolved += 1
        app.out(
            "  Resolved: local overwrites container"
            if winner == "local"
            else "  Resolved: container overwrites local"
        )
    filesync.poll_conflicts(app, runtime, project_id, state_dir)  # refresh run's banner
    app.out(f"Done: {resolved} resolved, {skipped} skipped.")
    return 0
