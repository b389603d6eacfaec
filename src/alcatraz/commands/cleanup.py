"""`alca cleanup`: remove containers whose project is gone or no longer owns them (§1.7)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from alcatraz.app import App
from alcatraz.printable import printable
from alcatraz.runtime.base import (
    LABEL_OWNER,
    LABEL_PROJECT_ID,
    LABEL_PROJECT_PATH,
    ContainerInfo,
    NetworkInfo,
    Runtime,
)


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

    store = state.ProjectStore.of(home, info.labels[LABEL_PROJECT_PATH])
    if os.path.exists(store.state_path) and store.load().container_name != info.name:
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
    from alcatraz.errors import AlcaError

    store = state.ProjectStore.of(home, root)
    if not os.path.exists(store.state_path):
        return "state file does not exist"
    try:
        project_id = store.load().project_id
    except AlcaError:  # StateFileError: not JSON, or a key of the wrong type
        return "failed to load state file"
    if not project_id:
        return "state file is empty"
    if project_id != labels.get(LABEL_PROJECT_ID):
        return "project ID mismatch"
    return None


def _select(app: App, count: int) -> list[int] | None:
    app.out("Select containers to delete (comma-separated numbers, or Enter for all):")
    app.write("> ")
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


def _runtimes(app: App) -> list[Runtime]:
    """Every engine that answers (ALCA_RUNTIME narrows it to one): orphans may be anywhere."""
    from alcatraz.errors import AlcaError
    from alcatraz.runtime.detect import resolve_runtime

    chosen = app.environ.get("ALCA_RUNTIME")
    names = [chosen] if chosen in ("docker", "podman") else ["docker", "podman"]
    found: list[Runtime] = []
    for name in names:
        try:
            runtime, _ = resolve_runtime(name, runner=app.runner, environ=app.environ)
        except AlcaError:
            continue
        found.append(runtime)
    if not found:
        from alcatraz.errors import UnavailableError

        raise UnavailableError("no container engine answers", hint="start Docker or Podman")
    return found


def main(args: argparse.Namespace, app: App) -> int:
    from alcatraz.errors import AlcaError
    from alcatraz.sandbox import filesync
    from alcatraz.sandbox.project import owner_label
    from alcatraz.sync.mutagen import valid_label_value

    owner = owner_label(app)
    orphans: list[tuple[Runtime, ContainerInfo, str]] = []
    networks: list[tuple[Runtime, NetworkInfo, str]] = []
    for runtime in _runtimes(app):
        for info in runtime.list_by_label(f"{LABEL_OWNER}={owner}"):
            reason = orphan_reason(info, app.home)
            if reason is not None:
                orphans.append((runtime, info, reason))
        networks += _orphan_networks(runtime, owner, app.home, [o[1] for o in orphans])
    if not orphans and not networks:
        return 0
    if orphans:
        app.out(f"Found {len(orphans)} orphan container(s):")
        for i, (runtime, info, reason) in enumerate(orphans, 1):
            # Labels are anyone's on a shared engine: a newline in one would forge an entry.
            path = info.labels.get(LABEL_PROJECT_PATH)
            app.out(f"  [{i}] {printable(info.name)}")
            app.out(f"      Path: {printable(path) if path else '(unknown)'}")
            app.out(f"      Reason: {reason}")
            app.out(f"      Engine: {runtime.name}")
        app.out()
    leftover = [n for n in networks if n[1].name not in _networks_of(o[1] for o in orphans)]
    if leftover:
        app.out(f"Found {len(leftover)} orphan network(s) without a container:")
        for runtime, network, reason in leftover:
            app.out(f"  - {printable(network.name)} ({runtime.name}): {reason}")
        app.out()
    if args.yes:
        selected = list(range(len(orphans)))
        sweep = True
    elif app.interactive:
        picked = _select(app, len(orphans)) if orphans else []
        if picked is None:
            return 0
        selected = picked
        sweep = bool(selected) or (not orphans and app.confirm("Remove these networks?"))
    else:
        app.out("Nothing removed: run 'alca cleanup -y' to remove them without a prompt.")
        return 0
    if orphans and not selected:
        app.out("No containers selected.")
        return 0
    removed = failed = 0
    for index in selected:
        runtime, info, _reason = orphans[index]
        app.write(f"→ Removing {printable(info.name)}... ")
        try:
            project_id = info.labels.get(LABEL_PROJECT_ID)
            # An id that is no sync label (a label forged by another user) has no session.
            if project_id and valid_label_value(project_id):
                filesync.stop(app, runtime, project_id)
            runtime.remove(info.name)
        except AlcaError as error:
            app.out(f"failed: {error.message}")
            failed += 1
            continue
        app.out("done")
        removed += 1
    if orphans:
        app.out()
        app.done(f"Removed {removed} container(s).")
    if sweep:
        for runtime, network, reason in _all_orphan_networks(app, owner):
            _remove_network(app, runtime, network, reason)
    return 1 if failed else 0


def _networks_of(infos: Iterable[ContainerInfo]) -> set[str]:
    return {name for info in infos for name in info.networks}


def _orphan_networks(
    runtime: Runtime, owner: str, home: Path, orphans: list[ContainerInfo]
) -> list[tuple[Runtime, NetworkInfo, str]]:
    """Our networks whose project is gone, and that no live container of ours uses."""
    in_use = _networks_of(
        info
        for info in runtime.list_by_label(f"{LABEL_OWNER}={owner}")
        if info.name not in {o.name for o in orphans}
    )
    found: list[tuple[Runtime, NetworkInfo, str]] = []
    for network in runtime.networks():
        if network.labels.get(LABEL_OWNER) != owner or network.name in in_use:
            continue
        if not network.labels.get(LABEL_PROJECT_ID):
            continue
        reason = _owner_problem(network.labels, home)
        if reason is not None:
            found.append((runtime, network, reason))
    return found


def _all_orphan_networks(app: App, owner: str) -> list[tuple[Runtime, NetworkInfo, str]]:
    found: list[tuple[Runtime, NetworkInfo, str]] = []
    for runtime in _runtimes(app):
        found += _orphan_networks(runtime, owner, app.home, [])
    return found


def _remove_network(app: App, runtime: Runtime, network: NetworkInfo, reason: str) -> None:
    """The network's rules, then the network (its container is already gone)."""
    from alcatraz.errors import AlcaError
    from alcatraz.network.firewall import firewall_for
    from alcatraz.network.plan import project_key
    from alcatraz.sandbox import guard as isolation

    command: list[str] | None = None
    try:
        command = firewall_for(app.runner, app.environ, runtime.executable).command
    except AlcaError:
        command = None
    from alcatraz import state
    from alcatraz.network import resolver
    from alcatraz.statefile import IsolationRecord

    path = network.labels.get(LABEL_PROJECT_PATH)
    record = IsolationRecord(
        key=project_key(network.labels[LABEL_PROJECT_ID]),
        interface=network.interface,
        network=network.name,
        nft=None if command is None else tuple(command),
        # The project's resolver, if it still runs (stopped only when its command line
        # proves it serves this network's gateway).
        resolver=(
            resolver.record(network.gateways[0], str(state.project_dir(app.home, Path(path))), "")
            if path and network.gateways
            else None
        ),
    )
    isolation.teardown(app, runtime, record)
    app.step(f"Removed network {printable(network.name)} and its rules ({reason})")
