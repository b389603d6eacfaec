"""`alca status`: configuration, runtime, container and drift (reference §1.6), or `--json`."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from alcatraz.app import App
from alcatraz.paths import CONFIG_NAME, find_project_root
from alcatraz.runtime.base import ContainerState

if TYPE_CHECKING:
    from alcatraz.statefile import RunSpec


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def _collect(app: App) -> dict[str, Any]:
    from alcatraz import protect
    from alcatraz.config.load import load_config
    from alcatraz.errors import AlcaError
    from alcatraz.runtime.detect import resolve_runtime
    from alcatraz.sandbox import drift
    from alcatraz.sandbox import project as sandbox

    root = find_project_root(app.cwd)
    if root is None:
        return {"initialized": False}
    report: dict[str, Any] = {"initialized": True, "config": str(root / CONFIG_NAME)}
    config = load_config(root, environ=app.environ, cwd=app.cwd)
    project = sandbox.open_project(app, root, allow_replaced=True)
    if project.replaced:
        report["replaced"] = True
        report["approved"] = False
        report["runtime"] = None
        report["runtime_error"] = (
            "this directory replaced the one its sandbox was created for; "
            "run 'alca down' to clear the old sandbox"
        )
        return report
    report["approved"] = sandbox.is_approved(config, project)
    try:
        runtime, reason = resolve_runtime(config.runtime, runner=app.runner, environ=app.environ)
    except AlcaError as error:
        report["runtime"] = None
        report["runtime_error"] = error.message
        return report
    report["runtime"] = runtime.name
    report["runtime_reason"] = reason
    report["project_id"] = project.project_id
    if project.project_id is None:
        report["container"] = None
        report["isolation"] = {"state": "off" if config.allow_all_lan else "none"}
        return report
    from alcatraz.sandbox import netreport as isolation

    info = sandbox.find_container(runtime, project)
    if info is None:
        previous = sandbox.previous_runtime(app, project, runtime)
        if previous is not None:
            info = sandbox.find_container(previous, project)  # the engine changed since
    try:
        report["isolation"] = isolation.report(
            app,
            config,
            project.project_id,
            project.state.isolation,
            pid=info.pid if info is not None else 0,
        )
    except AlcaError as error:
        report["isolation"] = {"state": "unknown", "error": error.message}
    record = project.state.isolation
    if record is not None and record.enforced:
        from alcatraz.network import resolver

        report["names"] = resolver.describe(record.resolver)
    _check_inside_layer(report, project.state.run_spec)
    if info is None:
        report["container"] = {"state": ContainerState.NOT_FOUND.value}
        return report
    report["container"] = {
        "state": info.state.value,
        "id": info.id,
        "name": info.name,
        "image": info.image,
        "started_at": info.started_at,
    }
    from alcatraz.sandbox import filesync

    if filesync.needs_sync(config) and info.state is ContainerState.RUNNING:
        try:
            conflicts, sessions = filesync.poll_conflicts(
                app, runtime, project.project_id, project.state_dir
            )
            report["sync"] = {
                "sessions": filesync.describe_sessions(sessions),
                "conflicts": [
                    {
                        "path": c.path,
                        "mount": c.mount_index,
                        "local": c.local_state,
                        "container": c.container_state,
                        "description": c.describe(),
                    }
                    for c in conflicts
                ],
            }
        except AlcaError as error:
            report["sync"] = {"error": error.message}
    report["drift"] = drift.compare(
        project.state.snapshot or {},
        drift.snapshot(config, protect.snapshot(config)),
        old_engine=project.state.runtime,
        new_engine=runtime.name,
    )
    report["drift"] += _source_drift(config, project, info)
    return report


def _check_inside_layer(report: dict[str, Any], spec: RunSpec | None) -> None:
    """A sandbox restarted without alcatraz lost its in-namespace layer (decision 0010)."""
    from alcatraz.state import inside_layer_current

    record = spec.isolation if spec is not None else None
    if record is not None and not inside_layer_current(record):
        if report["isolation"].get("state") == "enabled":
            report["isolation"]["state"] = "missing"
        report["isolation"]["inside"] = "missing"


def _source_drift(config: Any, project: Any, info: Any) -> list[str]:
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


def _sync_lines(app: App, sync: dict[str, Any]) -> None:
    if "error" in sync:
        app.out(f"File sync: unknown ({sync['error']})")
        app.out()
        return
    sessions = sync.get("sessions", [])
    healthy = sum(1 for s in sessions if s["healthy"])
    conflicts = sync.get("conflicts", [])
    app.out(
        f"File sync: {healthy}/{len(sessions)} session(s) healthy, "
        f"{len(conflicts)} conflict{'s' if len(conflicts) != 1 else ''}"
    )
    for session in sessions:
        state = "ok" if session["healthy"] else "PROBLEM"
        app.out(f"  - mount {session['mount']}: {session['summary']} [{state}]")
    if conflicts:
        from alcatraz.sync.conflicts import Conflict, banner

        app.err(
            banner(
                [Conflict("", c["mount"], c["path"], c["local"], c["container"]) for c in conflicts]
            )
        )
    app.out()


def _isolation_line(isolation: dict[str, Any]) -> str:
    state = isolation.get("state")
    if state == "enabled":
        blocked = isolation.get("blocked", 0)
        return (
            f"Enabled on {isolation.get('network')} ({isolation.get('subnet')}); "
            f"{blocked} blocked attempt{'s' if blocked != 1 else ''} (see 'alca net log')"
        )
    if state == "off":
        return 'Off (lan-access = ["*"]: the sandbox may reach your LAN and this host)'
    if state == "outdated":
        return "Outdated: the rules are from an older configuration; run 'alca up' to apply"
    if state == "missing":
        return "MISSING: the rules are not loaded; run 'alca up' to restore them"
    if state == "unknown":
        return f"Unknown ({isolation.get('error')})"
    return "Not set up yet (run 'alca up')"


def _names_line(names: dict[str, Any]) -> str:
    state = names.get("state")
    if state == "engine":
        return "the engine's resolver"
    upstreams = ", ".join(names.get("upstreams") or []) or f"none in {names.get('resolv_conf')}"
    if state == "running":
        return f"the project's resolver on {names.get('listen')} (asks {upstreams})"
    return (
        f"NOT RESOLVED: the project's resolver on {names.get('listen')} is not running "
        "('alca run' or 'alca up' starts it)"
    )


def main(args: argparse.Namespace, app: App) -> int:
    report = _collect(app)
    if args.json:
        app.out(json.dumps(report, indent=2))
        return 0
    if not report["initialized"]:
        app.out("Status: Not initialized")
        app.out()
        app.out("Run 'alca init' to create a configuration file.")
        return 0
    app.out("Status: Initialized")
    app.out(f"Config: {report['config']}")
    app.out(f"Approved: {'Yes' if report['approved'] else 'No (run alca trust)'}")
    app.out()
    if report["runtime"] is None:
        app.out("Runtime: None available")
        app.out()
        app.out(f"Error: {report['runtime_error']}")
        return 0
    app.out(f"Runtime: {report['runtime']}")
    app.out()
    if report["project_id"] is None:
        app.out("State: Not created")
        app.out()
        app.out("Run 'alca up' to create the container.")
        return 0
    app.out(f"Project ID: {report['project_id']}")
    app.out(f"Network isolation: {_isolation_line(report.get('isolation') or {})}")
    if report.get("names"):
        app.out(f"Names: {_names_line(report['names'])}")
    app.out()
    container = report["container"] or {}
    state = container.get("state")
    if state == ContainerState.RUNNING.value:
        app.out("Container: Running")
        app.out(f"  ID:    {container['id']}")
        app.out(f"  Name:  {container['name']}")
        app.out(f"  Image: {container['image']}")
        app.out(f"  Started: {container['started_at']}")
        app.out()
        if "sync" in report:
            _sync_lines(app, report["sync"])
        if report.get("drift"):
            app.out("Configuration has changed since last container creation:")
            for line in report["drift"]:
                app.out(f"  {line}")
            app.out()
            app.out("Run 'alca up -f' to rebuild with new configuration.")
            app.out()
        app.out("Run 'alca run <command>' to execute commands.")
    elif state == ContainerState.STOPPED.value:
        app.out("Container: Stopped")
        app.out()
        for line in report.get("drift") or []:
            app.out(f"  {line}")
        app.out("Run 'alca up' to start the container.")
    elif state == ContainerState.NOT_FOUND.value:
        app.out("Container: Not created")
        app.out()
        app.out("Run 'alca up' to create and start the container.")
    else:
        app.out("Container: Unknown state")
    return 0
