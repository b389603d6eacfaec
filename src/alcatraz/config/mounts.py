"""Mounts: the string and table forms, host paths expanded and resolved, targets checked.

Relative host paths are resolved against the directory of the file that declares them;
`${alca:PRIVATE}/NAME` sources are kept as written until the project root is known.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from alcatraz.config import model, private
from alcatraz.config.checks import check_container_path, check_patterns
from alcatraz.config.expand import expand_strict
from alcatraz.config.values import Mount
from alcatraz.errors import ConfigError, quote


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


def normalise_mounts(
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
            exclude = check_patterns(f"{key}.exclude", item.exclude)
        target = check_container_path(
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
