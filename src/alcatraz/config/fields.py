"""Every `.alca.toml` field, declared once: key path, check, merge rule, default, display.

The msgspec model (`alcatraz.config.model`) parses a file strictly and holds each field's
user documentation; this table says what happens to the value after that. The normaliser
(`layer`), the merge (`merge`), the final configuration (`load`), `alca config show`
(`show`) and the merge section of the key reference (`reference`) all walk `FIELDS`, so a
new key is one entry here plus its model field and its typed attribute on `Layer` and
`Config` (a test checks that the four agree).

The order of `FIELDS` is the order `alca config show` prints them and the order the merge
records where values came from. Checks run in the model's order (`in_model_order`), so
the first error reported in a file does not depend on this table's order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from alcatraz.config import model
from alcatraz.config.caps import normalise_caps
from alcatraz.config.checks import (
    check_agent,
    check_container_path,
    check_dns,
    check_egress,
    check_envs,
    check_hook,
    check_image,
    check_lan_access,
    check_patterns,
    check_protected,
    check_proxy,
    check_runtime,
    cpus_limit,
    name_key,
    parse_command,
    parse_memory,
    parse_ports,
)
from alcatraz.config.mounts import normalise_mounts
from alcatraz.config.netgrammar import (
    parse_dns_server,
    parse_egress,
    parse_proxy,
    render_dns_server,
    render_port,
)
from alcatraz.config.protected import DEFAULT_PROTECTED
from alcatraz.config.values import Caps, Command, EnvVar, Mount


class Merge(Enum):
    """How a file merged above combines a field with the files below it."""

    OVERRIDE = "a file that sets {presence} replaces the value below"
    APPEND = "appended to the entries below"
    UNION = (
        "appended to the entries below; an empty list counts as set, so `[]` in any file "
        "differs from the key being absent from every file"
    )
    PER_NAME = "merged per name: an entry replaces the one of the same name below"
    COMMAND = (
        "a file that sets a non-empty command replaces the one below; with `append = true` "
        "it is joined to a non-empty command below with a space"
    )

    @property
    def appends(self) -> bool:
        """Whether the files' lists are concatenated (`key[i]` origins)."""
        return self in (Merge.APPEND, Merge.UNION)


class Presence(Enum):
    """When a value counts as set, for `Merge.OVERRIDE`."""

    NON_EMPTY = "a non-empty value"
    DEFINED = "any value (`false` too)"
    ENTRIES = "at least one entry"

    def holds(self, value: Any) -> bool:
        if self is Presence.DEFINED:
            return value is not None
        if self is Presence.ENTRIES:
            return isinstance(value, Caps) and value.has_entries
        return bool(value)


@dataclass(frozen=True)
class Context:
    """What checking a value may need besides the value: where its file is."""

    base_dir: Path
    environ: Mapping[str, str]


#: key, raw value (as msgspec parsed it), context -> the layer value, or None for "not set".
Normaliser = Callable[[str, Any, Context], Any]


@dataclass(frozen=True)
class Field:
    """One configuration key and everything the modules of `config` do with it."""

    key: str  # key path as written in .alca.toml, e.g. "network.lan-access"
    attr: str  # attribute on the model table, on `Layer` and on `Config`
    normalise: Normaliser
    merge: Merge = Merge.OVERRIDE
    presence: Presence = Presence.NON_EMPTY
    final: Callable[[Any], Any] = lambda value: value  # layer value -> `Config` value
    required: str | None = None  # hint when no file sets it; None: optional
    shown: Callable[[Any], Any] = lambda value: value  # `Config` value -> document value
    shown_attr: str | None = None  # `Config` attribute shown, when not `attr`
    optional: bool = False  # left out of `config show` when unset
    when_empty: str | None = None  # `config show` comment for an empty list; None: left out
    when_absent: str | None = None  # `config show` comment when no file sets a `UNION` list
    note: str | None = None  # `config show` comment line above the key
    default_origin: bool = False  # `config show --json` lists it as "default" when unset

    @property
    def table(self) -> str:
        """The [table] the key lives in ("" at the top level)."""
        return self.key.rpartition(".")[0]

    @property
    def name(self) -> str:
        """The key inside its table."""
        return self.key.rpartition(".")[2]

    @property
    def doc(self) -> str | None:
        """The field's user documentation, from the model."""
        return model.descriptions().get(self.key)

    @property
    def rule(self) -> str:
        """How the key combines across files, in words (for the key reference)."""
        return self.merge.value.format(presence=self.presence.value)

    def read(self, raw: model.ConfigLayer) -> Any:
        """The field's value in one parsed file, None when the file does not set it."""
        parent: Any = getattr(raw, self.table) if self.table else raw
        return None if parent is None else getattr(parent, self.attr)

    def origin_keys(self, value: Any) -> list[str]:
        """Key paths `config show` attributes to a file that sets `value`."""
        if self.merge is Merge.UNION:  # the key itself too: `[]` has no entries to name
            return [self.key, *(f"{self.key}[{i}]" for i in range(len(value)))]
        if self.merge is Merge.APPEND:
            return [f"{self.key}[{i}]" for i in range(len(value))]
        if self.merge is Merge.PER_NAME:
            return [name_key(self.key, name) for name in value]
        return [self.key]


# -- normalisers that adapt a check -----------------------------------------------------------


def _checked(check: Callable[[str], object]) -> Normaliser:
    """A normaliser that only checks: the value is kept as written."""

    def normalise(key: str, value: str, ctx: Context) -> str:
        check(value)
        return value

    return normalise


def _keyed(check: Callable[[str, Any], Any]) -> Normaliser:
    """A normaliser from a check that needs only the key and the value."""
    return lambda key, value, ctx: check(key, value)


# -- final values and their display ---------------------------------------------------------


def _final_command(command: Command | None) -> Command | None:
    return command if command and command.command else None


def _final_envs(envs: dict[str, EnvVar]) -> dict[str, EnvVar]:
    return {**{n: EnvVar(f"${{{n}}}", True) for n in model.DEFAULT_ENV_NAMES}, **envs}


def _final_caps(caps: Caps | None) -> Caps:
    return caps if caps is not None and caps.has_entries else Caps(("ALL",), model.DEFAULT_CAPS)


def _unique(items: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _final_dns(servers: tuple[str, ...] | None) -> tuple[str, ...]:
    """Canonical `ADDR[:PORT]` texts, duplicates dropped; () means the host's resolvers."""
    return _unique(tuple(render_dns_server(*parse_dns_server(s)) for s in servers or ()))


def _shown_mount(mount: Mount) -> dict[str, Any]:
    return {
        "source": mount.source,
        "target": mount.target,
        "readonly": mount.readonly,
        "exclude": list(mount.exclude),
    }


def _shown_envs(envs: Mapping[str, EnvVar]) -> dict[str, Any]:
    return {
        n: {"value": e.value, "override_on_enter": e.override_on_enter} for n, e in envs.items()
    }


def _command_text(command: Command | None) -> str | None:
    return command.command if command else None


def _path_field(key: str, what: str) -> Normaliser:
    return lambda _key, value, ctx: check_container_path(key, value, what)


def _mounts(key: str, raw: list[str | model.MountSpec], ctx: Context) -> tuple[Mount, ...]:
    return normalise_mounts(raw, base_dir=ctx.base_dir, environ=ctx.environ)


FIELDS: tuple[Field, ...] = (
    Field(
        "image",
        "image",
        _checked(check_image),
        required='add a line such as image = "alpine:3.21" (or run `alca init`)',
        default_origin=True,
    ),
    Field("agent", "agent", _checked(check_agent), optional=True),
    Field(
        "workdir",
        "workdir",
        _path_field("workdir", "workdir"),
        final=lambda value: value or model.DEFAULT_WORKDIR,
        default_origin=True,
    ),
    Field(
        "workdir_exclude",
        "workdir_exclude",
        _keyed(check_patterns),
        final=lambda value: value or (),
        shown=list,
        default_origin=True,
    ),
    Field(
        "runtime",
        "runtime",
        _checked(check_runtime),
        final=lambda value: value or "auto",
        default_origin=True,
    ),
    Field(
        "workdir_protect",
        "workdir_protect",
        _keyed(check_protected),
        merge=Merge.APPEND,
        final=_unique,
        shown=list,
        when_empty="default",
        note="read-only inside by default: " + ", ".join(DEFAULT_PROTECTED),
    ),
    Field(
        "workdir_unprotect",
        "workdir_unprotect",
        _keyed(check_protected),
        merge=Merge.APPEND,
        final=_unique,
        shown=list,
        when_empty="default",
    ),
    Field(
        "mounts",
        "mounts",
        _mounts,
        merge=Merge.APPEND,
        shown=lambda mounts: [_shown_mount(m) for m in mounts],
    ),
    Field(
        "caps",
        "caps",
        lambda key, value, ctx: normalise_caps(value),
        presence=Presence.ENTRIES,
        final=_final_caps,
        shown=lambda caps: {"drop": list(caps.drop), "add": list(caps.add)},
        default_origin=True,
    ),
    Field(
        "commands.up",
        "up",
        _keyed(parse_command),
        merge=Merge.COMMAND,
        final=_final_command,
        shown=_command_text,
        optional=True,
    ),
    Field(
        "commands.enter",
        "enter",
        _keyed(parse_command),
        merge=Merge.COMMAND,
        final=_final_command,
        shown=_command_text,
        optional=True,
    ),
    Field("resources.memory", "memory", _checked(parse_memory), optional=True),
    Field("resources.cpus", "cpus", _keyed(cpus_limit), optional=True),
    Field(
        "hooks.post_up",
        "post_up",
        _keyed(check_hook),
        final=lambda value: value or "",
        optional=True,
    ),
    Field(
        "hooks.pre_down",
        "pre_down",
        _keyed(check_hook),
        final=lambda value: value or "",
        optional=True,
    ),
    Field(
        "network.lan-access",
        "lan_access",
        _keyed(check_lan_access),
        merge=Merge.APPEND,
        shown=list,
        when_empty="default: no LAN access",
    ),
    Field(
        "network.egress",
        "egress",
        _keyed(check_egress),
        merge=Merge.UNION,
        final=lambda value: None if value is None else parse_egress(value),
        shown=lambda value: None if value is None else list(value),
        shown_attr="egress_text",
        optional=True,
        when_absent="egress is not set: the sandbox may reach any internet address",
    ),
    Field(
        "network.dns",
        "dns",
        _keyed(check_dns),
        final=_final_dns,
        shown=list,
        optional=True,
    ),
    Field(
        "network.ports",
        "ports",
        _keyed(parse_ports),
        final=lambda value: value or (),
        shown=lambda ports: [render_port(p) for p in ports],
        default_origin=True,
    ),
    Field(
        "network.proxy",
        "proxy",
        _keyed(check_proxy),
        final=lambda value: parse_proxy(value) if value else None,
        shown_attr="proxy_text",
        optional=True,
    ),
    Field(
        "network.host-ca",
        "host_ca",
        lambda key, value, ctx: value,
        presence=Presence.DEFINED,
        final=bool,
    ),
    Field(
        "envs",
        "envs",
        _keyed(check_envs),
        merge=Merge.PER_NAME,
        final=_final_envs,
        shown=_shown_envs,
    ),
)

BY_KEY: Mapping[str, Field] = {f.key: f for f in FIELDS}


def in_model_order() -> list[Field]:
    """The fields in the model's order: checks, and the document `config show --json` prints."""
    return [BY_KEY[key] for key in model.model_keys() if key in BY_KEY]
