"""`alca cleanup`: remove containers whose project is gone or no longer owns them (§1.7)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

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
    from alcatraz.sandbox.project import ENGINES

    chosen = app.environ.get("ALCA_RUNTIME")
    names = [chosen] if chosen in ENGINES else list(ENGINES)
    found: list[Runtime] = []
    for name in names:
        try:
            runtime, _ = resolve_runtime(
                name, runner=app.runner, environ=app.environ, home=app.facts_home
            )
        except AlcaError:
            continue
        found.append(runtime)
    if not found:
        from alcatraz.errors import UnavailableError

        raise UnavailableError("no container engine answers", hint="start Docker or Podman")
    return found


class Orphan(NamedTuple):
    """A container of ours that no project owns any more, and why."""

    runtime: Runtime
    info: ContainerInfo
    reason: str


class OrphanNetwork(NamedTuple):
    """A network of ours whose project is gone, that no live container uses, and why."""

    runtime: Runtime
    network: NetworkInfo
    reason: str


@dataclass(frozen=True)
class CleanupReport:
    """The orphans on every engine that answers, before anything is removed."""

    containers: tuple[Orphan, ...]
    networks: tuple[OrphanNetwork, ...]

    @property
    def empty(self) -> bool:
        return not self.containers and not self.networks

    @property
    def networks_alone(self) -> tuple[OrphanNetwork, ...]:
        """The orphan networks no orphan container is attached to (those go with it)."""
        attached = _networks_of(o.info for o in self.containers)
        return tuple(n for n in self.networks if n.network.name not in attached)


def gather(app: App, owner: str) -> CleanupReport:
    containers: list[Orphan] = []
    networks: list[OrphanNetwork] = []
    for runtime in _runtimes(app):
        for info in runtime.list_by_label(f"{LABEL_OWNER}={owner}"):
            reason = orphan_reason(info, app.home)
            if reason is not None:
                containers.append(Orphan(runtime, info, reason))
        networks += _orphan_networks(runtime, owner, app.home, [o.info for o in containers])
    return CleanupReport(tuple(containers), tuple(networks))


def render(report: CleanupReport) -> list[str]:
    """The orphans as `cleanup` lists them before it asks."""
    lines: list[str] = []
    if report.containers:
        lines.append(f"Found {len(report.containers)} orphan container(s):")
        for i, (runtime, info, reason) in enumerate(report.containers, 1):
            # Labels are anyone's on a shared engine: a newline in one would forge an entry.
            path = info.labels.get(LABEL_PROJECT_PATH)
            lines.append(f"  [{i}] {printable(info.name)}")
            lines.append(f"      Path: {printable(path) if path else '(unknown)'}")
            lines.append(f"      Reason: {reason}")
            lines.append(f"      Engine: {runtime.name}")
        lines.append("")
    alone = report.networks_alone
    if alone:
        lines.append(f"Found {len(alone)} orphan network(s) without a container:")
        for runtime, network, reason in alone:
            lines.append(f"  - {printable(network.name)} ({runtime.name}): {reason}")
        lines.append("")
    return lines


def main(args: argparse.Namespace, app: App) -> int:
    from alcatraz.sandbox.project import owner_label

    owner = owner_label(app)
    _report_copies(app)
    report = gather(app, owner)
    if report.empty:
        return 0
    for line in render(report):
        app.out(line)
    choice = _choose(args, app, report)
    if choice is None:
        return 0
    selected, sweep = choice
    if report.containers and not selected:
        app.out("No containers selected.")
        return 0
    removed, failed = _remove_containers(app, [report.containers[i] for i in selected])
    if report.containers:
        app.out()
        app.done(f"Removed {removed} container(s).")
    if sweep:
        for runtime, network, reason in _all_orphan_networks(app, owner):
            _remove_network(app, runtime, network, reason)
    return 1 if failed else 0


def _choose(
    args: argparse.Namespace, app: App, report: CleanupReport
) -> tuple[list[int], bool] | None:
    """The containers to remove and whether to sweep the networks; None when nothing is."""
    count = len(report.containers)
    if args.yes:
        return list(range(count)), True
    if not app.interactive:
        app.out("Nothing removed: run 'alca cleanup -y' to remove them without a prompt.")
        return None
    picked = _select(app, count) if count else []
    if picked is None:
        return None
    return picked, bool(picked) or (not count and app.confirm("Remove these networks?"))


def _remove_containers(app: App, orphans: list[Orphan]) -> tuple[int, int]:
    """Each container and its sync sessions; how many were removed, how many failed."""
    from alcatraz.errors import AlcaError
    from alcatraz.sandbox import filesync
    from alcatraz.sync.mutagen import valid_label_value

    removed = failed = 0
    for runtime, info, _reason in orphans:
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
    return removed, failed


def _networks_of(infos: Iterable[ContainerInfo]) -> set[str]:
    return {name for info in infos for name in info.networks}


def _orphan_networks(
    runtime: Runtime, owner: str, home: Path, orphans: list[ContainerInfo]
) -> list[OrphanNetwork]:
    """Our networks whose project is gone, and that no live container of ours uses."""
    in_use = _networks_of(
        info
        for info in runtime.list_by_label(f"{LABEL_OWNER}={owner}")
        if info.name not in {o.name for o in orphans}
    )
    found: list[OrphanNetwork] = []
    for network in runtime.networks():
        if network.labels.get(LABEL_OWNER) != owner or network.name in in_use:
            continue
        if not network.labels.get(LABEL_PROJECT_ID):
            continue
        reason = _owner_problem(network.labels, home)
        if reason is not None:
            found.append(OrphanNetwork(runtime, network, reason))
    return found


def _all_orphan_networks(app: App, owner: str) -> list[OrphanNetwork]:
    found: list[OrphanNetwork] = []
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


def _report_copies(app: App) -> None:
    """Branch copies (`up -b`) whose project or branch is gone and that have no sandbox: shown,
    never removed here (a copy may hold the agent's uncommitted work)."""
    from alcatraz.sandbox.branches import stale_copies

    stale = stale_copies(app)
    if not stale:
        return
    app.out(f"Found {len(stale)} branch cop{'y' if len(stale) == 1 else 'ies'} without a sandbox:")
    for row in stale:
        app.out(f"  - {printable(str(row['branch']))} of {printable(str(row['project']))}")
        app.out(f"      Copy: {printable(str(row['copy']))}")
        app.out(f"      Reason: {row['reason']}")
    app.out(
        "They are kept (they may hold uncommitted work): remove one with "
        "'alca down -b NAME --force --purge' in its project, or delete its directory."
    )
    app.out("")
