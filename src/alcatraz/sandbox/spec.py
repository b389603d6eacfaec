"""What a sandbox is built from: its container spec, mount sources, the setuid guard's
profile, the host's CA bundle, and the run-spec that `alca run` reads instead of the TOML.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path

from alcatraz import hostca, protect, seccomp, sources, state
from alcatraz.app import App
from alcatraz.config import private
from alcatraz.config.expand import expand_env_value
from alcatraz.config.load import Config
from alcatraz.errors import AlcaError, UnavailableError
from alcatraz.printable import printable
from alcatraz.runtime import engine_api
from alcatraz.runtime.base import (
    LABEL_OWNER,
    LABEL_PROJECT_ID,
    LABEL_PROJECT_PATH,
    LABEL_VERSION,
    LABEL_VERSION_VALUE,
    BindMount,
    ContainerSpec,
    Runtime,
)
from alcatraz.sandbox.project import Project, owner_label
from alcatraz.statefile import IsolationRecord, RunSpec


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
    # Mounts with exclude patterns are synced (alcatraz.sandbox.filesync), never bind-mounted.
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


def answering_api_socket(executable: str, environ: Mapping[str, str]) -> str:
    """The engine's local API socket if it answers now, else "": `alca run` then execs the
    CLI. A remote engine (tcp://, ssh://, a remote context) has none: it keeps the CLI."""
    path = engine_api.local_socket(executable, environ)
    return path if path and engine_api.ping(path) else ""


def run_spec(
    config: Config,
    runtime: Runtime,
    name: str,
    isolation: IsolationRecord | None = None,
    *,
    api_socket: str = "",
) -> RunSpec:
    """What `alca run` needs, so its hot path never parses TOML."""
    return RunSpec(
        api_socket=api_socket,
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
