"""`alca cleanup`: remove containers whose project is gone or no longer owns them (§1.7)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path

from alcatraz.app import App
from alcatraz.runtime.base import LABEL_PROJECT_ID, LABEL_PROJECT_PATH, ContainerInfo, Runtime


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-y", "--yes", "--all", dest="yes", action="store_true",
        help="remove every orphan without asking",
    )  # fmt: skip


def orphan_reason(info: ContainerInfo, home: Path) -> str | None:
    """Why `info` is an orphan (first reason that applies), or None if a project owns it."""
    reason = _owner_problem(info.labels, home)
    if reason is not None:
        return reason
    from alcatraz import state

    data = state.read_json(
        state.project_dir(home, Path(info.labels[LABEL_PROJECT_PATH])) / "state.json"
    )
    if data is not None and data.get("container_name") != info.name:
        return "container name mismatch"
    return None


def _owner_problem(labels: Mapping[str, str], home: Path) -> str | None:
    """Why the project named by these labels no longer owns the object, or None."""
    from alcatraz import state

    path = labels.get(LABEL_PROJECT_PATH)
    if not path:
        return "no project path label"
    root = Path(path)
    if not root.is_dir():
        return "project directory does not exist"
    try:
        data = state.read_json(state.project_dir(home, root) / "state.json")
    except (OSError, ValueError):
        return "failed to load state file"
    if data is None:
        return "state file does not exist"
    if not data.get("project_id"):
        return "state file is empty"
    if data.get("project_id") != labels.get(LABEL_PROJECT_ID):
        return "project ID mismatch"
    return None


def _select(app: App, count: int) -> list[int] | None:
    app.out("Select containers to delete (comma-separated numbers, or Enter for all):")
    app.stdout.write("> ")
    app.stdout.flush()
    line = app.stdin.readline()
    if not line:
        app.out("Cancelled.")
        return None
    text = line.strip()
    if not text:
        return list(range(count))
    chosen: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit():
            from alcatraz.errors import UsageError

            raise UsageError(f"Invalid number: {part}", hint=f"enter numbers from 1 to {count}")
        number = int(part)
        if not 1 <= number <= count:
            from alcatraz.errors import UsageError

            raise UsageError(f"Number out of range: {number}", hint=f"use 1 to {count}")
        chosen.append(number - 1)
    return sorted(set(chosen))


def main(args: argparse.Namespace, app: App) -> int:
    from alcatraz import filesync
    from alcatraz.errors import AlcaError
    from alcatraz.runtime.detect import resolve_runtime

    runtime, _ = resolve_runtime("auto", runner=app.runner, environ=app.environ)
    orphans = [
        (info, reason)
        for info in runtime.list_by_label(LABEL_PROJECT_ID)
        if (reason := orphan_reason(info, app.home)) is not None
    ]
    if not orphans:
        _sweep_networks(app, runtime)
        return 0
    app.out(f"Found {len(orphans)} orphan container(s):")
    for i, (info, reason) in enumerate(orphans, 1):
        app.out(f"  [{i}] {info.name}")
        app.out(f"      Path: {info.labels.get(LABEL_PROJECT_PATH) or '(unknown)'}")
        app.out(f"      Reason: {reason}")
    app.out()
    if args.yes:
        selected = list(range(len(orphans)))
    elif app.interactive:
        picked = _select(app, len(orphans))
        if picked is None:
            return 0
        selected = picked
    else:
        app.out("Nothing removed: run 'alca cleanup -y' to remove them without a prompt.")
        return 0
    if not selected:
        app.out("No containers selected.")
        return 0
    removed = 0
    failed = 0
    for index in selected:
        info = orphans[index][0]
        app.stdout.write(f"→ Removing {info.name}... ")
        try:
            project_id = info.labels.get(LABEL_PROJECT_ID)
            if project_id:
                filesync.stop(app, runtime, project_id)
            runtime.remove(info.name)
        except AlcaError as error:
            app.out(f"failed: {error.message}")
            failed += 1
            continue
        app.out("done")
        removed += 1
    app.out()
    app.done(f"Removed {removed} container(s).")
    _sweep_networks(app, runtime)
    return 1 if failed else 0


def _sweep_networks(app: App, runtime: Runtime) -> None:
    """Remove networks (and their rules) of projects that are gone and have no container."""
    from alcatraz import isolation
    from alcatraz.errors import AlcaError
    from alcatraz.network.firewall import firewall_for
    from alcatraz.network.plan import project_key

    in_use = {name for info in runtime.list_by_label(LABEL_PROJECT_ID) for name in info.networks}
    command: list[str] | None = None
    try:
        command = firewall_for(app.runner, app.environ, runtime.executable).command
    except AlcaError:
        command = None
    for network in runtime.networks():
        project_id = network.labels.get(LABEL_PROJECT_ID)
        if not project_id or network.name in in_use:
            continue
        reason = _owner_problem(network.labels, app.home)
        if reason is None:
            continue
        record = {
            "key": project_key(project_id),
            "interface": network.interface,
            "network": network.name,
            "nft": command,
        }
        isolation.teardown(app, runtime, record)
        app.step(f"Removed network {network.name} and its rules ({reason})")
