"""Load a project's configuration: read files, resolve extends/includes, merge, finalise.

The file graph is `filegraph`'s; this module applies what the field table
(`alcatraz.config.fields`) says about defaults and required keys, checks what only the
merged configuration can show (mount targets), and builds the `Config` the rest of
alcatraz uses. Reads files and the environment; writes nothing.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alcatraz.config import private
from alcatraz.config.fields import FIELDS
from alcatraz.config.filegraph import MAX_DEPTH, MAX_FILES, Resolver
from alcatraz.config.layer import Caps, Command, EnvVar, Layer, Mount
from alcatraz.config.netgrammar import (
    EgressRule,
    LanRule,
    PortMapping,
    ProxyAddress,
    parse_lan_access,
)
from alcatraz.errors import ConfigError, NotInitializedError, quote
from alcatraz.paths import CONFIG_NAME, alca_home

__all__ = ["MAX_DEPTH", "MAX_FILES", "Config", "load_config"]


@dataclass(frozen=True)
class Config:
    """The effective configuration of a project, after merging and defaults."""

    project_root: Path
    config_file: Path
    files: tuple[Path, ...]  # every file that took part, in load order
    image: str
    workdir: str
    workdir_exclude: tuple[str, ...]
    runtime: str
    up: Command | None
    enter: Command | None
    mounts: tuple[Mount, ...]  # user mounts; the project mount is `workdir_mount`
    memory: str | None
    cpus: float | None
    envs: Mapping[str, EnvVar]
    lan_access: tuple[str, ...]
    allow_all_lan: bool
    lan_rules: tuple[LanRule, ...]
    ports: tuple[PortMapping, ...]
    proxy: ProxyAddress | None
    proxy_text: str | None
    caps: Caps
    post_up: str
    pre_down: str
    origin: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    host_ca: bool = False  # the host's CA certificates reach the sandbox
    workdir_protect: tuple[str, ...] = ()
    workdir_unprotect: tuple[str, ...] = ()
    #: Internet destinations allowed; None: `egress` absent (the internet is open).
    egress: tuple[EgressRule, ...] | None = None
    egress_text: tuple[str, ...] | None = None  # as written, for `config show`
    dns: tuple[str, ...] = ()  # canonical resolvers; (): the host's own
    agent: str | None = None  # the `init --agent` preset, for `status`

    @property
    def workdir_mount(self) -> Mount:
        """Mount #0: the project itself, hidden files excluded."""
        return Mount(str(self.project_root), self.workdir, False, self.workdir_exclude)

    @property
    def all_mounts(self) -> tuple[Mount, ...]:
        return (self.workdir_mount, *self.mounts)


def _check_mount_targets(layer: Layer, workdir: str, display: str) -> None:
    """Each mount needs its own target, and none may hide the project itself."""
    targets: dict[str, str] = {}
    seen_per_file: dict[str, int] = {}
    for i, mount in enumerate(layer.mounts):
        file = ", ".join(layer.origin.get(f"mounts[{i}]", (display,)))
        local = seen_per_file.get(file, 0)  # a file's mounts are appended contiguously
        seen_per_file[file] = local + 1
        here = f"mounts[{local}] of {file}"
        if mount.target == workdir:
            raise ConfigError(
                f"mount target {quote(mount.target)} conflicts with workdir",
                file=file,
                key=f"mounts[{local}]",
                hint="the project is already mounted at workdir; use workdir_exclude to hide "
                "files instead of a separate mount",
            )
        if mount.target in targets:
            raise ConfigError(
                f"mount target {quote(mount.target)} is used twice ({targets[mount.target]} "
                f"and {here})",
                file=file,
                key=f"mounts[{local}]",
                hint="give each mount its own target",
            )
        targets[mount.target] = here


def _check_egress_combinations(layer: Layer, allow_all_lan: bool, display: str) -> None:
    """`egress` works neither through a proxy nor with LAN isolation off (not yet)."""
    if layer.egress is None:
        return
    file = ", ".join(layer.origin.get("network.egress", (display,)))

    def where(key: str) -> str:
        return ", ".join(layer.origin.get(key, (display,)))

    if layer.proxy:
        raise ConfigError(
            "network.egress and network.proxy cannot be used together yet "
            f"(network.proxy is set in {where('network.proxy')})",
            file=file,
            key="network.egress",
            hint="remove network.proxy (egress already limits where the sandbox connects), "
            "or remove network.egress to keep the proxy",
        )
    if allow_all_lan:
        star = layer.lan_access.index("*")
        raise ConfigError(
            'network.egress cannot be used together with lan-access = ["*"] yet '
            f"(set in {where(f'network.lan-access[{star}]')})",
            file=file,
            key="network.egress",
            hint='list the LAN ranges the sandbox needs in lan-access instead of "*", '
            'e.g. lan-access = ["192.168.1.0/24"], or remove network.egress',
        )


def _finalise(
    layer: Layer,
    *,
    root: Path,
    config_file: Path,
    files: list[Path],
    display: str,
    environ: Mapping[str, str],
) -> Config:
    values: dict[str, Any] = {}
    for spec in FIELDS:
        value = getattr(layer, spec.attr)
        if spec.required and not value:
            raise ConfigError(
                f"{spec.key} is required", file=display, key=spec.key, hint=spec.required
            )
        values[spec.attr] = spec.final(value)
    _check_mount_targets(layer, values["workdir"], display)
    allow_all, rules = parse_lan_access(layer.lan_access)
    _check_egress_combinations(layer, allow_all, display)
    mounts = _resolve_private(values.pop("mounts"), root, environ)
    return Config(
        project_root=root,
        config_file=config_file,
        files=tuple(files),
        **values,
        mounts=mounts,
        allow_all_lan=allow_all,
        lan_rules=rules,
        proxy_text=layer.proxy,
        egress_text=layer.egress,
        origin=dict(layer.origin),
    )


def _resolve_private(
    mounts: tuple[Mount, ...], root: Path, environ: Mapping[str, str]
) -> tuple[Mount, ...]:
    """`${alca:PRIVATE}/NAME` sources as paths under this project's per-user state."""
    if not any(private.is_private(m.source) for m in mounts):
        return mounts
    home = alca_home(dict(environ))
    return tuple(
        dataclasses.replace(m, source=private.resolve(m.source, home, root))
        if private.is_private(m.source)
        else m
        for m in mounts
    )


def load_config(
    project_root: Path,
    *,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Config:
    """Load `<project_root>/.alca.toml` with everything it extends and includes."""
    env = os.environ if environ is None else environ
    config_file = project_root / CONFIG_NAME
    if not os.path.lexists(config_file):
        raise NotInitializedError(
            "configuration not found: run 'alca init' first",
            hint=f"no {CONFIG_NAME} in {project_root} or any parent directory",
        )
    resolver = Resolver(env, cwd if cwd is not None else Path.cwd(), project_root)
    layer = resolver.resolve(config_file)
    return _finalise(
        layer,
        root=project_root,
        config_file=config_file,
        files=resolver.files,
        display=resolver.display(config_file),
        environ=env,
    )
