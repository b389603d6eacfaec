"""The `.alca.toml` schema: one msgspec model per file layer, the single source of truth.

Each file (the project's `.alca.toml`, every `extends` and `includes` file) is converted on
its own into a `ConfigLayer`, so an error names the file that caused it. Every field is
optional here: a layer only says what it sets. Checks, merge rules, defaults and "required"
are the field table's (`alcatraz.config.fields`). The JSON Schema in `schema/`, the key
reference and the hints of errors are generated from these classes, so the descriptions
below are user documentation.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Annotated, Final

import msgspec

#: Linux capabilities a container keeps when `caps` is absent (upstream AGD-026, six caps).
DEFAULT_CAPS: Final = ("CHOWN", "DAC_OVERRIDE", "FOWNER", "KILL", "SETUID", "SETGID")

#: Environment passed from the host on creation and refreshed on every `alca run`.
_LOCALE_PARTS: Final = ("ALL", "COLLATE", "CTYPE", "MESSAGES", "MONETARY", "NUMERIC", "TIME")
DEFAULT_ENV_NAMES: Final = ("TERM", "COLORTERM", "LANG", *(f"LC_{part}" for part in _LOCALE_PARTS))

DEFAULT_WORKDIR: Final = "/workspace"
RUNTIMES: Final = ("auto", "docker", "podman")


class _Strict(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Base: unknown keys are errors, so a typo can never switch a setting off silently."""


class CommandSpec(_Strict):
    """A command in table form, to control how layers combine."""

    command: Annotated[str, msgspec.Meta(description="Shell command run with `sh -c`.")] = ""
    append: Annotated[
        bool,
        msgspec.Meta(
            description="Append to the command of the layer below (joined with a space) "
            "instead of replacing it."
        ),
    ] = False


CommandValue = Annotated[
    str | CommandSpec,
    msgspec.Meta(description="A shell command, or a table `{command, append}`."),
]


class CommandsLayer(_Strict):
    """Commands run inside the container."""

    up: Annotated[
        CommandValue | None,
        msgspec.Meta(
            description="Run once inside the container when it is created (setup). "
            "A failure makes `alca up` fail; the next `alca up` retries it."
        ),
    ] = None
    enter: Annotated[
        CommandValue | None,
        msgspec.Meta(
            description="Prefix for `alca run`: the arguments are quoted and appended, and the "
            "whole line runs with `sh -c`. Without it the arguments are executed directly."
        ),
    ] = None


class MountSpec(_Strict):
    """A mount in table form."""

    source: Annotated[
        str,
        msgspec.Meta(
            description="Host path. `$VAR`, `${VAR}` and `~` are expanded; a relative path is "
            "resolved against the directory of the file that declares it. "
            "`${alca:PRIVATE}/NAME` is a directory private to this project's sandbox, "
            "outside the project and your home (created by `alca up`)."
        ),
    ]
    target: Annotated[str, msgspec.Meta(description="Absolute path inside the container.")]
    readonly: Annotated[
        bool,
        msgspec.Meta(
            description="Read-only inside the container. With `exclude`, sync runs one way: "
            "host to container only."
        ),
    ] = False
    exclude: Annotated[
        list[str],
        msgspec.Meta(
            description="Gitignore-like patterns of paths that must not exist inside the "
            "container (the mount is then synced with Mutagen instead of bind-mounted)."
        ),
    ] = msgspec.field(default_factory=list)


MountValue = Annotated[
    str | MountSpec,
    msgspec.Meta(
        description='"source:target[:ro]", or a table {source, target, readonly, exclude}.'
    ),
]


class ResourcesLayer(_Strict):
    """Resource limits of the container."""

    memory: Annotated[
        str | None,
        msgspec.Meta(
            description='Memory limit: a number with an optional unit b, k, m, g, t (e.g. "4g", '
            '"512m"); at least 6m.'
        ),
    ] = None
    cpus: Annotated[
        int | float | None,
        msgspec.Meta(
            description="Number of CPUs (fractions allowed, e.g. 1.5). 0 means no limit.",
        ),
    ] = None


class EnvSpec(_Strict):
    """An environment variable in table form."""

    value: Annotated[
        str,
        msgspec.Meta(description="A literal value, or exactly `${NAME}` to copy a host variable."),
    ]
    override_on_enter: Annotated[
        bool,
        msgspec.Meta(
            description="Re-read the host value on every `alca run` instead of only at creation."
        ),
    ] = False


EnvValue = Annotated[
    str | EnvSpec,
    msgspec.Meta(
        description="A value (literal or exactly `${NAME}`), or `{value, override_on_enter}`."
    ),
]


class PortSpec(_Strict, rename={"host_port": "hostPort", "host_ip": "hostIp"}):
    """A published port in table form."""

    port: Annotated[int, msgspec.Meta(description="Container port, 1-65535.")]
    host_port: Annotated[
        int | None, msgspec.Meta(description="Host port, 1-65535 (default: the container port).")
    ] = None
    host_ip: Annotated[
        str, msgspec.Meta(description='Host address to bind ("" = all interfaces).')
    ] = ""
    protocol: Annotated[
        str,
        msgspec.Meta(
            description='"tcp" (default) or "udp".', extra_json_schema={"enum": ["tcp", "udp"]}
        ),
    ] = "tcp"


PortValue = Annotated[
    str | PortSpec,
    msgspec.Meta(
        description='"[hostIp:]hostPort:containerPort[/tcp|udp]", "containerPort", or a table '
        "{port, hostPort, hostIp, protocol}."
    ),
]


class NetworkLayer(_Strict, rename={"lan_access": "lan-access", "host_ca": "host-ca"}):
    """Network policy of the sandbox."""

    lan_access: Annotated[
        list[str] | None,
        msgspec.Meta(
            description='Exceptions to the LAN block: "*" allows everything (isolation off); '
            'otherwise "[tcp://|udp://|*://]ADDR[:PORT|:*]" with ADDR an IPv4/IPv6 address or '
            "CIDR (IPv6 in brackets when a port follows) or ${alca:HOST_IP}."
        ),
    ] = None
    ports: Annotated[
        list[PortValue] | None,
        msgspec.Meta(description="Ports published on the host."),
    ] = None
    egress: Annotated[
        list[str] | None,
        msgspec.Meta(
            description="Internet destinations the sandbox may reach (absent: all; []: none): "
            '"[tcp://|udp://]HOST[:PORT|:LO-HI]" with HOST a lower-case name, "*.NAME" (its '
            "subdomains only) or a public CIDR; a port without a prefix covers tcp and udp. "
            "Private destinations are lan-access's. Appended across layers."
        ),
    ] = None
    dns: Annotated[
        list[str] | None,
        msgspec.Meta(
            description='Resolvers for the sandbox\'s lookups, "ADDR[:PORT]" or "[IPv6]:PORT" '
            "(default: the host's own resolvers)."
        ),
    ] = None
    proxy: Annotated[
        str | None,
        msgspec.Meta(
            description='Transparent TCP proxy "host:port" (IPv4, [IPv6] or ${alca:HOST_IP}): '
            "outgoing TCP is redirected to it."
        ),
    ] = None
    host_ca: Annotated[
        bool | None,
        msgspec.Meta(
            description="Give the sandbox the host's trusted CA certificates (read-only) and "
            "point SSL_CERT_FILE, NODE_EXTRA_CA_CERTS, REQUESTS_CA_BUNDLE, PIP_CERT, "
            "GIT_SSL_CAINFO, CURL_CA_BUNDLE and similar variables at them: for a "
            "TLS-intercepting proxy or a private CA."
        ),
    ] = None


class CapsSpec(_Strict):
    """Full control over Linux capabilities: no implicit defaults."""

    drop: Annotated[
        list[str], msgspec.Meta(description='Capabilities to drop ("ALL" allowed).')
    ] = msgspec.field(default_factory=list)
    add: Annotated[list[str], msgspec.Meta(description="Capabilities to add.")] = msgspec.field(
        default_factory=list
    )


CapsValue = Annotated[
    list[str] | CapsSpec,
    msgspec.Meta(
        description="An array adds capabilities to the defaults (ALL is dropped first); a table "
        "{drop, add} is used verbatim."
    ),
]


class HooksLayer(_Strict):
    """Commands run on the HOST, in the project root, only from approved configuration."""

    post_up: Annotated[
        str | None, msgspec.Meta(description="Run after a successful `alca up`; failure fails up.")
    ] = None
    pre_down: Annotated[
        str | None, msgspec.Meta(description="Run at the start of `alca down`; failure warns.")
    ] = None


class ConfigLayer(_Strict):
    """Configuration of an alcatraz sandbox (`.alca.toml`, and files it extends or includes)."""

    extends: Annotated[
        list[str] | None,
        msgspec.Meta(
            description="Files merged BELOW this one (the first entry wins among them). Paths are "
            "relative to this file; `$VAR` and globs are expanded; a literal path must exist."
        ),
    ] = None
    includes: Annotated[
        list[str] | None,
        msgspec.Meta(
            description="Files merged ABOVE this one (the last entry wins). Same path rules as "
            "`extends`."
        ),
    ] = None
    image: Annotated[str | None, msgspec.Meta(description="Container image (required).")] = None
    agent: Annotated[
        str | None,
        msgspec.Meta(
            description='The `alca init --agent` preset (e.g. "claude"), for `alca status`.',
            extra_json_schema={"pattern": "^[a-z][a-z0-9-]*$"},
        ),
    ] = None
    workdir: Annotated[
        str | None,
        msgspec.Meta(
            description="Absolute path of the project inside the container (default /workspace)."
        ),
    ] = None
    workdir_exclude: Annotated[
        list[str] | None,
        msgspec.Meta(
            description='Patterns of project paths hidden from the container (e.g. "**/.env"). '
            "Replaces, not appends to, the value of lower layers."
        ),
    ] = None
    workdir_protect: Annotated[
        list[str] | None,
        msgspec.Meta(
            description="Project paths the host executes later, made read-only inside the "
            "container in addition to the defaults (`.git/config`, `.git/hooks/`, `.envrc`, "
            "`.vscode/`, ...; see docs/security.md). Relative to the project root; a trailing "
            '`/` marks a directory. Appended across layers. E.g. [".husky/", "Makefile"].'
        ),
    ] = None
    workdir_unprotect: Annotated[
        list[str] | None,
        msgspec.Meta(
            description="Protected paths (defaults included) the agent may write after all, "
            'e.g. [".vscode/"]. Same form as `workdir_protect`; appended across layers.'
        ),
    ] = None
    runtime: Annotated[
        str | None,
        msgspec.Meta(
            description='Container engine: "auto" (default), "docker" or "podman".',
            extra_json_schema={"enum": list(RUNTIMES)},
        ),
    ] = None
    commands: CommandsLayer | None = None
    mounts: Annotated[
        list[MountValue] | None, msgspec.Meta(description="Extra mounts (appended across layers).")
    ] = None
    resources: ResourcesLayer | None = None
    envs: Annotated[
        dict[str, EnvValue] | None,
        msgspec.Meta(description="Environment variables of the container."),
    ] = None
    network: NetworkLayer | None = None
    caps: CapsValue | None = None
    hooks: HooksLayer | None = None


#: Top-level and table keys, for "did you mean" suggestions: table path -> known keys.
def known_keys() -> dict[str, tuple[str, ...]]:
    """Map each table's dotted path ("" for the root) to the keys it accepts."""
    tables: dict[str, type[msgspec.Struct]] = {
        "": ConfigLayer,
        **_TABLES,
        "caps": CapsSpec,
        "mounts": MountSpec,
        "envs": EnvSpec,
        "network.ports": PortSpec,
        "commands.up": CommandSpec,
        "commands.enter": CommandSpec,
    }
    return {path: tuple(cls.__struct_encode_fields__) for path, cls in tables.items()}


def model_keys() -> list[str]:
    """Leaf key paths in the order the model declares them (the `.alca.toml` shape)."""
    keys: list[str] = []
    for name in ConfigLayer.__struct_encode_fields__:
        table = _TABLES.get(name)
        if table is None:
            keys.append(name)
        else:
            keys += [f"{name}.{leaf}" for leaf in table.__struct_encode_fields__]
    return keys


_TABLES: Mapping[str, type[msgspec.Struct]] = {
    "commands": CommandsLayer,
    "resources": ResourcesLayer,
    "network": NetworkLayer,
    "hooks": HooksLayer,
}


@functools.cache
def descriptions() -> dict[str, str]:
    """Key path (indices removed, names as `*`) -> the model's documentation of it."""
    from msgspec import inspect as mi

    found: dict[str, str] = {}

    def walk(info: mi.Type, prefix: str) -> None:
        if isinstance(info, mi.Metadata):
            description = (info.extra_json_schema or {}).get("description")
            if description and prefix:
                found[prefix] = description  # deeper, more specific text wins
            walk(info.type, prefix)
        elif isinstance(info, mi.StructType):
            for f in info.fields:
                walk(f.type, f"{prefix}.{f.encode_name}" if prefix else f.encode_name)
        elif isinstance(info, mi.UnionType):
            for member in info.types:
                walk(member, prefix)
        elif isinstance(info, mi.ListType):
            walk(info.item_type, prefix)
        elif isinstance(info, mi.DictType):
            walk(info.value_type, prefix + ".*")

    walk(mi.type_info(ConfigLayer), "")
    return found
