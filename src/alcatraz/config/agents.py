"""Agent presets for `alca init --agent NAME`: data files in `alcatraz/presets/*.toml`.

A preset adds one agent to the `agent` template: its install step in `commands.up`, its
config and credential directories as mounts (each with the reason for its read-only or
read-write choice), and its API-key variables passed by name. Adding a preset is adding a
file; nothing here names an agent.

Host paths that do not exist when `init` runs are written commented out, with a note:
`alca up` refuses a missing mount source outside the project, and creating directories in
the user's home on their behalf would be a side effect they did not ask for.
"""

from __future__ import annotations

import dataclasses
import os
import re
import textwrap
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final

from alcatraz.config import templates
from alcatraz.errors import AlcaError, ExitCode, UsageError, quote

_PACKAGE: Final = "alcatraz"
_DIRECTORY: Final = "presets"
_NAME: Final = re.compile(r"[a-z][a-z0-9-]*")
_VARIABLE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class PresetMount:
    source: str  # a host path, usually `~/...`
    target: str
    readonly: bool
    why: str  # shown as the comment above the mount
    enabled: bool = True  # False: offered as a commented-out line only


@dataclass(frozen=True)
class AgentPreset:
    name: str
    label: str
    command: str  # the agent's program, to skip reinstalling it
    install: str  # shell, run by `commands.up` when `command` is missing
    unrestricted: str  # the one command that starts it without its own prompts
    keys: tuple[str, ...] = ()
    mounts: tuple[PresetMount, ...] = ()
    packages: tuple[str, ...] = ()  # extra Debian packages the install step needs
    path: tuple[str, ...] = ()  # extra PATH entries inside the sandbox


def _files() -> dict[str, Any]:
    folder = resources.files(_PACKAGE).joinpath(_DIRECTORY)
    return {
        entry.name[: -len(".toml")]: entry
        for entry in folder.iterdir()
        if entry.name.endswith(".toml") and _NAME.fullmatch(entry.name[: -len(".toml")])
    }


def preset_names() -> list[str]:
    """Valid `--agent` values, sorted."""
    return sorted(_files())


def _broken(name: str, detail: str) -> AlcaError:
    return AlcaError(
        f"the shipped agent preset {quote(name)} is invalid: {detail}",
        hint="reinstall alcatraz; if it persists, report it",
        exit_code=ExitCode.INTERNAL,
    )


def _strings(name: str, data: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _broken(name, f"{key} must be a list of strings")
    return tuple(value)


def _text(name: str, data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise _broken(name, f"{key} must be a non-empty string")
    return value


def _mount(name: str, item: Any) -> PresetMount:
    if not isinstance(item, dict):
        raise _broken(name, "each [[mounts]] entry must be a table")
    readonly = item.get("readonly")
    enabled = item.get("enabled", True)
    if not isinstance(readonly, bool) or not isinstance(enabled, bool):
        raise _broken(name, "mounts need readonly = true/false (explicitly) and a boolean enabled")
    return PresetMount(
        source=_text(name, item, "source"),
        target=_text(name, item, "target"),
        readonly=readonly,
        why=_text(name, item, "why"),
        enabled=enabled,
    )


def load_preset(name: str) -> AgentPreset:
    """The preset called `name`; an unknown name is a usage error listing the valid ones."""
    files = _files()
    if name not in files:
        raise UsageError(f"unknown agent {quote(name)}, valid options: " + ", ".join(sorted(files)))
    try:
        data = tomllib.loads(files[name].read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise _broken(name, str(error)) from None
    keys = _strings(name, data, "keys")
    bad = [k for k in keys if not _VARIABLE.fullmatch(k)]
    if bad:
        raise _broken(name, "invalid variable names " + ", ".join(bad))
    mounts = data.get("mounts", [])
    if not isinstance(mounts, list):
        raise _broken(name, "mounts must be an array of tables")
    return AgentPreset(
        name=name,
        label=_text(name, data, "label"),
        command=_text(name, data, "command"),
        install=_text(name, data, "install"),
        unrestricted=_text(name, data, "unrestricted"),
        keys=keys,
        mounts=tuple(_mount(name, m) for m in mounts),
        packages=_strings(name, data, "packages"),
        path=_strings(name, data, "path"),
    )


def host_path(source: str, environ: Mapping[str, str]) -> str:
    """`~/x` with the HOME of `environ` (the one `load_config` will use too)."""
    if source == "~" or source.startswith("~/"):
        return environ.get("HOME", os.path.expanduser("~")) + source[1:]
    return os.path.expanduser(source)


def _mount_lines(preset: AgentPreset, environ: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """TOML lines for the mounts array, and the sources that were missing at init."""
    lines: list[str] = []
    missing: list[str] = []
    for mount in preset.mounts:
        entry = (
            f"{{ source = {templates.toml_string(mount.source)}, "
            f"target = {templates.toml_string(mount.target)}, "
            f"readonly = {'true' if mount.readonly else 'false'} }},"
        )
        lines += [f"# {part}" for part in textwrap.wrap(mount.why, 90)]
        if not mount.enabled:
            lines.append(f"# {entry}")
        elif not os.path.lexists(host_path(mount.source, environ)):
            missing.append(mount.source)
            lines.append(f"# {mount.source} did not exist at init: create it, then uncomment")
            lines.append(f"# {entry}")
        else:
            lines.append(entry)
    return lines, missing


def _up(preset: AgentPreset) -> str:
    base = templates.TEMPLATES["agent"].up
    if preset.packages:
        base += "apt-get install -y --no-install-recommends " + " ".join(preset.packages) + "\n"
    install = "\n".join("  " + line for line in preset.install.strip().splitlines())
    return base + f"if ! command -v {preset.command} >/dev/null 2>&1; then\n{install}\nfi\n"


def template_for(
    preset: AgentPreset, environ: Mapping[str, str]
) -> tuple[templates.Template, list[str]]:
    """The `agent` template with this agent added, and the mount sources left commented out."""
    agent = templates.TEMPLATES["agent"]
    mount_lines, missing = _mount_lines(preset, environ)
    path = ":".join([*preset.path, "/root/.npm-global/bin", "$PATH"])
    env_lines = (
        "# API keys are passed by name from your shell, when the container is created and on every",
        "# `alca run`; their values are never written here. Unset variables are skipped.",
        *(
            f"{k} = {{ value = {templates.toml_string('${' + k + '}')}, override_on_enter = true }}"
            for k in preset.keys
        ),
    )
    template = dataclasses.replace(
        agent,
        name=preset.name,
        label=preset.label,
        intro=(
            f"A sandbox for {preset.label}, installed by `commands.up` on `alca up`.",
            "Start it unrestricted (the sandbox, not the agent, is the boundary):",
            f"  {preset.unrestricted}",
            "Only the agent's own config and login are mounted from your home (see mounts).",
        ),
        up_comment=f"prepare the environment and install {preset.command} (skipped once present)",
        up=_up(preset),
        enter=f'export PATH="{path}"\n',
        mount_lines=tuple(mount_lines),
        env_lines=env_lines,
    )
    return template, missing
