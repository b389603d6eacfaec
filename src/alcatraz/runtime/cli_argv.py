"""Pure argv pieces for a Docker-compatible CLI: container names, `--mount` values, CPUs, env.

Every value is its own argv element, and each is checked or quoted so that the engine's
flag parser reads it as exactly one value.

Mounts use `--mount type=bind,...` rather than `-v src:dst[:ro]`: both engines split `-v`
on `:`, so a host path containing `:` fails (Docker: "invalid mode: /dst", Podman:
'invalid option type "/dst"'), and no escaping exists for `-v`. `--mount` is parsed as one
CSV record by both engines, so each field is written as a quoted CSV field (`"src=..."`,
with `"` doubled), which keeps `,` `:` `=` `"` spaces and newlines in paths intact (verified
with Docker 20.10 and Podman 4.3). Unlike `-v`, `--mount` refuses a missing source instead of
creating a root-owned directory; callers create sources they want.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from alcatraz.runtime.base import BindMount

# Both engines accept container names of this form (Docker's `RestrictedNamePattern`).
_NAME: Final = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")
_ENV_KEY_BAD: Final = re.compile(r"[=\x00]")


def check_name(name: str) -> str:
    """Refuse a container name that the engine could read as a flag or would reject."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"invalid container name {name!r}: use letters, digits, _ . -")
    return name


def _csv_field(text: str) -> str:
    """One quoted CSV field: both engines read `--mount` with a CSV reader."""
    return '"' + text.replace('"', '""') + '"'


def mount_arg(mount: BindMount) -> str:
    """The value of `--mount` for a bind mount; see the module docstring for why not `-v`."""
    parts = ["type=bind", _csv_field("src=" + mount.source), _csv_field("dst=" + mount.target)]
    if mount.readonly:
        parts.append("readonly")
    return ",".join(parts)


def format_cpus(cpus: float) -> str:
    """`0.5` → "0.5", `2.0` → "2": plain decimal, never exponent notation."""
    text = f"{cpus:.9f}".rstrip("0").rstrip(".")
    return text or "0"


def env_pair(key: str, value: str) -> str:
    """`KEY=VALUE` for `-e`, refusing a key the engine would read otherwise."""
    # A key without "=" would copy the host's variable; "=" in a key would shift it.
    if not key or _ENV_KEY_BAD.search(key):
        raise ValueError(f"invalid environment variable name {key!r}")
    return f"{key}={value}"
