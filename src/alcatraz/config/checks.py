"""Checks of single configuration values, each raising a `ConfigError` that names its key.

Pure: strings in, normalised values out. The field table (`alcatraz.config.fields`) says
which check applies to which key.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from pathlib import PurePosixPath
from typing import Final

from alcatraz.config import model
from alcatraz.config.expand import check_env_key, check_env_value
from alcatraz.config.netgrammar import (
    GrammarError,
    PortMapping,
    parse_dns_server,
    parse_egress_rule,
    parse_lan_rule,
    parse_port,
    parse_proxy,
    port_from_object,
)
from alcatraz.config.values import Command, EnvVar
from alcatraz.errors import ConfigError, quote

_MEMORY = re.compile(r"(?P<number>\d+(?:\.\d+)?) ?(?P<unit>[bkmgtp])?(?:i?b)?", re.IGNORECASE)
_UNIT_BYTES: Final = {"b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
MIN_MEMORY_BYTES: Final = 6 << 20  # Docker's own minimum
_AGENT_NAME = re.compile(r"[a-z][a-z0-9-]{0,39}")
_IMAGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@+-]*")
_FORBIDDEN_TARGETS: Final = ("/", "/proc", "/sys", "/dev")


def grammar_error(key: str, error: GrammarError | ConfigError) -> ConfigError:
    if isinstance(error, GrammarError):
        return ConfigError(error.message, key=key, hint=error.hint)
    return error.located(key=key)


def check_text(key: str, value: str, what: str) -> None:
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


def check_image(value: str) -> None:
    check_text("image", value, "image")
    if not _IMAGE.fullmatch(value):
        raise ConfigError(
            f"invalid image reference {quote(value)}",
            key="image",
            hint='use a reference such as "alpine:3.21" or "ghcr.io/org/image:tag" '
            "(no spaces, not starting with '-')",
        )


def check_container_path(key: str, value: str, what: str) -> str:
    check_text(key, value, what)
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


def check_cpus(value: float) -> float:
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


def parse_command(key: str, raw: str | model.CommandSpec) -> Command:
    command = Command(raw) if isinstance(raw, str) else Command(raw.command, raw.append)
    if "\x00" in command.command:
        raise ConfigError("command contains a NUL character", key=key, hint="remove it")
    return command


def check_patterns(key: str, patterns: list[str]) -> tuple[str, ...]:
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


def check_protected(key: str, paths: list[str]) -> tuple[str, ...]:
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


def check_runtime(value: str) -> None:
    if value not in model.RUNTIMES:
        close = difflib.get_close_matches(value.lower(), model.RUNTIMES, n=1)
        raise ConfigError(
            f"unknown runtime {quote(value)}",
            key="runtime",
            hint=(f'did you mean "{close[0]}"? ' if close else "")
            + 'use "auto", "docker" or "podman"',
        )


def check_agent(value: str) -> None:
    """A preset's name (not necessarily one this version ships: a config may be newer)."""
    if not _AGENT_NAME.fullmatch(value):
        raise ConfigError(
            f"invalid agent name {quote(value)}",
            key="agent",
            hint='write the preset name `alca init --agent` takes, e.g. agent = "claude"',
        )


def check_hook(key: str, value: str) -> str:
    if "\x00" in value:
        raise ConfigError("hook contains a NUL character", key=key, hint="remove it")
    return value


def name_key(key: str, name: str) -> str:
    """`envs.NAME`, quoted when the name is not a bare TOML key."""
    return f"{key}.{name}" if re.fullmatch(r"[A-Za-z0-9_-]+", name) else f"{key}.{quote(name)}"


def check_envs(key: str, raw: dict[str, str | model.EnvSpec]) -> dict[str, EnvVar]:
    """Names usable with `docker run -e`, values literal or exactly `${NAME}`."""
    envs: dict[str, EnvVar] = {}
    for name, value in raw.items():
        try:
            check_env_key(name)
            env = (
                EnvVar(value)
                if isinstance(value, str)
                else EnvVar(value.value, value.override_on_enter)
            )
            check_env_value(env.value)
        except ConfigError as error:
            raise error.located(key=name_key(key, name)) from None
        envs[name] = env
    return envs


def check_lan_access(key: str, rules: list[str]) -> tuple[str, ...]:
    """Each rule parses; they are kept as written and parsed again once merged."""
    for i, rule in enumerate(rules):
        try:
            parse_lan_rule(rule)
        except GrammarError as error:
            raise grammar_error(f"{key}[{i}]", error) from None
    return tuple(rules)


def check_egress(key: str, entries: list[str]) -> tuple[str, ...]:
    """Each entry parses; kept as written (an empty list too: it means "no internet")."""
    for i, entry in enumerate(entries):
        try:
            parse_egress_rule(entry)
        except GrammarError as error:
            raise grammar_error(f"{key}[{i}]", error) from None
    return tuple(entries)


def check_dns(key: str, servers: list[str]) -> tuple[str, ...]:
    """Each resolver parses; kept as written, rendered canonically once merged."""
    for i, server in enumerate(servers):
        try:
            parse_dns_server(server)
        except GrammarError as error:
            raise grammar_error(f"{key}[{i}]", error) from None
    return tuple(servers)


def parse_ports(key: str, raw: list[str | model.PortSpec]) -> tuple[PortMapping, ...]:
    """Both forms of a published port, as one `PortMapping` each."""
    ports: list[PortMapping] = []
    for i, port in enumerate(raw):
        try:
            if isinstance(port, str):
                ports.append(parse_port(port))
            else:
                ports.append(
                    port_from_object(port.port, port.host_port, port.host_ip, port.protocol)
                )
        except GrammarError as error:
            raise grammar_error(f"{key}[{i}]", error) from None
    return tuple(ports)


def check_proxy(key: str, value: str) -> str:
    try:
        parse_proxy(value)
    except GrammarError as error:
        raise grammar_error(key, error) from None
    return value


def cpus_limit(key: str, value: float) -> float | None:
    """The CPU limit, None for 0 (no limit)."""
    cpus = check_cpus(value)
    return cpus if cpus > 0 else None  # 0 means no limit: the same as not set
