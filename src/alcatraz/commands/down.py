"""`alca down`: remove the project's sandbox container (state and approval are kept)."""

from __future__ import annotations

import argparse

from alcatraz import state
from alcatraz.app import App


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    parser.add_argument(
        "--force", action="store_true", help="skip the sync-conflict check (may lose changes)"
    )


def main(args: argparse.Namespace, app: App) -> int:
    from alcatraz import isolation, sandbox
    from alcatraz.runtime.detect import resolve_runtime

    root = sandbox.locate(app)
    project = sandbox.open_project(app, root)
    if project.project_id is None:
        app.step("No state file found. Container may not exist.")
        return 0
    with state.project_lock(project.state_dir):
        project = sandbox.open_project(app, root)
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
        approved = config is not None and sandbox.is_approved(config, project)
        if config is not None and config.pre_down:
            if approved:
                code = sandbox.run_hook(app, config, "pre_down", config.pre_down)
                if code != 0:
                    app.step(f"Warning: pre_down hook failed with exit code {code}")
            else:
                app.warn("pre_down hook skipped: the configuration is not approved")
        app.step("Stopping container...")
        if info is not None:
            runtime.remove(info.name)
        # Only now that the container is gone: its rules, then its network.
        isolation.teardown(app, runtime, project.state.get("isolation"))
        sandbox.save_state(project, setup_done=False, snapshot=None, isolation=None)
    app.done("Container stopped")
    return 0
