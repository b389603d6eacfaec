"""`alca down`: remove the project's sandbox container (state and approval are kept)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from alcatraz import state
from alcatraz.app import App

if TYPE_CHECKING:
    from alcatraz.runtime.base import Runtime


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    parser.add_argument(
        "--force", action="store_true", help="skip the sync-conflict check (may lose changes)"
    )


def main(args: argparse.Namespace, app: App) -> int:
    from alcatraz import filesync, isolation, sandbox
    from alcatraz.runtime.detect import resolve_runtime

    root = sandbox.locate(app)
    project = sandbox.open_project(app, root, allow_replaced=True)
    if project.project_id is None:
        app.step("No state file found. Container may not exist.")
        return 0
    with state.project_lock(project.state_dir):
        project = sandbox.open_project(app, root, allow_replaced=True)
        config = None
        try:
            config = sandbox.load(app, root)
        except Exception:
            config = None
        configured = config.runtime if config is not None else "auto"
        recorded = str(project.state.get("runtime", "")).lower()
        if recorded in ("docker", "podman"):
            configured = recorded  # remove the container where it was created
        runtime, _ = resolve_runtime(configured, runner=app.runner, environ=app.environ)
        app.step(f"Using runtime: {runtime.name}")
        info = sandbox.find_container(runtime, project)
        project_id = str(project.project_id)
        if info is not None and config is not None and filesync.needs_sync(config):
            _guard_conflicts(app, runtime, project_id, project.state_dir, force=args.force)
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
            record = project.state.get("isolation") or isolation.fallback_record(
                app, runtime, project_id
            )
            isolation.teardown(app, runtime, record)
        if project.replaced:
            # The old directory's sandbox is gone; this directory starts afresh.
            sandbox.forget(project)
            app.step("This directory replaced the sandbox's original one: its state was cleared")
        else:
            sandbox.save_state(project, setup_done=False, snapshot=None, isolation=None)
    app.done("Container stopped")
    return 0


def _guard_conflicts(
    app: App, runtime: Runtime, project_id: str, state_dir: Path, *, force: bool
) -> None:
    """Removing the container would destroy its side of unresolved conflicts."""
    from alcatraz import filesync
    from alcatraz.errors import AlcaError
    from alcatraz.sync.conflicts import banner

    if force:
        app.stderr.write(
            "Warning: --force used, skipping sync conflict check. Conflicts may become "
            "unresolvable after container is destroyed.\n"
        )
        return
    conflicts, _ = filesync.poll_conflicts(app, runtime, project_id, state_dir)
    if conflicts:
        app.stderr.write(banner(conflicts) + "\n")
        raise AlcaError(
            "resolve sync conflicts before stopping the container, or use --force to skip "
            "this check: sync conflicts",
            hint="alca experimental sync resolve",
        )
