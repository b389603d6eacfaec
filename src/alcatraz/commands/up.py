"""`alca up`: create, start, reuse or rebuild the project's sandbox (reference §1.3, §3.3)."""

from __future__ import annotations

import argparse

from alcatraz import drift, state
from alcatraz.app import App
from alcatraz.errors import AlcaError, RefusedError
from alcatraz.runtime.base import ContainerState


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    parser.add_argument(
        "-f", "--force", action="store_true", help="rebuild without asking if the config drifted"
    )
    parser.add_argument(
        "-y",
        "--yes",
        action="store_true",
        help="approve a changed configuration (after showing it)",
    )


def main(args: argparse.Namespace, app: App) -> int:
    from alcatraz import filesync, isolation, sandbox
    from alcatraz.network.plan import network_name
    from alcatraz.runtime.detect import resolve_runtime

    root = sandbox.locate(app)
    config = sandbox.load(app, root)
    project = sandbox.open_project(app, root)
    with state.project_lock(project.state_dir):
        project = sandbox.open_project(app, root)  # re-read under the lock
        sandbox.require_approval(app, config, project, assume_yes=args.yes)
        app.step("Detecting runtime...")
        runtime, _reason = resolve_runtime(config.runtime, runner=app.runner, environ=app.environ)
        app.step(f"Detected runtime: {runtime.name}")
        # Refusals first, before any state or engine object exists (the most basic reason
        # first: an engine the host firewall cannot see).
        isolation.check_guarantee(app, config, runtime)
        filesync.check_possible(app, runtime, config)
        # Before anything changes: refuses when setuid files could reach the host.
        guard_profile = sandbox.setuid_guard_profile(app, config)
        chosen = runtime

        project_id = project.project_id or sandbox.new_project_id()
        name = state.container_name_for(project_id)
        if project.project_id is None:
            sandbox.save_state(
                project,
                project_id=project_id,
                project_path=str(root),
                root_identity=state.root_identity(root),
                container_name=name,
                runtime=runtime.name,
            )
        info = sandbox.find_container(runtime, project)
        previous = sandbox.previous_runtime(app, project, runtime)
        old_info = sandbox.find_container(previous, project) if previous is not None else None
        if info is None and previous is not None and old_info is not None:
            # The engine changed (upstream B2): the old container is drift, not an orphan.
            runtime, info = previous, old_info
        snapshot = drift.snapshot(config)
        detached = False
        kept_with_drift = False
        if info is not None:
            changes = drift.compare(
                project.state.get("snapshot") or {},
                snapshot,
                old_engine=str(project.state.get("runtime", "")),
                new_engine=chosen.name,
            )
            detached = network_name(project_id) not in info.networks
            if detached:
                changes.append("Network: the container is not on its isolated project network")
            if changes:
                rebuild = args.force
                if rebuild:
                    app.step("Configuration changed, rebuilding container (-f)")
                else:
                    app.out("Configuration has changed since last container creation:")
                    for line in changes:
                        app.out(f"  {line}")
                    rebuild = app.confirm("Rebuild container with new configuration?")
                if rebuild:
                    if runtime is not chosen:
                        app.step(f"Runtime changed: {runtime.name} → {chosen.name}")
                    app.step("Removing existing container for rebuild...")
                    filesync.stop(app, runtime, project_id)
                    filesync.forget_conflicts(project.state_dir)
                    runtime.remove(name)
                    if runtime is not chosen:
                        # The old engine's network and rules go with its container.
                        isolation.teardown(app, runtime, project.state.get("isolation"))
                        sandbox.save_state(project, isolation=None)
                    sandbox.save_state(project, setup_done=False, snapshot=None)
                    runtime, info = chosen, None
                else:
                    if detached and isolation.needs_firewall(config):
                        raise RefusedError(
                            "the existing container is outside its isolated network, so its "
                            "traffic cannot be filtered; it was left as it is",
                            hint="run 'alca up -f' to rebuild it on the isolated network, or "
                            "'alca down' to remove it",
                        )
                    app.info("Keeping existing container.")
                    kept_with_drift = True
        # Rules are loaded and verified before any container of this project runs.
        guard = isolation.prepare(app, config, runtime, project_id)
        sandbox.save_state(project, isolation=guard.record())
        if info is None:
            sandbox.ensure_sources(config)
            spec = sandbox.container_spec(
                config, app, project_id, name, guard.network.name, guard_profile
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
            with app.progress(f"Starting stopped container: {name}"):
                runtime.start(name)
            app.step("Container started")
        previous_spec = project.state.get("run_spec")
        if kept_with_drift and isinstance(previous_spec, dict):
            # The container was built from the old configuration: keep running it as such
            # (its workdir, mounts and setup); only the live network policy is updated.
            sandbox.save_state(project, run_spec={**previous_spec, "isolation": guard.record()})
        else:
            filesync.prepare_container_paths(runtime, name, config)
            filesync.start(app, runtime, config, project_id, name)
            if filesync.needs_sync(config):
                filesync.poll_conflicts(app, runtime, project_id, project.state_dir)
            sandbox.run_setup(app, runtime, config, project, name)
            sandbox.save_state(
                project, run_spec=sandbox.run_spec(config, runtime, name, guard.record())
            )
    if config.post_up:
        code = sandbox.run_hook(app, config, "post_up", config.post_up)
        if code != 0:
            raise AlcaError(
                f"post_up hook failed with exit code {code}; the container is up",
                hint="fix hooks.post_up and run 'alca up' again",
            )
    app.done("Environment ready")
    return 0
