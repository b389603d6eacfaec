"""Per-project state, kept in alcatraz's per-user directory, never inside the project.

The project directory is mounted read-write into the sandbox, so anything stored there can
be read and rewritten by the agent (upstream §7.1 S1, S9). Here each project gets
`<alca home>/projects/<key>/`, keyed by the project's real path:

- `state.json`: project id, container name, runtime, the config snapshot for drift, whether
  `commands.up` completed, the root's device/inode (to notice a moved or replaced
  directory) and the run-spec `alca run` needs without parsing TOML;
- `approved.json`: the last approved effective configuration (see `alcatraz.sandbox.trust`);
- `lock`: serialises `up`/`down`/`cleanup` of one project;
- `sync-conflicts.json`: the conflicts found by the last sync poll (`alca run`'s banner).

`ProjectStore` owns these names, the lock and the file's version; the types of
`state.json` are in `alcatraz.statefile`. Stdlib only and cheap to import: `alca run` reads
`state.json` on every call.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Final

from alcatraz.statefile import (
    STATE_FIX,
    STATE_VERSION,
    IsolationRecord,
    ProjectState,
    Stamp,
    StateFileError,
)

if TYPE_CHECKING:
    from pathlib import Path

STATE_FILE: Final = "state.json"
APPROVAL_FILE: Final = "approved.json"
LOCK_FILE: Final = "lock"
CONFLICTS_FILE: Final = "sync-conflicts.json"


def _sha256_hex(data: bytes) -> str:
    """SHA-256 from the interpreter's builtin module: `hashlib` loads OpenSSL (~3 ms), and
    `alca run` hashes the project's path on every call."""
    try:
        from _sha2 import sha256  # type: ignore[import-not-found]  # CPython 3.12+
    except ImportError:
        try:
            from _sha256 import sha256  # type: ignore[import-not-found]  # 3.11
        except ImportError:  # a build without the builtin modules
            from hashlib import sha256
    return str(sha256(data).hexdigest())


def project_key(project_root: Path | str) -> str:
    """Stable directory name for a project: a hash of its real path."""
    real = os.path.realpath(project_root)
    return _sha256_hex(real.encode("utf-8", "surrogateescape"))[:24]


def project_dir(home: Path, project_root: Path) -> Path:
    return home / "projects" / project_key(project_root)


def owner_label(home: str) -> str:
    """Identifies an alcatraz home (and its user) on an engine shared by several."""
    real = os.path.realpath(home)
    return _sha256_hex(f"{os.getuid()}:{real}".encode())[:16]


def container_name_for(project_id: str) -> str:
    """`alca-` + the first 12 characters of the id, as upstream."""
    return "alca-" + project_id[:12]


def state_file(home: str, project_root: str) -> str:
    """`state.json` of a project, as a string (the `alca run` path avoids pathlib)."""
    return os.path.join(home, "projects", project_key(project_root), STATE_FILE)


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


def inside_layer_current(isolation: IsolationRecord) -> bool:
    """Whether the container's init is still the one the in-namespace layer was loaded into."""
    if isolation.inside is None:
        return True  # no second layer was loaded (not root, helper, allow-all)
    pid, started = isolation.inside
    return process_start(pid) == started


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
    fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def file_stamps(files: list[Path] | tuple[Path, ...]) -> tuple[Stamp, ...]:
    """(path, mtime_ns, size) of each config file: `alca run` re-checks these cheaply."""
    stamps: list[Stamp] = []
    for path in files:
        info = os.stat(path)
        stamps.append((str(path), info.st_mtime_ns, info.st_size))
    return tuple(stamps)


def stamps_current(stamps: tuple[Stamp, ...]) -> bool:
    for path, mtime_ns, size in stamps:
        try:
            info = os.stat(path)
        except OSError:
            return False
        if info.st_mtime_ns != mtime_ns or info.st_size != size:
            return False
    return True


class ProjectStore:
    """One project's directory under the alcatraz home: its file names, lock and state.

    Writers (`up`, `down`, `trust`) hold `lock()` around `load`/`update`, so a change is
    never lost to a concurrent one. Paths are strings: `alca run` avoids `pathlib`.
    """

    __slots__ = ("directory",)

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = os.fspath(directory)

    @classmethod
    def of(cls, home: str | os.PathLike[str], project_root: str | os.PathLike[str]) -> ProjectStore:
        return cls(os.path.join(home, "projects", project_key(os.fspath(project_root))))

    @property
    def state_path(self) -> str:
        return os.path.join(self.directory, STATE_FILE)

    @property
    def approval_path(self) -> str:
        return os.path.join(self.directory, APPROVAL_FILE)

    @property
    def conflicts_path(self) -> str:
        return os.path.join(self.directory, CONFLICTS_FILE)

    def load(self) -> ProjectState:
        """The project's state (empty when there is none); `StateFileError` if unreadable."""
        path = self.state_path
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except FileNotFoundError:
            return ProjectState()
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) else str(error)
            raise StateFileError(
                f"cannot read the state file {path}: {reason}", hint=STATE_FIX
            ) from None
        try:
            data = json.loads(text)
        except ValueError as error:
            raise StateFileError(
                f"state file {path} is not valid JSON ({error})", hint=STATE_FIX
            ) from None
        return ProjectState.from_json(data, path)

    def save(self, state: ProjectState) -> ProjectState:
        """Write `state` (atomically, owner-only), stamped with the current version."""
        from pathlib import Path

        state = state._replace(version=STATE_VERSION)
        write_json(Path(self.state_path), state.to_json())
        return state

    def update(self, **changes: Any) -> ProjectState:
        """Read, change the named fields, write; the new state. Hold `lock()` around it.

        Nothing is written when nothing changed (a warm `up` saves what it found): the
        atomic write with its fsync costs ~10 ms."""
        current = self.load()
        changed = current._replace(**changes)
        if changed == current and current.version == STATE_VERSION:
            return current
        return self.save(changed)

    def lock(self) -> contextlib.AbstractContextManager[None]:
        from pathlib import Path

        return project_lock(Path(self.directory))

    def forget(self) -> None:
        """Drop the state, the approval and the conflicts cache (the lock file stays)."""
        for path in (self.state_path, self.approval_path, self.conflicts_path):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
