"""`alca status`: configuration, runtime, container and drift (reference §1.6), or `--json`.

This module gathers a `StatusReport` (reads only: config, state, engine, kernel rules,
Mutagen); `status_report` renders it.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from alcatraz.app import App
from alcatraz.commands.status_report import (
    NOT_FOUND,
    AgentView,
    ContainerView,
    StatusReport,
    SyncView,
    render,
)
from alcatraz.paths import CONFIG_NAME, find_project_root
from alcatraz.runtime.base import ContainerState

if TYPE_CHECKING:
    from pathlib import Path

    from alcatraz.config.load import Config
    from alcatraz.runtime.base import ContainerInfo, Runtime
    from alcatraz.sandbox.project import Project
    from alcatraz.statefile import RunSpec

REPLACED = (
    "this directory replaced the one its sandbox was created for; "
    "run 'alca down' to clear the old sandbox"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument(
        "-b", "--branch", metavar="NAME", help="the sandbox of branch NAME (parallel agents)"
    )


def gather(app: App) -> StatusReport:
    """What `status` shows, read up to the first thing that is missing."""
    from alcatraz.config.load import load_config
    from alcatraz.errors import AlcaError
    from alcatraz.runtime.detect import resolve_runtime
    from alcatraz.sandbox import project as sandbox

    root = find_project_root(app.cwd)
    if root is None:
        return StatusReport(initialized=False)
    config_path = str(root / CONFIG_NAME)
    config = load_config(root, environ=app.environ, cwd=app.cwd)
    project = sandbox.open_project(app, root, allow_replaced=True)
    if project.replaced:
        return StatusReport(True, config_path, replaced=True, runtime_error=REPLACED)
    approved = sandbox.is_approved(config, project)
    agent = agent_view(config.agent)
    try:
        runtime, reason = resolve_runtime(
            config.runtime, runner=app.runner, environ=app.environ, home=app.facts_home
        )
    except AlcaError as error:
        return StatusReport(
            True, config_path, approved=approved, agent=agent, runtime_error=error.message
        )
    report = StatusReport(
        True,
        config_path,
        approved=approved,
        agent=agent,
        runtime=runtime.name,
        runtime_reason=reason,
        project_id=project.project_id,
    )
    if project.project_id is None:
        return replace(report, isolation={"state": "off" if config.allow_all_lan else "none"})
    return _gather_sandbox(app, report, config, project, runtime, project.project_id)


def agent_view(name: str | None) -> AgentView | None:
    """The config's `agent` preset as status shows it (its label and start command)."""
    if name is None:
        return None
    from alcatraz.errors import UsageError
    from alcatraz.init.agents import load_preset  # ~10 ms: only for a config naming an agent

    try:
        preset = load_preset(name)
    except UsageError:  # a name this version does not ship
        return AgentView(name, name, None)
    return AgentView(name, preset.label, preset.unrestricted)


def _gather_sandbox(
    app: App,
    report: StatusReport,
    config: Config,
    project: Project,
    runtime: Runtime,
    project_id: str,
) -> StatusReport:
    """The rules, the resolver, the container and (when it runs) its sync and drift."""
    from alcatraz.sandbox import project as sandbox

    info = sandbox.find_container(runtime, project)
    if info is None:
        previous = sandbox.previous_runtime(app, project, runtime)
        if previous is not None:
            info = sandbox.find_container(previous, project)  # the engine changed since
    report = replace(
        report,
        isolation=_isolation(app, config, project, project_id, info),
        names=_names(project),
    )
    if info is None:
        return replace(report, container=ContainerView(NOT_FOUND))
    from alcatraz.sandbox import filesync

    container = ContainerView(info.state.value, info.id, info.name, info.image, info.started_at)
    syncing = filesync.needs_sync(config) and info.state is ContainerState.RUNNING
    return replace(
        report,
        container=container,
        sync=_sync(app, runtime, project_id, project.state_dir) if syncing else None,
        drift=_drift(config, project, runtime, info),
    )


def _isolation(
    app: App, config: Config, project: Project, project_id: str, info: ContainerInfo | None
) -> Mapping[str, Any]:
    from alcatraz.errors import AlcaError
    from alcatraz.sandbox import netreport as isolation

    try:
        found = isolation.report(
            app,
            config,
            project_id,
            project.state.isolation,
            pid=info.pid if info is not None else 0,
        )
    except AlcaError as error:
        found = {"state": "unknown", "error": error.message}
    return _with_inside_layer(found, project.state.run_spec)


def _with_inside_layer(found: Mapping[str, Any], spec: RunSpec | None) -> Mapping[str, Any]:
    """A sandbox restarted without alcatraz lost its in-namespace layer (decision 0010)."""
    from alcatraz.state import inside_layer_current

    record = spec.isolation if spec is not None else None
    if record is None or inside_layer_current(record):
        return found
    updated = dict(found)
    if updated.get("state") == "enabled":
        updated["state"] = "missing"
    updated["inside"] = "missing"
    return updated


def _names(project: Project) -> Mapping[str, Any] | None:
    record = project.state.isolation
    if record is None or not record.enforced:
        return None
    from alcatraz.network import resolver

    return resolver.describe(record.resolver)


def _sync(app: App, runtime: Runtime, project_id: str, state_dir: Path) -> SyncView:
    from alcatraz.errors import AlcaError
    from alcatraz.sandbox import filesync

    try:
        conflicts, sessions = filesync.poll_conflicts(app, runtime, project_id, state_dir)
    except AlcaError as error:
        return SyncView(error=error.message)
    return SyncView(tuple(filesync.describe_sessions(sessions)), tuple(conflicts))


def _drift(
    config: Config, project: Project, runtime: Runtime, info: ContainerInfo
) -> tuple[str, ...]:
    from alcatraz import protect
    from alcatraz.sandbox import drift

    lines = drift.compare(
        project.state.snapshot or {},
        drift.snapshot(config, protect.snapshot(config)),
        old_engine=project.state.runtime,
        new_engine=runtime.name,
    )
    return (*lines, *_source_drift(config, project, info))


def _source_drift(config: Config, project: Project, info: ContainerInfo) -> list[str]:
    """Replaced or linked workspace sources count as drift (decision 0010)."""
    from alcatraz import sources
    from alcatraz.errors import RefusedError
    from alcatraz.sandbox import drift

    try:
        return drift.source_drift(
            project.state.source_pins, info.restart_policy, sources.pins(config)
        )
    except RefusedError as error:
        return [f"Workspace: {error.message}"]


def main(args: argparse.Namespace, app: App) -> int:
    if args.branch is not None:
        return _branch_status(args, app)
    report = gather(app)
    if args.json:
        app.out(json.dumps(report.to_json(), indent=2))
        return 0
    for line in render(report):
        (app.err if line.to_stderr else app.out)(line.text)
    return 0


def _branch_status(args: argparse.Namespace, app: App) -> int:
    from alcatraz.printable import printable
    from alcatraz.sandbox.branches import status_branch
    from alcatraz.sandbox.branchname import check_branch_name

    row = status_branch(app, check_branch_name(args.branch))
    if args.json:
        app.out(json.dumps(row, indent=2))
        return 0
    for key in ("branch", "project", "base", "ahead", "container", "status", "isolation", "copy"):
        value = row[key]
        app.out(f"{key.capitalize() + ':':11} {printable('-' if value is None else str(value))}")
    return 0
