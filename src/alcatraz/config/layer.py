"""One file's configuration, validated and normalised, ready to merge.

`normalise()` turns a msgspec `ConfigLayer` into a `Layer`: every rule, port, proxy, size,
capability and mount is parsed here, at load time, so nothing invalid reaches `up`. Paths
are resolved relative to the declaring file, which is why this needs the file's directory.
Which check applies to which key is the field table's (`alcatraz.config.fields`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from alcatraz.config import model
from alcatraz.config.caps import LINUX_CAPS, normalise_cap
from alcatraz.config.checks import MIN_MEMORY_BYTES, parse_memory
from alcatraz.config.fields import Context, in_model_order
from alcatraz.config.mounts import resolve_host_path
from alcatraz.config.netgrammar import PortMapping
from alcatraz.config.values import Caps, Command, EnvVar, Mount
from alcatraz.errors import ConfigError

__all__ = [
    "LINUX_CAPS",
    "MIN_MEMORY_BYTES",
    "Caps",
    "Command",
    "EnvVar",
    "Layer",
    "Mount",
    "normalise",
    "normalise_cap",
    "parse_memory",
    "resolve_host_path",
]


@dataclass
class Layer:
    """What one file (or a merge of files) sets; None/empty means "not set"."""

    image: str | None = None
    agent: str | None = None
    workdir: str | None = None
    workdir_exclude: tuple[str, ...] | None = None
    workdir_protect: tuple[str, ...] = ()
    workdir_unprotect: tuple[str, ...] = ()
    runtime: str | None = None
    up: Command | None = None
    enter: Command | None = None
    mounts: tuple[Mount, ...] = ()
    memory: str | None = None
    cpus: float | None = None
    envs: dict[str, EnvVar] = field(default_factory=dict)
    lan_access: tuple[str, ...] = ()
    egress: tuple[str, ...] | None = None  # None: no file sets it; (): `egress = []`
    dns: tuple[str, ...] | None = None
    ports: tuple[PortMapping, ...] | None = None
    proxy: str | None = None
    host_ca: bool | None = None
    caps: Caps | None = None
    post_up: str | None = None
    pre_down: str | None = None
    #: Key path -> files that set it, for `alca config show`.
    origin: dict[str, tuple[str, ...]] = field(default_factory=dict)


def normalise(
    raw: model.ConfigLayer, *, file: str, base_dir: Path, environ: Mapping[str, str]
) -> Layer:
    """Validate one file's layer; errors carry `file` and the key path."""
    try:
        return _normalise(raw, file=file, context=Context(base_dir, environ))
    except ConfigError as error:
        raise error.located(file=file) from None


def _normalise(raw: model.ConfigLayer, *, file: str, context: Context) -> Layer:
    layer = Layer()
    for spec in in_model_order():
        value = spec.read(raw)
        if value is None:
            continue
        value = spec.normalise(spec.key, value, context)
        if value is None:
            continue
        setattr(layer, spec.attr, value)
        layer.origin.update(dict.fromkeys(spec.origin_keys(value), (file,)))
    return layer
