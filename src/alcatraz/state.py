"""Per-project state, kept in alcatraz's per-user directory, never inside the project.

The project directory is mounted read-write into the sandbox, so anything stored there can
be read and rewritten by the agent (upstream §7.1 S1, S9). Here each project gets
`<alca home>/projects/<key>/`, keyed by the project's real path:

- `state.json`: project id, container name, runtime, the config snapshot for drift, whether
  `commands.up` completed, the root's device/inode (to notice a moved or replaced
  directory) and the run-spec `alca run` needs without parsing TOML;
- `approved.json`: the last approved effective configuration (see `alcatraz.trust`);
- `lock`: serialises `up`/`down`/`cleanup` of one project.

Stdlib only and cheap to import: `alca run` reads `state.json` on every call.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from pathlib import Path

STATE_VERSION: Final = 1


def project_key(project_root: Path | str) -> str:
    """Stable directory name for a project: a hash of its real path."""
    real = os.path.realpath(project_root)
    return hashlib.sha256(real.encode("utf-8", "surrogateescape")).hexdigest()[:24]


def project_dir(home: Path, project_root: Path) -> Path:
    return home / "projects" / project_key(project_root)


def owner_label(home: str) -> str:
    """Identifies an alcatraz home (and its user) on an engine shared by several."""
    real = os.path.realpath(home)
    return hashlib.sha256(f"{os.getuid()}:{real}".encode()).hexdigest()[:16]


def container_name_for(project_id: str) -> str:
    """`alca-` + the first 12 characters of the id, as upstream."""
    return "alca-" + project_id[:12]


def state_file(home: str, project_root: str) -> str:
    """`state.json` of a project, as a string (the `alca run` path avoids pathlib)."""
    return os.path.join(home, "projects", project_key(project_root), "state.json")


def root_identity(project_root: Path | str) -> list[int]:
    info = os.stat(project_root)
    return [info.st_dev, info.st_ino]


def process_start(pid: int) -> int | None:
    """When process `pid` started (clock ticks since boot), or None when it is gone.

    A container that restarted has a new init: its pid or its start time differs.
    """
    try:
        with open(f"/proc/{int(pid)}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
        return int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def inside_layer_current(isolation: dict[str, Any]) -> bool:
    """Whether the container's init is still the one the in-namespace layer was loaded into."""
    inside = isolation.get("inside")
    if not isinstance(inside, list) or len(inside) != 2:
        return True  # no second layer was loaded (not root, helper, allow-all)
    return bool(process_start(int(inside[0])) == inside[1])


def read_json(path: Path | str) -> dict[str, Any] | None:
    """A JSON object from `path`, or None when the file does not exist."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        return None
    if not isinstance(data, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    return data


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write atomically (temp file + rename) with owner-only permissions."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


@contextlib.contextmanager
def project_lock(directory: Path) -> Iterator[None]:
    """Exclusive lock for one project's lifecycle commands (blocks until free)."""
    import fcntl

    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def file_stamps(files: list[Path] | tuple[Path, ...]) -> list[list[Any]]:
    """(path, mtime_ns, size) of each config file: `alca run` re-checks these cheaply."""
    stamps: list[list[Any]] = []
    for path in files:
        info = os.stat(path)
        stamps.append([str(path), info.st_mtime_ns, info.st_size])
    return stamps


def stamps_current(stamps: list[list[Any]]) -> bool:
    for path, mtime_ns, size in stamps:
        try:
            info = os.stat(path)
        except OSError:
            return False
        if info.st_mtime_ns != mtime_ns or info.st_size != size:
            return False
    return True
