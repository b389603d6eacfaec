"""One file's configuration, validated and normalised, ready to merge.

`normalise()` turns a msgspec `ConfigLayer` into a `Layer`: every rule, port, proxy, size,
capability and mount is parsed here, at load time, so nothing invalid reaches `up`. Paths
are resolved relative to the declaring file, which is why this needs the file's directory.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Final

from alcatraz.config import model, private
from alcatraz.config.expand import check_env_key, check_env_value, expand_strict
from alcatraz.config.netgrammar import (
    GrammarError,
    PortMapping,
    parse_lan_rule,
    parse_port,
    parse_proxy,
    port_from_object,
)
from alcatraz.errors import ConfigError, quote

#: Every capability Linux knows (capabilities(7)), for typo detection.
LINUX_CAPS: Final = frozenset(
    [
        "AUDIT_CONTROL",
        "AUDIT_READ",
        "AUDIT_WRITE",
        "BLOCK_SUSPEND",
        "BPF",
        "CHECKPOINT_RESTORE",
        "CHOWN",
        "DAC_OVERRIDE",
        "DAC_READ_SEARCH",
        "FOWNER",
        "FSETID",
        "IPC_LOCK",
        "IPC_OWNER",
        "KILL",
        "LEASE",
        "LINUX_IMMUTABLE",
        "MAC_ADMIN",
        "MAC_OVERRIDE",
        "MKNOD",
        "NET_ADMIN",
        "NET_BIND_SERVICE",
        "NET_BROADCAST",
        "NET_RAW",
        "PERFMON",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYSLOG",
        "SYS_ADMIN",
        "SYS_BOOT",
        "SYS_CHROOT",
        "SYS_MODULE",
        "SYS_NICE",
        "SYS_PACCT",
        "SYS_PTRACE",
        "SYS_RAWIO",
        "SYS_RESOURCE",
        "SYS_TIME",
        "SYS_TTY_CONFIG",
        "WAKE_ALARM",
    ]
)

_MEMORY = re.compile(r"(?P<number>\d+(?:\.\d+)?) ?(?P<unit>[bkmgtp])?(?:i?b)?", re.IGNORECASE)
_UNIT_BYTES: Final = {"b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
MIN_MEMORY_BYTES: Final = 6 << 20  # Docker's own minimum
_IMAGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@+-]*")
_FORBIDDEN_TARGETS: Final = ("/", "/proc", "/sys", "/dev")


@dataclass(frozen=True)
class Command:
    """A container command and whether it extends the layer below."""

    command: str
    append: bool = False


@dataclass(frozen=True)
class Mount:
    """A host directory or file made visible in the container."""

    source: str  # absolute host path
    target: str  # absolute container path
    readonly: bool = False
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True)
class EnvVar:
    """An environment variable: a literal or exactly `${NAME}` from the host."""

    value: str
    override_on_enter: bool = False


@dataclass(frozen=True)
class Caps:
    """Capabilities to drop and add, in `docker run` terms."""

    drop: tuple[str, ...]
    add: tuple[str, ...]

    @property
    def has_entries(self) -> bool:
        return bool(self.drop or self.add)


@dataclass
class Layer:
    """What one file (or a merge of files) sets; None/empty means "not set"."""

    image: str | None = None
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
    ports: tuple[PortMapping, ...] | None = None
    proxy: str | None = None
    host_ca: bool | None = None
    caps: Caps | None = None
    post_up: str | None = None
    pre_down: str | None = None
    #: Key path -> files that set it, for `alca config show`.
    origin: dict[str, tuple[str, ...]] = field(default_factory=dict)


def _fail(key: str, error: GrammarError | ConfigError) -> ConfigError:
    if isinstance(error, GrammarError):
        return ConfigError(error.message, key=key, hint=error.hint)
    return error.located(key=key)


def _check_text(key: str, value: str, what: str) -> None:
    if not value.strip():
        raise ConfigError(
            f"{what} must not be empty", key=key, hint=f"set a {what} or remove the key"
        )
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ConfigError(
            f"{what} {quote(value)} contains a control character",
            key=key,
            hint="remove newlines, tabs and other control characters",
        )


def _check_image(value: str) -> None:
    _check_text("image", value, "image")
    if not _IMAGE.fullmatch(value):
        raise ConfigError(
            f"invalid image reference {quote(value)}",
            key="image",
            hint='use a reference such as "alpine:3.21" or "ghcr.io/org/image:tag" '
            "(no spaces, not starting with '-')",
        )


def _check_container_path(key: str, value: str, what: str) -> str:
    _check_text(key, value, what)
    if not value.startswith("/"):
        raise ConfigError(
            f"{what} {quote(value)} is not an absolute path",
            key=key,
            hint=f'write it from the container root, e.g. "/{value.lstrip("./")}"',
        )
    normal = str(PurePosixPath(os.path.normpath(value)))
    if normal.startswith("//"):
        normal = "/" + normal.lstrip("/")
    for forbidden in _FORBIDDEN_TARGETS:
        if normal == forbidden or (forbidden != "/" and normal.startswith(forbidden + "/")):
            raise ConfigError(
                f"{what} {quote(value)} would cover the container's {forbidden}",
                key=key,
                hint="choose a directory of your own, e.g. /workspace or /data",
            )
    return normal


def parse_memory(value: str) -> int:
    """Bytes of a Docker-style size ("4g", "512m", "1.5GiB"); raises ConfigError."""
    match = _MEMORY.fullmatch(value.strip()) if value == value.strip() else None
    if match is None:
        raise ConfigError(
            f"invalid memory size {quote(value)}",
            key="resources.memory",
            hint='write a number with an optional unit b, k, m, g, t or p, e.g. "4g" or "512m"',
        )
    unit = (match.group("unit") or "b").lower()
    size = float(match.group("number")) * _UNIT_BYTES[unit]
    if size < MIN_MEMORY_BYTES:
        raise ConfigError(
            f"memory size {quote(value)} is below the 6m minimum container engines accept",
            key="resources.memory",
            hint='give at least "6m"; "512m" or more is realistic for an agent',
        )
    return int(size)


def _check_cpus(value: float) -> float:
    if isinstance(value, bool) or not math.isfinite(value) or value < 0:
        raise ConfigError(
            f"invalid cpus value {value!r}",
            key="resources.cpus",
            hint="give a positive number such as 2 or 1.5 (0 means no limit)",
        )
    if value > 4096:
        raise ConfigError(
            f"cpus value {value!r} is larger than any machine",
            key="resources.cpus",
            hint="give the number of CPUs the container may use, e.g. 2",
        )
    return float(value)


def normalise_cap(key: str, name: str) -> str:
    """Upper-case, without `CAP_`; unknown names are errors with a suggestion."""
    import difflib

    if not isinstance(name, str) or not name.strip():
        raise ConfigError("capability name must not be empty", key=key, hint='e.g. "NET_RAW"')
    cap = name.strip().upper()
    cap = cap.removeprefix("CAP_")
    if cap != "ALL" and cap not in LINUX_CAPS:
        close = difflib.get_close_matches(cap, sorted(LINUX_CAPS), n=1)
        raise ConfigError(
            f"unknown capability {quote(name)}",
            key=key,
            hint=(f"did you mean {close[0]}? " if close else "")
            + "see capabilities(7) for the names (without the CAP_ prefix)",
        )
    return cap


def _unique(items: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _normalise_caps(raw: list[str] | model.CapsSpec) -> Caps:
    if isinstance(raw, list):
        extras = [normalise_cap(f"caps[{i}]", c) for i, c in enumerate(raw)]
        if "ALL" in extras:
            raise ConfigError(
                'adding "ALL" capabilities would give the agent full root power',
                key="caps",
                hint='list the capabilities you need, or use caps = { add = ["ALL"] } '
                "if you really mean it",
            )
        return Caps(drop=("ALL",), add=_unique([*model.DEFAULT_CAPS, *extras]))
    drop = [normalise_cap(f"caps.drop[{i}]", c) for i, c in enumerate(raw.drop)]
    add = [normalise_cap(f"caps.add[{i}]", c) for i, c in enumerate(raw.add)]
    return Caps(drop=_unique(drop), add=_unique(add))


def _command(key: str, raw: str | model.CommandSpec) -> Command:
    command = Command(raw) if isinstance(raw, str) else Command(raw.command, raw.append)
    if "\x00" in command.command:
        raise ConfigError("command contains a NUL character", key=key, hint="remove it")
    return command


def resolve_host_path(raw: str, *, key: str, base_dir: Path, environ: Mapping[str, str]) -> str:
    """Expand variables and `~`, then resolve relative to the declaring file's directory."""
    try:
        expanded = expand_strict(raw, environ)
    except ConfigError as error:
        raise error.located(key=key) from None
    if expanded.startswith("~"):
        home_expanded = os.path.expanduser(expanded)
        if expanded.startswith("~/") or expanded == "~":
            home = environ.get("HOME")
            if home:
                home_expanded = home + expanded[1:]
        if home_expanded.startswith("~"):
            raise ConfigError(
                f"cannot expand {quote(raw)}: no such user",
                key=key,
                hint="write the home directory as ~/... or as an absolute path",
            )
        expanded = home_expanded
    if not expanded:
        raise ConfigError("mount source must not be empty", key=key, hint="give a host path")
    if any(ord(ch) < 32 for ch in expanded):
        raise ConfigError(
            f"mount source {quote(expanded)} contains a control character",
            key=key,
            hint="rename the directory, or mount a parent directory instead",
        )
    path = Path(expanded)
    if not path.is_absolute():
        path = base_dir / path
    return os.path.normpath(path)


def _parse_mount_string(raw: str, key: str) -> tuple[str, str, bool]:
    parts = raw.split(":")
    if len(parts) not in (2, 3):
        raise ConfigError(
            f'invalid mount {quote(raw)}: expected "source:target" or "source:target:ro"',
            key=key,
            hint='use the table form { source = "...", target = "..." } for paths containing ":"',
        )
    readonly = False
    if len(parts) == 3:
        if parts[2] not in ("ro", "rw"):
            raise ConfigError(
                f"invalid mount option {quote(parts[2])} in {quote(raw)}",
                key=key,
                hint='the only options are "ro" (read-only) and "rw" (the default)',
            )
        readonly = parts[2] == "ro"
    if not parts[0]:
        raise ConfigError(
            f"mount {quote(raw)} has an empty source", key=key, hint="give a host path"
        )
    if not parts[1]:
        raise ConfigError(
            f"mount {quote(raw)} has an empty target", key=key, hint="give a container path"
        )
    return parts[0], parts[1], readonly


def _check_patterns(key: str, patterns: list[str]) -> tuple[str, ...]:
    for i, pattern in enumerate(patterns):
        where = f"{key}[{i}]"
        if not pattern or not pattern.strip():
            raise ConfigError("exclude pattern must not be empty", key=where, hint='e.g. "**/.env"')
        if any(ord(ch) < 32 for ch in pattern):
            raise ConfigError(
                f"exclude pattern {quote(pattern)} contains a control character",
                key=where,
                hint="remove it",
            )
        if pattern.startswith("!"):
            raise ConfigError(
                f"negated pattern {quote(pattern)} is not supported",
                key=where,
                hint="a later pattern must never re-include a hidden secret; "
                "list only what to hide",
            )
        if pattern != pattern.strip():
            raise ConfigError(
                f"exclude pattern {quote(pattern)} has leading or trailing spaces",
                key=where,
                hint="remove the spaces",
            )
        if pattern.count("[") != pattern.count("]"):
            raise ConfigError(
                f"exclude pattern {quote(pattern)} has an unclosed bracket",
                key=where,
                hint='close the character class, e.g. "*.[ch]"',
            )
    return tuple(patterns)


def _check_protected(key: str, paths: list[str]) -> tuple[str, ...]:
    """Project-relative paths, written plainly: a protected path must mean one host path."""
    for i, path in enumerate(paths):
        where = f"{key}[{i}]"
        example = 'e.g. ".vscode/" or ".git/hooks/"'
        if not path.strip("/ "):
            raise ConfigError("path must not be empty", key=where, hint=example)
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in path):
            raise ConfigError(
                f"path {quote(path)} contains a control character", key=where, hint="remove it"
            )
        if path.startswith(("/", "~")):
            raise ConfigError(
                f"path {quote(path)} is not relative to the project root",
                key=where,
                hint=f"write it from the project root, {example}",
            )
        parts = path.rstrip("/").split("/")
        if any(part in ("", ".", "..") for part in parts):
            raise ConfigError(
                f"path {quote(path)} has an empty, '.' or '..' component",
                key=where,
                hint=f"name the path inside the project plainly, {example}",
            )
        if set(path) & set("*?[]"):
            raise ConfigError(
                f"path {quote(path)} contains a glob character",
                key=where,
                hint="list each path; protect a whole directory with a trailing '/'",
            )
    return tuple(dict.fromkeys(paths))


def _mounts(
    raw: list[str | model.MountSpec], *, base_dir: Path, environ: Mapping[str, str]
) -> tuple[Mount, ...]:
    mounts: list[Mount] = []
    for i, item in enumerate(raw):
        key = f"mounts[{i}]"
        if isinstance(item, str):
            if private.is_private(item):
                raise ConfigError(
                    f"mount {quote(item)} uses a token in the string form",
                    key=key,
                    hint='use the table form { source = "${alca:PRIVATE}/NAME", target = "..." }',
                )
            source, target, readonly = _parse_mount_string(item, key)
            exclude: tuple[str, ...] = ()
        else:
            source, target, readonly = item.source, item.target, item.readonly
            if not source:
                raise ConfigError(
                    "mount source is required", key=f"{key}.source", hint="give a host path"
                )
            exclude = _check_patterns(f"{key}.exclude", item.exclude)
        target = _check_container_path(
            key if isinstance(item, str) else f"{key}.target", target, "mount target"
        )
        if private.is_private(source):
            # Kept as written; load_config resolves it once the project root is known.
            private.private_name(source, key=f"{key}.source")
            mounts.append(Mount(source, target, readonly, exclude))
            continue
        host = resolve_host_path(
            source,
            key=f"{key}.source" if not isinstance(item, str) else key,
            base_dir=base_dir,
            environ=environ,
        )
        mounts.append(Mount(host, target, readonly, exclude))
    return tuple(mounts)


def normalise(
    raw: model.ConfigLayer, *, file: str, base_dir: Path, environ: Mapping[str, str]
) -> Layer:
    """Validate one file's layer; errors carry `file` and the key path."""
    try:
        return _normalise(raw, file=file, base_dir=base_dir, environ=environ)
    except ConfigError as error:
        raise error.located(file=file) from None


def _normalise(
    raw: model.ConfigLayer, *, file: str, base_dir: Path, environ: Mapping[str, str]
) -> Layer:
    layer = Layer()
    origin: dict[str, tuple[str, ...]] = {}

    def note(key: str) -> None:
        origin[key] = (file,)

    if raw.image is not None:
        _check_image(raw.image)
        layer.image = raw.image
        note("image")
    if raw.workdir is not None:
        layer.workdir = _check_container_path("workdir", raw.workdir, "workdir")
        note("workdir")
    if raw.workdir_exclude is not None:
        layer.workdir_exclude = _check_patterns("workdir_exclude", raw.workdir_exclude)
        note("workdir_exclude")
    for name in ("workdir_protect", "workdir_unprotect"):
        values = getattr(raw, name)
        if values:
            setattr(layer, name, _check_protected(name, values))
            for i in range(len(values)):
                note(f"{name}[{i}]")
    if raw.runtime is not None:
        if raw.runtime not in model.RUNTIMES:
            import difflib

            close = difflib.get_close_matches(raw.runtime.lower(), model.RUNTIMES, n=1)
            raise ConfigError(
                f"unknown runtime {quote(raw.runtime)}",
                key="runtime",
                hint=(f'did you mean "{close[0]}"? ' if close else "")
                + 'use "auto", "docker" or "podman"',
            )
        layer.runtime = raw.runtime
        note("runtime")
    if raw.commands is not None:
        if raw.commands.up is not None:
            layer.up = _command("commands.up", raw.commands.up)
            note("commands.up")
        if raw.commands.enter is not None:
            layer.enter = _command("commands.enter", raw.commands.enter)
            note("commands.enter")
    if raw.mounts:
        layer.mounts = _mounts(raw.mounts, base_dir=base_dir, environ=environ)
        for i in range(len(layer.mounts)):
            note(f"mounts[{i}]")
    if raw.resources is not None:
        if raw.resources.memory is not None:
            parse_memory(raw.resources.memory)
            layer.memory = raw.resources.memory
            note("resources.memory")
        if raw.resources.cpus is not None:
            cpus = _check_cpus(raw.resources.cpus)
            if cpus > 0:
                layer.cpus = cpus
                note("resources.cpus")
    if raw.envs is not None:
        for name, value in raw.envs.items():
            key = f"envs.{name}" if re.fullmatch(r"[A-Za-z0-9_-]+", name) else f"envs.{quote(name)}"
            try:
                check_env_key(name)
                env = (
                    EnvVar(value)
                    if isinstance(value, str)
                    else EnvVar(value.value, value.override_on_enter)
                )
                check_env_value(env.value)
            except ConfigError as error:
                raise error.located(key=key) from None
            layer.envs[name] = env
            note(key)
    if raw.network is not None:
        network = raw.network
        if network.lan_access is not None:
            for i, rule in enumerate(network.lan_access):
                try:
                    parse_lan_rule(rule)
                except GrammarError as error:
                    raise _fail(f"network.lan-access[{i}]", error) from None
                note(f"network.lan-access[{i}]")
            layer.lan_access = tuple(network.lan_access)
        if network.ports is not None:
            ports: list[PortMapping] = []
            for i, port in enumerate(network.ports):
                try:
                    if isinstance(port, str):
                        ports.append(parse_port(port))
                    else:
                        ports.append(
                            port_from_object(port.port, port.host_port, port.host_ip, port.protocol)
                        )
                except GrammarError as error:
                    raise _fail(f"network.ports[{i}]", error) from None
            layer.ports = tuple(ports)
            note("network.ports")
        if network.proxy is not None:
            try:
                parse_proxy(network.proxy)
            except GrammarError as error:
                raise _fail("network.proxy", error) from None
            layer.proxy = network.proxy
            note("network.proxy")
        if network.host_ca is not None:
            layer.host_ca = network.host_ca
            note("network.host-ca")
    if raw.caps is not None:
        layer.caps = _normalise_caps(raw.caps)
        note("caps")
    if raw.hooks is not None:
        for name in ("post_up", "pre_down"):
            value = getattr(raw.hooks, name)
            if value is None:
                continue
            if "\x00" in value:
                raise ConfigError(
                    "hook contains a NUL character", key=f"hooks.{name}", hint="remove it"
                )
            setattr(layer, name, value)
            note(f"hooks.{name}")
    layer.origin = origin
    return layer
