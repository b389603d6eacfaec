"""Agent presets for `alca init --agent NAME`: data files in `alcatraz/presets/*.toml`.

A preset adds one agent to the `agent` template: its install step in `commands.up`, its
mounts (each with the reason for its read-only or read-write choice), and its API-key
variables passed by name. Adding a preset is adding a file; nothing here names an agent.

The host agent executes what its config directory holds (hooks in settings, plugins, MCP
servers, commands), so a preset never mounts any of it writable (issue 13): the agent's own
directory is sandbox-private (`${alca:PRIVATE}/NAME`), the user's settings and instructions
are bound read-only on top, and only the login file (`login = true`, a plain file) is
writable. `_check_exposure` enforces this for every shipped preset.

Host paths that do not exist when `init` runs are written commented out, with a note:
`alca up` refuses a missing mount source outside the project, and creating directories in
the user's home on their behalf would be a side effect they did not ask for.
"""

from __future__ import annotations

import dataclasses
import os
import re
import stat
import textwrap
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final

from alcatraz.config import private
from alcatraz.errors import AlcaError, ExitCode, UsageError, quote
from alcatraz.init import templates
from alcatraz.printable import printable_ascii

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
    login: bool = False  # the agent's login file: the one kind of host file mounted writable

    @property
    def private(self) -> bool:
        """A sandbox-private directory (`${alca:PRIVATE}/NAME`), not a host path."""
        return private.is_private(self.source)


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
    egress: tuple[str, ...] = ()  # internet names the agent needs, on top of the template's
    #: (NAME, value, why): settings the agent needs inside a sandbox, written to [envs]
    envs: tuple[tuple[str, str, str], ...] = ()


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
    login = item.get("login", False)
    if not all(isinstance(v, bool) for v in (readonly, enabled, login)):
        raise _broken(
            name, "mounts need readonly = true/false (explicitly), boolean enabled and login"
        )
    mount = PresetMount(
        source=_text(name, item, "source"),
        target=_text(name, item, "target"),
        readonly=bool(readonly),
        why=_text(name, item, "why"),
        enabled=bool(enabled),
        login=bool(login),
    )
    _check_exposure(name, mount)
    return mount


def _check_exposure(name: str, mount: PresetMount) -> None:
    """The rule of issue 13: nothing the host agent executes is mounted writable.

    A writable mount is either a sandbox-private directory or a login file (`login = true`,
    a file name, never a directory); every other host path is read-only.
    """
    if mount.private:
        private.private_name(mount.source, key="source")  # raises on a malformed token
        if mount.login:
            raise _broken(name, f"{mount.source} is private, so it cannot be a login file")
        return
    if not (mount.source == "~" or mount.source.startswith("~/")):
        raise _broken(name, f"mount source {mount.source} must be under ~/ or ${{alca:PRIVATE}}")
    if mount.login and mount.readonly:
        raise _broken(name, f"login file {mount.source} must be writable (readonly = false)")
    if not mount.readonly and not mount.login:
        raise _broken(
            name,
            f"{mount.source} is a host path mounted writable; only login files "
            "(login = true) may be, everything else read-only or ${alca:PRIVATE}",
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
        egress=_egress(name, data),
        envs=_envs(name, data),
    )


def _envs(name: str, data: Mapping[str, Any]) -> tuple[tuple[str, str, str], ...]:
    items = data.get("envs", [])
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise _broken(name, "envs must be an array of tables")
    envs = tuple(
        (_text(name, i, "name"), _text(name, i, "value"), _text(name, i, "why")) for i in items
    )
    bad = [n for n, _, _ in envs if not _VARIABLE.fullmatch(n)]
    if bad:
        raise _broken(name, "invalid variable names " + ", ".join(bad))
    return envs


def _egress(name: str, data: Mapping[str, Any]) -> tuple[str, ...]:
    """The preset's egress entries, each checked by the egress grammar."""
    from alcatraz.config.netgrammar import GrammarError, parse_egress_rule, render_egress_rule

    entries = _strings(name, data, "egress")
    for entry in entries:
        try:
            canonical = render_egress_rule(parse_egress_rule(entry))
        except GrammarError as error:
            raise _broken(name, f"egress: {error.message}") from None
        if canonical != entry:
            raise _broken(name, f"egress: write {quote(entry)} as {quote(canonical)}")
    return entries


def egress_for(preset: AgentPreset) -> tuple[str, ...]:
    """What the sandbox of `preset` may reach: the template's set-up, then the agent's."""
    return tuple(dict.fromkeys((*templates.AGENT_EGRESS, *preset.egress)))


def host_path(source: str, environ: Mapping[str, str]) -> str:
    """`~/x` with the HOME of `environ` (the one `load_config` will use too)."""
    if source == "~" or source.startswith("~/"):
        return environ.get("HOME", os.path.expanduser("~")) + source[1:]
    return os.path.expanduser(source)


def _plain_file(path: str) -> bool:
    """A regular file that is not a symlink: the only kind of login source mounted writable.

    A writable bind of a symlink would follow it on every start; a directory would expose
    whatever else the agent keeps next to its login.
    """
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _first_link(home: str, path: str) -> str | None:
    """The first symlink among `path` and its parents below `home`, or None.

    Earlier presets mounted whole agent directories writable, so a sandbox may have planted
    a link there (`~/.claude/commands -> ~/.ssh`); a read-only bind would then show its
    target inside. The user's own dotfile links look the same, so such a mount is offered
    commented out, for the user to check, rather than silently followed.
    """
    relative = os.path.relpath(path, home)
    if relative.startswith(".."):
        return None
    current = home
    for part in relative.split(os.sep):
        current = os.path.join(current, part)
        if os.path.islink(current):
            return current
    return None


def _not_mounted(mount: PresetMount, environ: Mapping[str, str]) -> tuple[str, str] | None:
    """Why an enabled host mount is written commented out: (note for init, TOML comment)."""
    path = host_path(mount.source, environ)
    if not os.path.lexists(path):
        return (
            f"{mount.source} does not exist yet, so its mount is commented out",
            f"{mount.source} did not exist at init: create it, then uncomment",
        )
    home = host_path("~", environ)
    link = _first_link(home, path)
    if link is not None:
        shown = "~" + link[len(home) :]
        target = printable_ascii(os.readlink(link))
        return (
            f"{shown} is a symbolic link (to {target}); check that you made it, then "
            f"uncomment the mount of {mount.source}, which is commented out",
            f"{shown} is a symbolic link at init: check it is yours, then uncomment",
        )
    if mount.login and not _plain_file(path):
        return (
            f"{mount.source} is not a plain file, so this login is not mounted writable; "
            "its mount is commented out",
            f"{mount.source} is not a plain file, so it is not mounted writable",
        )
    return None


def _mount_lines(preset: AgentPreset, environ: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """TOML lines for the mounts array, and a note for each source left commented out."""
    lines: list[str] = []
    notes: list[str] = []
    for mount in preset.mounts:
        entry = (
            f"{{ source = {templates.toml_string(mount.source)}, "
            f"target = {templates.toml_string(mount.target)}, "
            f"readonly = {'true' if mount.readonly else 'false'} }},"
        )
        lines += [f"# {part}" for part in textwrap.wrap(mount.why, 90)]
        reason = None if not mount.enabled or mount.private else _not_mounted(mount, environ)
        if reason is not None:
            notes.append(reason[0])
            lines.append(f"# {reason[1]}")
        lines.append(f"# {entry}" if not mount.enabled or reason is not None else entry)
    return lines, notes


def _up(preset: AgentPreset) -> str:
    base = templates.TEMPLATES["agent"].up
    if preset.packages:
        base += "apt-get install -y --no-install-recommends " + " ".join(preset.packages) + "\n"
    install = "\n".join("  " + line for line in preset.install.strip().splitlines())
    return base + f"if ! command -v {preset.command} >/dev/null 2>&1; then\n{install}\nfi\n"


def template_for(
    preset: AgentPreset, environ: Mapping[str, str]
) -> tuple[templates.Template, list[str]]:
    """The `agent` template with this agent added, and notes on mounts left commented out."""
    agent = templates.TEMPLATES["agent"]
    mount_lines, notes = _mount_lines(preset, environ)
    path = ":".join([*preset.path, "/root/.npm-global/bin", "$PATH"])
    settings = [
        line
        for env_name, value, why in preset.envs
        for line in (
            *(f"# {part}" for part in textwrap.wrap(why, 90)),
            f"{env_name} = {templates.toml_string(value)}",
        )
    ]
    env_lines = (
        *settings,
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
            "From your home only the agent's login is writable; its settings, instructions",
            "and commands are read-only, its own state is private to this sandbox (see mounts).",
        ),
        up_comment=f"prepare the environment and install {preset.command} (skipped once present)",
        up=_up(preset),
        enter=f'export PATH="{path}"\n',
        mount_lines=tuple(mount_lines),
        env_lines=env_lines,
        egress=egress_for(preset),
        agent=preset.name,
    )
    return template, notes


#: Host-executed agent files no preset mounts at all (so the presets cannot list them).
_NEVER_MOUNTED: Final = (
    "~/.claude.json",
    "~/.claude/plugins",
    "~/.gemini/extensions",
    "~/.config/opencode/plugins",
    "~/.local/share/opencode/bin",
    "~/.cache/opencode",
)


def host_executed_paths(environ: Mapping[str, str]) -> list[str]:
    """Host files the agents execute or obey: every preset's read-only host sources, and
    the few no preset mounts. Writing any of them from a sandbox steers the host's agent."""
    sources = [
        m.source
        for name in preset_names()
        for m in load_preset(name).mounts
        if m.readonly and not m.private
    ]
    return sorted({os.path.normpath(host_path(s, environ)) for s in [*sources, *_NEVER_MOUNTED]})


def writable_agent_config(
    mounts: Sequence[tuple[str, bool]], environ: Mapping[str, str]
) -> list[tuple[str, str]]:
    """(mount source, host-executed path) pairs a writable mount exposes.

    A mount exposes a path when it is that path, a directory holding it (`~/.claude`, or
    `~` itself), or a directory inside it (`~/.claude/commands/sub`). For configurations
    written by earlier presets, which mounted whole agent directories read-write.
    """
    found: list[tuple[str, str]] = []
    for source, readonly in mounts:
        if readonly:
            continue
        mounted = os.path.normpath(source)
        for path in host_executed_paths(environ):
            if _within(path, mounted) or _within(mounted, path):
                found.append((source, path))
    return found


def _within(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)
