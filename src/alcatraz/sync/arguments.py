"""What alcatraz asks of Mutagen: session names, labels, ignore patterns, `sync create` argv.

Pure: nothing here runs Mutagen. Every value becomes its own argv element and is checked
first, so a name, label or path can never be read as another flag.

Session settings, each passed explicitly so no default can change under us:

- `--mode=two-way-safe`, or `one-way-replica` for a read-only mount: the container copy
  mirrors the host and nothing written inside ever reaches the host (upstream S4).
- `--symlink-mode=portable`: only relative links that stay inside the synced root are
  synced. A link the sandbox makes to `/etc/passwd` or `../../x` stays in the container (a
  scan problem), so it can never appear on the host pointing outside the project.
  `posix-raw` would copy such links to the host; `ignore` would break repositories that use
  in-tree links.
- `--no-ignore-vcs`: `.git` is synced, as upstream does, so git works inside; exclude it
  like any other path if it must stay out.
- `--permissions-mode=portable`: only the executable bit crosses. Files Mutagen writes on the
  host get 0600 (directories 0700), so a change made inside never widens a host file's mode;
  inside the container they get 0644/0755 so that any user there can read them.
- Ignores use Mutagen's default syntax; see `check_ignore` for the semantics.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath
from typing import Final

LABEL_PROJECT: Final = "alca-project"
LABEL_MOUNT: Final = "alca-mount"

MODE_TWO_WAY: Final = "two-way-safe"
MODE_ONE_WAY: Final = "one-way-replica"
HOST_FILE_MODE: Final = "0600"
HOST_DIRECTORY_MODE: Final = "0700"
CONTAINER_FILE_MODE: Final = "0644"
CONTAINER_DIRECTORY_MODE: Final = "0755"

_SESSION_NAME: Final = re.compile(r"[A-Za-z][A-Za-z0-9-]*")
_LABEL_PART: Final = re.compile(r"[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?")
_CONTAINER: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_USER: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_FORBIDDEN_TARGETS: Final = ("/proc", "/sys", "/dev")


def session_name(project_key: str, index: int) -> str:
    """`alca-<project key>-<mount index>`; index 0 is the workdir mount."""
    name = f"alca-{project_key}-{index}"
    if index < 0 or not _SESSION_NAME.fullmatch(name):
        raise ValueError(f"invalid sync session name {name!r}: use letters, digits and -")
    return name


def session_labels(project_id: str, index: int) -> dict[str, str]:
    """The labels that find a project's sessions and map a session back to its mount."""
    return {LABEL_PROJECT: project_id, LABEL_MOUNT: str(index)}


def project_selector(project_id: str) -> str:
    """A label selector for every session of one project."""
    _check_label(LABEL_PROJECT, project_id)
    return f"{LABEL_PROJECT}={project_id}"


def valid_label_value(value: str) -> bool:
    """Whether `value` can be a session label's value (an engine label may hold anything)."""
    return bool(_LABEL_PART.fullmatch(value))


def _check_label(key: str, value: str) -> None:
    if not _LABEL_PART.fullmatch(key):
        raise ValueError(f"invalid sync label key {key!r}")
    if value and not _LABEL_PART.fullmatch(value):
        raise ValueError(
            f"invalid sync label value {value!r}: at most 63 letters, digits, - _ ., "
            "starting and ending alphanumeric"
        )


def check_ignore(pattern: str) -> str:
    """Refuse a pattern that could un-hide something or that Mutagen would read differently.

    Mutagen's default ignore syntax (verified against 0.18.1, see the integration tests):

    - no `/`: matches the name at any depth (`.env` hides `.env`, `a/.env`, `a/b/.env`,
      but not `.envrc`); `*` and `?` never cross `/`; `*.{key,crt}` alternatives work;
    - a `/` anywhere but at the end anchors at the synced root: `/.env` and
      `conf/secret.yml` match only at the top level, not `a/conf/secret.yml`;
    - `**/` matches any depth including the top: `**/conf/secret.yml`;
    - a trailing `/` matches directories only, at any depth when there is no other `/`:
      `secrets/` hides `secrets/` and `a/secrets/` but not a file named `secrets`;
    - matching is case-sensitive: `*.pem` does not hide `KEY.PEM`;
    - nothing inside an ignored directory can be re-included.

    A leading `!` would re-include what an earlier pattern hid, so it is refused (the
    configuration refuses it too); with `--no-global-configuration` no other source of
    patterns exists, so an excluded path can never be un-excluded. Empty patterns are
    refused because Mutagen silently drops `--ignore=` (nothing would be hidden).
    """
    if not pattern or not pattern.strip():
        raise ValueError("empty exclude pattern")
    if pattern.startswith("!"):
        raise ValueError(f"negated exclude pattern {pattern!r} would re-include files")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in pattern):
        raise ValueError(f"exclude pattern {pattern!r} contains a control character")
    if pattern.strip("/") == "":
        raise ValueError(f"exclude pattern {pattern!r} would hide the whole mount")
    return pattern


def ignore_arg(pattern: str) -> str:
    """`--ignore=<pattern>`, CSV-quoted when needed.

    Mutagen reads `--ignore` as a string slice: the value is parsed as one CSV record, so a
    bare `,` splits `*.{key,crt}` into two broken patterns and a bare `"` is an error.
    Quoting the field keeps the pattern whole.
    """
    check_ignore(pattern)
    if any(ch in pattern for ch in ',"'):
        pattern = '"' + pattern.replace('"', '""') + '"'
    return "--ignore=" + pattern


def _check_container_path(path: str) -> str:
    pure = PurePosixPath(path)
    if (
        not path.startswith("/")
        or str(pure) != path
        or ".." in pure.parts
        or any(ch.isspace() or ord(ch) < 32 for ch in path)
    ):
        raise ValueError(f"container path {path!r} must be absolute and normalised, without spaces")
    if path == "/" or any(path == p or path.startswith(p + "/") for p in _FORBIDDEN_TARGETS):
        raise ValueError(f"refusing to sync into {path!r}")
    return path


def beta_url(container: str, path: str, user: str | None = None) -> str:
    """`docker://[user@]<container><path>`."""
    if not _CONTAINER.fullmatch(container):
        raise ValueError(f"invalid container name or id {container!r}")
    if user is not None and not _USER.fullmatch(user):
        raise ValueError(f"invalid container user {user!r}")
    prefix = f"{user}@" if user else ""
    return f"docker://{prefix}{container}{_check_container_path(path)}"


def create_args(
    name: str,
    alpha: str,
    beta_container: str,
    beta_path: str,
    *,
    ignores: Sequence[str],
    one_way: bool,
    labels: Mapping[str, str],
    beta_user: str | None = None,
    watch_polling_interval: int | None = None,
) -> list[str]:
    """The arguments of `mutagen sync create` (without the executable); pure."""
    if not _SESSION_NAME.fullmatch(name) or name == "defaults":
        raise ValueError(f"invalid sync session name {name!r}: use letters, digits and -")
    if not os.path.isabs(alpha) or os.path.normpath(alpha) == "/":
        raise ValueError(f"host path {alpha!r} must be absolute and not /")
    args = ["sync", "create", f"--name={name}"]
    for key in sorted(labels):
        _check_label(key, labels[key])
        args.append(f"--label={key}={labels[key]}")
    args += [
        f"--mode={MODE_ONE_WAY if one_way else MODE_TWO_WAY}",
        "--no-global-configuration",
        "--ignore-syntax=mutagen",
        "--no-ignore-vcs",
        "--symlink-mode=portable",
        "--permissions-mode=portable",
        f"--default-file-mode-alpha={HOST_FILE_MODE}",
        f"--default-directory-mode-alpha={HOST_DIRECTORY_MODE}",
        f"--default-file-mode-beta={CONTAINER_FILE_MODE}",
        f"--default-directory-mode-beta={CONTAINER_DIRECTORY_MODE}",
    ]
    if watch_polling_interval is not None:
        if watch_polling_interval < 1:
            raise ValueError("the watch polling interval is a whole number of seconds >= 1")
        args.append(f"--watch-polling-interval={watch_polling_interval}")
    args += [ignore_arg(pattern) for pattern in ignores]
    args += [alpha, beta_url(beta_container, beta_path, beta_user)]
    return args
