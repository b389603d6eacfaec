"""Sandbox building blocks for `up`, `down`, `status`, `list`, `cleanup` (the order of the
steps of `up` and `down` is in `alcatraz.lifecycle`).

Talks to the engine only through `alcatraz.runtime`, to the user only through `App`.
Ordering rules that matter for safety:

- configuration is loaded, validated and approved before anything changes;
- a sandbox is only created when every promise can be kept (excluded files, network
  isolation); otherwise `up` refuses and says why (fail closed);
- `commands.up` is recorded as done only after it succeeds, so a failure is retried.
"""

from __future__ import annotations

import json
import os
import shlex
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alcatraz import hostca, protect, seccomp, sources, state, trust
from alcatraz.app import App
from alcatraz.config import private
from alcatraz.config.expand import expand_env_value
from alcatraz.config.load import Config, load_config
from alcatraz.errors import AlcaError, NotInitializedError, RefusedError, UnavailableError
from alcatraz.paths import CONFIG_NAME, display_path, find_project_root
from alcatraz.printable import printable
from alcatraz.runtime.base import (
    LABEL_OWNER,
    LABEL_PROJECT_ID,
    LABEL_PROJECT_PATH,
    LABEL_VERSION,
    LABEL_VERSION_VALUE,
    BindMount,
    ContainerInfo,
    ContainerSpec,
    Runtime,
)
from alcatraz.state import ProjectStore
from alcatraz.statefile import IsolationRecord, ProjectState, RunSpec


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


def previous_runtime(app: App, project: Project, current: Runtime) -> Runtime | None:
    """The engine the project's container was created with, when it is not `current`."""
    from alcatraz.errors import UnavailableError
    from alcatraz.runtime.detect import resolve_runtime

    recorded = project.state.runtime
    if not recorded or recorded == current.name or recorded.lower() not in ("docker", "podman"):
        return None
    try:
        runtime, _ = resolve_runtime(recorded.lower(), runner=app.runner, environ=app.environ)
    except UnavailableError:
        return None
    return runtime


def find_container(runtime: Runtime, project: Project) -> ContainerInfo | None:
    """The project's container, refusing one that belongs to another directory."""
    name = project.state.container_name
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


def _host_env(config: Config, app: App) -> dict[str, str]:
    env: dict[str, str] = {}
    for name, var in config.envs.items():
        value = expand_env_value(var.value, app.environ)
        if value is not None:
            env[name] = value
    return env


def ensure_sources(config: Config, app_home: Path) -> None:
    """Create missing mount sources inside the project (as engines did upstream); refuse others.

    Inside the project, directories are made beneath descriptors opened without following
    links (`sources.ensure`): a workspace link never leads the host's mkdir out of it.
    Private directories (`${alca:PRIVATE}/NAME`) are made under the alcatraz home.
    """
    private_root = private.private_root(app_home, config.project_root)
    for i, mount in enumerate(config.mounts):
        if Path(mount.source).parent == private_root:
            sources.ensure_private(Path(mount.source))
            continue
        relative = sources.workspace_relative(config, mount.source)
        if relative is not None:
            sources.ensure(config, relative)
            continue
        if not Path(mount.source).exists():
            raise AlcaError(
                f"mount source {printable(mount.source)} does not exist",
                hint=f"create it, or remove mounts[{i}] from the configuration",
            )


def _protected_config_mounts(config: Config) -> list[BindMount]:
    """Bind the project's config files read-only over themselves inside the container."""
    mounts: list[BindMount] = []
    for path in config.files:
        try:
            relative = path.relative_to(config.project_root.resolve())
        except ValueError:
            continue
        mounts.append(BindMount(str(path), str(Path(config.workdir) / relative), readonly=True))
    return mounts


#: Names the base profile for the setuid guard instead of the standard places.
SECCOMP_BASE_ENV = "ALCA_SECCOMP_BASE"


def setuid_guard_profile(app: App, config: Config) -> str | None:
    """The guard's profile file (under the alcatraz home), or None when no guard is needed.

    Raises `UnavailableError` when a guard is needed and no base profile can be read:
    the container would otherwise be able to plant setuid-root files on the host.
    """
    if not seccomp.config_needs_guard(config):
        return None
    return write_guard_profile(app)


def write_guard_profile(app: App) -> str:
    """Derive the guard's profile from the engines' default one; the file's path."""
    chosen = app.environ.get(SECCOMP_BASE_ENV)
    candidates = (chosen,) if chosen else seccomp.DEFAULT_PROFILE_PATHS
    fix = (
        "install the containers' default seccomp profile (Debian/Ubuntu: apt install "
        "golang-github-containers-common; Fedora: dnf install containers-common), or set "
        f"{SECCOMP_BASE_ENV} to a seccomp profile file, or sync the workspace instead of "
        "bind-mounting it (workdir_exclude) and make other mounts readonly"
    )
    base_path = next((Path(c) for c in candidates if Path(c).is_file()), None)
    if base_path is None:
        raise UnavailableError(
            "cannot keep setuid files off the host: no seccomp profile to extend at "
            + " or ".join(candidates),
            hint=fix,
        )
    try:
        profile = seccomp.guarded_profile(json.loads(base_path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UnavailableError(
            f"cannot keep setuid files off the host: {base_path}: {exc}", hint=fix
        ) from None
    path = app.home / "seccomp" / f"setuid-guard-{seccomp.digest(seccomp.render(profile))}.json"
    if not path.is_file():  # content-addressed: a container may refer to it after restarts
        state.write_json(path, profile)
        os.chmod(path, 0o644)  # the engine's daemon reads it too
    return str(path)


def container_spec(
    config: Config,
    app: App,
    project_id: str,
    name: str,
    network: str | None = None,
    seccomp_profile: str | None = None,
    protection: Sequence[protect.Placement] = (),
    *,
    dns: tuple[str, ...] = (),
    ca_bundle: Path | None = None,
) -> ContainerSpec:
    # Mounts with exclude patterns are synced (alcatraz.filesync), never bind-mounted.
    mounts = [BindMount(m.source, m.target, m.readonly) for m in config.all_mounts if not m.exclude]
    mounts += _protected_config_mounts(config)
    taken = {m.target for m in mounts}
    for source, target, readonly in protect.bind_mounts(config, protection, app.home):
        if target not in taken:  # a config file is bound read-only already
            mounts.append(BindMount(source, target, readonly))
            taken.add(target)
    env = _host_env(config, app)
    if ca_bundle is not None:
        mounts.append(BindMount(str(ca_bundle), hostca.BUNDLE_TARGET, readonly=True))
        env = {**hostca.sandbox_env(config.envs), **env}
    return ContainerSpec(
        name=name,
        image=config.image,
        workdir=config.workdir,
        labels={
            LABEL_PROJECT_ID: project_id,
            LABEL_PROJECT_PATH: str(config.project_root),
            LABEL_VERSION: LABEL_VERSION_VALUE,
            LABEL_OWNER: owner_label(app),
        },
        mounts=mounts,
        env=env,
        ports=config.ports,
        cap_drop=config.caps.drop,
        cap_add=config.caps.add,
        memory=config.memory,
        cpus=config.cpus,
        network=network,
        seccomp_profile=seccomp_profile,
        dns=dns,
        extra_args=tuple(shlex.split(app.environ.get("ALCA_TEST_ENGINE_ARGS", ""))),
    )


def host_ca_bundle(app: App, config: Config, project: Project) -> Path | None:
    """The project's copy of the host's CA certificates (refreshed), when the config asks."""
    if not config.host_ca:
        return None
    path = hostca.write_bundle(project.state_dir, app.environ)
    if path is None:
        raise UnavailableError(
            "host-ca = true, but this host has no CA certificate bundle at "
            + " or ".join(hostca.SYSTEM_BUNDLES)
            + " and no CA file in "
            + ", ".join(hostca.CA_VARIABLES[:3]),
            hint="install the host's CA certificates (Debian: apt install ca-certificates), "
            "point SSL_CERT_FILE at your CA file, or remove host-ca from [network]",
        )
    return path


def run_spec(
    config: Config, runtime: Runtime, name: str, isolation: IsolationRecord | None = None
) -> RunSpec:
    """What `alca run` needs, so its hot path never parses TOML."""
    return RunSpec(
        isolation=isolation,
        executable=runtime.executable,
        container=name,
        workdir=config.workdir,
        project_root=str(config.project_root),
        enter=config.enter.command if config.enter else "",
        override_envs={
            name: var.value for name, var in config.envs.items() if var.override_on_enter
        },
        stamps=state.file_stamps(config.files),
    )


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
