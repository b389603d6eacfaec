"""A project as the lifecycle sees it: its directory, per-user state, approval and engine.

Every command that acts on a sandbox opens its project here and asks `engine_for` which
engine owns it; talks to the engine only through `alcatraz.runtime`, to the user only
through `App`.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alcatraz import state
from alcatraz.app import App
from alcatraz.config.load import Config, load_config
from alcatraz.errors import AlcaError, NotInitializedError, RefusedError, UnavailableError
from alcatraz.paths import CONFIG_NAME, display_path, find_project_root
from alcatraz.printable import printable
from alcatraz.runtime.base import LABEL_PROJECT_ID, LABEL_PROJECT_PATH, ContainerInfo, Runtime
from alcatraz.runtime.detect import ENGINES as ENGINES  # the engines a sandbox can live on
from alcatraz.runtime.detect import resolve_runtime
from alcatraz.sandbox import trust
from alcatraz.state import ProjectStore
from alcatraz.statefile import ProjectState


@dataclass
class Project:
    """A project directory with its configuration and per-user state."""

    root: Path
    state_dir: Path
    state: ProjectState
    replaced: bool = False  # the directory is not the one the sandbox was created for

    @property
    def project_id(self) -> str | None:
        return self.state.project_id

    @property
    def store(self) -> ProjectStore:
        return ProjectStore(self.state_dir)


def owner_label(app: App) -> str:
    """Identifies this alcatraz home (and user) on a shared engine."""
    return state.owner_label(str(app.home))


def locate(app: App) -> Path:
    root = find_project_root(app.cwd)
    if root is None:
        raise NotInitializedError(
            "configuration not found: run 'alca init' first",
            hint=f"no {CONFIG_NAME} in {app.cwd} or any parent directory",
        )
    return root


def open_project(app: App, root: Path, *, allow_replaced: bool = False) -> Project:
    """Load the per-user state of `root`, noticing a directory that is not the original.

    With `allow_replaced` (for `down` and `status`), a replaced directory is reported through
    `Project.replaced` instead of refused, so the old sandbox can be cleared.
    """
    directory = state.project_dir(app.home, root)
    data = state.ProjectStore(directory).load()
    identity = data.root_identity
    if identity and identity != tuple(state.root_identity(root)):
        if allow_replaced:
            return Project(root=root, state_dir=directory, state=data, replaced=True)
        raise RefusedError(
            f"the directory {root} is not the one its sandbox was created for "
            "(it was replaced, moved here, or copied over)",
            hint="remove the old sandbox with 'alca down', then run 'alca up' to start afresh",
        )
    return Project(root=root, state_dir=directory, state=data)


def load(app: App, root: Path) -> Config:
    app.step(f"Loading config from {display_path(root / CONFIG_NAME, app.cwd)}")
    return load_config(root, environ=app.environ, cwd=app.cwd)


def require_approval(app: App, config: Config, project: Project, *, assume_yes: bool) -> None:
    """Refuse configuration the user has not approved (the agent may have written it)."""
    result = trust.check(config, project.state_dir)
    if result.approved:
        return
    if result.first_time:
        header = "This project's configuration has not been approved on this machine yet:"
    else:
        header = "The configuration changed since you last approved it:"
    app.err(header + "\n\n" + result.diff.rstrip() + "\n")
    if assume_yes or app.confirm("Approve this configuration?"):
        trust.approve(config, project.state_dir)
        app.step("Configuration approved")
        return
    raise RefusedError(
        "configuration not approved: nothing was started",
        hint="review the change above; approve it with 'alca trust' (or 'alca up' on a "
        "terminal); scripts can use 'alca trust --yes'",
    )


def recorded_engine(project_state: ProjectState) -> str | None:
    """The engine the project's container was created with, when the state names one."""
    recorded = project_state.runtime.lower()
    return recorded if recorded in ENGINES else None


def engine_for(app: App, configured: str, project_state: ProjectState | None = None) -> Runtime:
    """The engine that owns the project's sandbox: the one it was created with, else the
    configured one ("auto" detects). Raises `UnavailableError` when none can be used."""
    recorded = recorded_engine(project_state) if project_state is not None else None
    runtime, _reason = resolve_runtime(
        recorded or configured, runner=app.runner, environ=app.environ, home=app.facts_home
    )
    return runtime


def previous_runtime(app: App, project: Project, current: Runtime) -> Runtime | None:
    """The engine the project's container was created with, when it is not `current`."""
    recorded = recorded_engine(project.state)
    if recorded is None or project.state.runtime == current.name:
        return None
    try:
        return engine_for(app, recorded)
    except UnavailableError:
        return None


def find_container(
    runtime: Runtime, project: Project, name: str | None = None
) -> ContainerInfo | None:
    """The project's container (`name`, else the recorded one), refusing one that belongs
    to another directory."""
    name = name or project.state.container_name
    if name is None:
        return None
    info = runtime.inspect(name)
    if info is None:
        return None
    owner = info.labels.get(LABEL_PROJECT_PATH)
    if info.labels.get(LABEL_PROJECT_ID) != project.project_id or owner != str(project.root):
        # The label is anyone's on a shared engine: escaped, so a newline forges no line.
        shown = printable(owner) if owner else "another project"
        raise RefusedError(
            f"container {printable(name)} belongs to {shown}, not {printable(str(project.root))}",
            hint="this project was moved or copied; run 'alca cleanup' to remove orphans, "
            "then 'alca up' here",
        )
    return info


def save_state(project: Project, **fields: Any) -> None:
    """Change the named `ProjectState` fields on disk and in `project` (under its lock)."""
    project.state = project.store.update(**fields)


def run_setup(app: App, runtime: Runtime, config: Config, project: Project, name: str) -> None:
    """`commands.up`, once per container; recorded only when it succeeds."""
    if config.up is None or project.state.setup_done:
        return
    app.step("Running setup command...")
    code = runtime.exec(name, ["sh", "-c", config.up.command], workdir=config.workdir)
    if code != 0:
        raise AlcaError(
            f"up command failed with exit code {code}; the container is left running",
            hint="fix commands.up (its output is above) and run 'alca up' again: it will retry",
        )
    save_state(project, setup_done=True)


def run_hook(app: App, config: Config, name: str, command: str) -> int:
    app.step(f"Running {name} hook...")
    return app.runner.stream(["sh", "-c", command], cwd=str(config.project_root))


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def new_project_id() -> str:
    return str(uuid.uuid4())


def forget(project: Project) -> None:
    """Drop the project's state and approval (its directory was replaced by another)."""
    project.store.forget()


def is_approved(config: Config, project: Project) -> bool:
    return trust.check(config, project.state_dir).approved
