"""`up` and `down` as services: the order of every step that creates or removes a sandbox.

The commands in `alcatraz.commands` only parse arguments and call these. The order is the
safety argument (reference §1.3, §3.3): refusals before anything exists; rules loaded and
verified before any container of the project runs; on `down`, the container before its
rules, the rules before the network.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from alcatraz import drift, filesync, isolation, protect, sandbox, sources, state
from alcatraz.app import App
from alcatraz.config.load import Config
from alcatraz.errors import AlcaError, RefusedError
from alcatraz.network import resolver
from alcatraz.network.plan import network_name
from alcatraz.printable import printable
from alcatraz.runtime.base import ContainerInfo, ContainerState, Runtime
from alcatraz.runtime.detect import resolve_runtime
from alcatraz.sandbox import Project


def up(app: App, *, force: bool, assume_yes: bool) -> None:
    """Create, start, reuse or rebuild the project's sandbox, then run `post_up`."""
    root = sandbox.locate(app)
    config = sandbox.load(app, root)
    project = sandbox.open_project(app, root)
    with project.store.lock():
        project = sandbox.open_project(app, root)  # re-read under the lock
        sandbox.require_approval(app, config, project, assume_yes=assume_yes)
        app.step("Detecting runtime...")
        runtime, _reason = resolve_runtime(config.runtime, runner=app.runner, environ=app.environ)
        app.step(f"Detected runtime: {runtime.name}")
        # Refusals first, before any state or engine object exists (the most basic reason
        # first: an engine the host firewall cannot see).
        isolation.check_guarantee(app, config, runtime)
        filesync.check_possible(app, runtime, config)
        # Before anything changes: refuses when setuid files could reach the host.
        guard_profile = sandbox.setuid_guard_profile(app, config)
        ca_bundle = sandbox.host_ca_bundle(app, config, project)  # refreshed on every up
        # Refuses when a path the host executes cannot be made read-only inside.
        protection = protect.placements_for(config)

        project_id = project.project_id or sandbox.new_project_id()
        name = state.container_name_for(project_id)
        if project.project_id is None:
            sandbox.save_state(
                project,
                project_id=project_id,
                project_path=str(root),
                root_identity=tuple(state.root_identity(root)),
                container_name=name,
                runtime=runtime.name,
            )
        chosen = runtime
        info = sandbox.find_container(runtime, project)
        previous = sandbox.previous_runtime(app, project, runtime)
        old_info = sandbox.find_container(previous, project) if previous is not None else None
        if info is None and previous is not None and old_info is not None:
            # The engine changed (upstream B2): the old container is drift, not an orphan.
            runtime, info = previous, old_info
        snapshot = drift.snapshot(config, protect.snapshot(config))
        kept_with_drift = False
        sources.pins(config)  # refuses a workspace link before any change
        if info is not None:
            outcome = _reconcile_drift(
                app, config, project, project_id, name, info, runtime, chosen, snapshot, force
            )
            if outcome == "rebuilt":
                runtime, info = chosen, None
            kept_with_drift = outcome == "kept"

        # Rules are loaded and verified before any container of this project runs.
        guard = isolation.prepare(
            app, config, runtime, project_id, project.state_dir, creating=info is None
        )
        sandbox.save_state(project, isolation=guard.record())
        if info is None:
            sandbox.ensure_sources(config, app.home)
            if not config.workdir_exclude:  # bind-mounted: mount points are host paths
                made = protect.materialise(config.project_root, protection)
                if made:
                    app.step("Created empty read-only placeholders: " + ", ".join(made))
            sandbox.save_state(project, source_pins=sources.pins(config))
            spec = sandbox.container_spec(
                config,
                app,
                project_id,
                name,
                guard.network.name,
                guard_profile,
                protection,
                dns=guard.dns,
                ca_bundle=ca_bundle,
            )
            with app.progress(f"Creating container: {name}"):  # may pull the image
                runtime.create(spec)
            sandbox.save_state(
                project,
                container_name=name,
                runtime=runtime.name,
                created_at=sandbox.now(),
                snapshot=snapshot,
                setup_done=False,
            )
            app.step("Container started")
        elif info.state is ContainerState.RUNNING:
            app.step(f"Container already running: {name}")
        else:
            _check_pins(config, project)  # the engine resolves the sources again on start
            with app.progress(f"Starting stopped container: {name}"):
                runtime.start(name)
            app.step("Container started")
        # The second layer, inside the sandbox's namespace, before any of its commands run.
        running = info is not None and info.state is ContainerState.RUNNING
        inside_pid = isolation.guard_inside(
            app, runtime, guard, name, pid=info.pid if running and info else 0
        )
        run_isolation = isolation.run_record(guard, inside_pid)

        previous_spec = project.state.run_spec
        if kept_with_drift and previous_spec is not None:
            # The container was built from the old configuration: keep running it as such
            # (its workdir, mounts and setup); only the live network policy is updated.
            sandbox.save_state(project, run_spec=previous_spec._replace(isolation=run_isolation))
        else:
            filesync.prepare_container_paths(runtime, name, config)
            filesync.start(app, runtime, config, project_id, name)
            if filesync.needs_sync(config):
                filesync.poll_conflicts(app, runtime, project_id, project.state_dir)
            sandbox.run_setup(app, runtime, config, project, name)
            sandbox.save_state(
                project, run_spec=sandbox.run_spec(config, runtime, name, run_isolation)
            )
    if config.post_up:
        code = sandbox.run_hook(app, config, "post_up", config.post_up)
        if code != 0:
            raise AlcaError(
                f"post_up hook failed with exit code {code}; the container is up",
                hint="fix hooks.post_up and run 'alca up' again",
            )
    app.done("Environment ready")


def _reconcile_drift(
    app: App,
    config: Config,
    project: Project,
    project_id: str,
    name: str,
    info: ContainerInfo,
    runtime: Runtime,
    chosen: Runtime,
    snapshot: dict[str, object],
    force: bool,
) -> Literal["current", "kept", "rebuilt"]:
    """Show drift and rebuild on request: "rebuilt" when the old container was removed,
    "kept" when the user declined, "current" when nothing drifted."""
    changes = drift.compare(
        project.state.snapshot or {},
        snapshot,
        old_engine=project.state.runtime,
        new_engine=chosen.name,
    )
    detached = network_name(project_id) not in info.networks
    if detached:
        changes.append("Network: the container is not on its isolated project network")
    elif not info.dns and resolver.expected(config):
        changes.append("Names: the container does not use the project's resolver")
    changes += source_drift(project, info, sources.pins(config))
    if not changes:
        return "current"
    if force:
        app.step("Configuration changed, rebuilding container (-f)")
        rebuild = True
    else:
        app.out("Configuration has changed since last container creation:")
        for line in changes:
            app.out(f"  {line}")
        rebuild = app.confirm("Rebuild container with new configuration?")
    if not rebuild:
        if detached and isolation.needs_firewall(config):
            raise RefusedError(
                "the existing container is outside its isolated network, so its "
                "traffic cannot be filtered; it was left as it is",
                hint="run 'alca up -f' to rebuild it on the isolated network, or "
                "'alca down' to remove it",
            )
        app.info("Keeping existing container.")
        return "kept"
    if runtime is not chosen:
        app.step(f"Runtime changed: {runtime.name} → {chosen.name}")
    app.step("Removing existing container for rebuild...")
    filesync.stop(app, runtime, project_id)
    filesync.forget_conflicts(project.state_dir)
    runtime.remove(name)
    if runtime is not chosen:
        # The old engine's network and rules go with its container.
        isolation.teardown(app, runtime, project.state.isolation)
        sandbox.save_state(project, isolation=None)
    sandbox.save_state(project, setup_done=False, snapshot=None)
    return "rebuilt"


def source_drift(project: Project, info: ContainerInfo, current: dict[str, list[int]]) -> list[str]:
    """Drift lines for replaced workspace sources and an engine-driven restart policy."""
    lines = [
        f"Mount source ./{printable(path)}: replaced since the container was created"
        for path in sources.replaced(project.state.source_pins, current)
    ]
    if info.restart_policy not in ("", "no"):
        lines.append(
            f"Restart policy: {printable(info.restart_policy)} → no "
            "(only 'alca up' may start the sandbox)"
        )
    return lines


def _check_pins(config: Config, project: Project) -> None:
    """Refuse to start when a workspace source is not the one pinned at create."""
    changed = sources.replaced(project.state.source_pins, sources.pins(config))
    if changed:
        raise RefusedError(
            "workspace path ./" + printable(changed[0]) + " was replaced since the "
            "container was created; the container was not started",
            hint="restore it, or run 'alca up -f' to rebuild the sandbox from the project "
            "as it is now",
        )


def down(app: App, *, force: bool) -> None:
    """Remove the project's sandbox: sync, container, rules, network (state and approval stay)."""
    root = sandbox.locate(app)
    project = sandbox.open_project(app, root, allow_replaced=True)
    if project.project_id is None:
        app.step("No state file found. Container may not exist.")
        return
    with project.store.lock():
        project = sandbox.open_project(app, root, allow_replaced=True)
        config: Config | None
        try:
            config = sandbox.load(app, root)
        except Exception:  # a broken config must not keep a sandbox alive
            config = None
        configured = config.runtime if config is not None else "auto"
        recorded = project.state.runtime.lower()
        if recorded in ("docker", "podman"):
            configured = recorded  # remove the container where it was created
        runtime, _ = resolve_runtime(configured, runner=app.runner, environ=app.environ)
        app.step(f"Using runtime: {runtime.name}")
        info = sandbox.find_container(runtime, project)
        project_id = str(project.project_id)
        if info is not None and config is not None and filesync.needs_sync(config):
            _guard_conflicts(app, runtime, project_id, project.state_dir, force=force)
        approved = (
            config is not None and not project.replaced and sandbox.is_approved(config, project)
        )
        if config is not None and config.pre_down:
            if approved:
                code = sandbox.run_hook(app, config, "pre_down", config.pre_down)
                if code != 0:
                    app.step(f"Warning: pre_down hook failed with exit code {code}")
            else:
                app.warn("pre_down hook skipped: the configuration is not approved")
        with app.progress("Stopping container..."):
            filesync.stop(app, runtime, project_id)
            filesync.forget_conflicts(project.state_dir)
            if info is not None:
                runtime.remove(info.name)
            # Only now that the container is gone: its rules, then its network.
            record = project.state.isolation or isolation.fallback_record(
                app, runtime, project_id, project.state_dir
            )
            isolation.teardown(app, runtime, record)
        if project.replaced:
            # The old directory's sandbox is gone; this directory starts afresh.
            sandbox.forget(project)
            app.step("This directory replaced the sandbox's original one: its state was cleared")
        else:
            sandbox.save_state(project, setup_done=False, snapshot=None, isolation=None)
    app.done("Container stopped")


def _guard_conflicts(
    app: App, runtime: Runtime, project_id: str, state_dir: Path, *, force: bool
) -> None:
    """Removing the container would destroy its side of unresolved conflicts."""
    from alcatraz.sync.conflicts import banner

    if force:
        app.warn(
            "--force used, skipping sync conflict check. Conflicts may become "
            "unresolvable after container is destroyed."
        )
        return
    conflicts, _ = filesync.poll_conflicts(app, runtime, project_id, state_dir)
    if conflicts:
        app.err(banner(conflicts))
        raise AlcaError(
            "resolve sync conflicts before stopping the container, or use --force to skip "
            "this check: sync conflicts",
            hint="alca experimental sync resolve",
        )
