"""Files the host executes later are read-only inside the sandbox (docs/security.md).

Git runs `.git/hooks/*` and what `.git/config` names (`core.fsmonitor`, `core.hooksPath`),
direnv runs `.envrc`, editors run `.vscode/tasks.json` and friends: whatever the agent
writes there runs on the host later, as the user. Each protected path is bound read-only
over itself inside the container; the workspace around it stays writable.

How a path is protected depends on what the host has there, found by a walk from the
project root that never follows a symbolic link (`plan`):

- it exists (file or directory): bound read-only over itself;
- it does not exist: the first missing component gets an empty placeholder (a directory
  when something lies below it or the entry ends with `/`, else a file), bound read-only,
  so the agent cannot create it; a missing `.git` gets an empty `.git/` placeholder;
- an existing ancestor directory inside the project is bound over itself read-write
  (a "pin"): a mount point cannot be renamed or removed, so the agent cannot move `.git`
  away and recreate it with hooks of its own;
- an ancestor that is a file (a linked worktree's `.git` file) is bound read-only itself;
- a symbolic link, FIFO, socket or device on the way is refused (fail closed): an engine
  would follow the link when it mounts.

With a bind-mounted workspace, placeholders are created on the host by `materialise`
(as the user, beside the project's files), because a mount point inside a bind mount is a
host path. With a synced workspace the protected paths are left out of the sync instead,
and placeholders come from alcatraz's own directory, so nothing appears on the host.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import re
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Final, Literal

from alcatraz.config.protected import DEFAULT_PROTECTED
from alcatraz.errors import RefusedError, quote

if TYPE_CHECKING:
    from alcatraz.config.load import Config

MAX_GIT_CONFIG_BYTES: Final = 1 << 20

Kind = Literal["readonly", "pin", "placeholder-file", "placeholder-dir"]


@dataclass(frozen=True)
class Entry:
    """One protected path, relative to the project root."""

    path: str  # no leading or trailing slash
    directory: bool  # what a placeholder for it would be


@dataclass(frozen=True)
class Placement:
    """What protects one host path: a read-only bind, a pin, or a placeholder."""

    path: str
    kind: Kind

    @property
    def readonly(self) -> bool:
        return self.kind != "pin"


#: Left out of a synced workspace's sync too (a placeholder would break git: see
#: docs/security.md): `.git/commondir` points git at another repository's config and hooks.
SYNC_ONLY: Final = (".git/commondir",)


def config_entries(config: Config) -> list[Entry]:
    """What `config` protects in its project (reads `.git/config` for `core.hooksPath`)."""
    hooks = git_hooks_dirs(config.project_root)
    return entries(config.workdir_protect, config.workdir_unprotect, hooks)


def placements_for(config: Config) -> list[Placement]:
    """`plan` for the project of `config`; raises RefusedError (see `plan`)."""
    return plan(config.project_root, config_entries(config))


def snapshot(config: Config) -> list[str]:
    """The protected entries, for drift (independent of what the host holds right now)."""
    try:
        found = config_entries(config)
    except OSError:
        return []
    return [e.path + ("/" if e.directory else "") for e in found]


def parse_entry(text: str) -> Entry:
    """`.vscode/` -> Entry(".vscode", directory=True); validation is in config.layer."""
    return Entry(text.strip("/"), text.endswith("/"))


def entries(
    protect: Iterable[str], unprotect: Iterable[str], hooks_dirs: Iterable[str] = ()
) -> list[Entry]:
    """The defaults, the hooks directories and `protect`, minus `unprotect`, in order."""
    removed = {parse_entry(u).path for u in unprotect}
    found: dict[str, Entry] = {}
    for text in (*DEFAULT_PROTECTED, *(h + "/" for h in hooks_dirs), *protect):
        entry = parse_entry(text)
        if entry.path not in removed and entry.path not in found:
            found[entry.path] = entry
    return list(found.values())


# --- the host's view, read without following links ---------------------------------------------


def _open_dir(parent: int, name: str) -> int:
    return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)


def git_hooks_dirs(root: Path) -> list[str]:
    """Project-relative directories `core.hooksPath` names in `.git/config` (all of them:
    the file may have been written by the agent, so every candidate value counts)."""
    try:
        top = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return []
    try:
        git = _open_dir(top, ".git")
    except OSError:  # absent, a file (linked worktree: hooks live elsewhere) or a link
        os.close(top)
        return []
    try:
        fd = os.open("config", os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=git)
    except OSError:
        return []
    finally:
        os.close(git)
        os.close(top)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return []
        text = handle.read(MAX_GIT_CONFIG_BYTES).decode("utf-8", "replace")
    result: list[str] = []
    for value in hooks_path_values(text):
        relative = _inside(root, value)
        if relative is not None and relative not in result:
            result.append(relative)
    return result


_SECTION: Final = re.compile(r'\s*\[\s*([^\]\s"]+)\s*(?:"(?:[^"\\]|\\.)*")?\s*\](.*)')
_KEY: Final = re.compile(r"\s*([A-Za-z][A-Za-z0-9-]*)\s*(?:=(.*))?")


def hooks_path_values(text: str) -> list[str]:
    """Every value of `core.hooksPath` (case-insensitive, as git reads it), in file order."""
    values: list[str] = []
    section = ""
    for line in text.splitlines():
        header = _SECTION.match(line)
        if header:
            section = header.group(1).lower() if '"' not in line.split("]")[0] else ""
            line = header.group(2)
        match = _KEY.match(line)
        if match and section == "core" and match.group(1).lower() == "hookspath":
            value = _git_value(match.group(2) or "")
            if value:
                values.append(value)
    return values


def _git_value(raw: str) -> str:
    """A git config value: quotes removed, comments cut, simple escapes decoded."""
    out: list[str] = []
    quoted = False
    chars = iter(raw.strip())
    for ch in chars:
        if ch == '"':
            quoted = not quoted
        elif ch == "\\":
            following = next(chars, "")
            out.append({"n": "\n", "t": "\t", "b": "\b"}.get(following, following))
        elif ch in "#;" and not quoted:
            break
        else:
            out.append(ch)
    return "".join(out).strip()


def _inside(root: Path, value: str) -> str | None:
    """`value` (absolute, or relative to the work tree) as a project-relative path, or None
    when it names something outside the project (not visible in the sandbox)."""
    if value.startswith("~") or any(ord(ch) < 32 for ch in value):
        return None
    path = PurePosixPath(value)
    if path.is_absolute():
        try:
            path = path.relative_to(PurePosixPath(os.path.normpath(root)))
        except ValueError:
            return None
    normal = os.path.normpath(str(path))
    if normal in (".", "") or normal == ".." or normal.startswith("../"):
        return None
    return normal


def plan(root: Path, protected: Sequence[Entry]) -> list[Placement]:
    """How each entry is protected, given what the host holds; raises RefusedError."""
    found: dict[str, Kind] = {}
    for entry in protected:
        for placement in _place(root, entry):
            if placement.kind == "pin" and found.get(placement.path) not in (None, "pin"):
                continue
            found[placement.path] = placement.kind
    covering = [p for p, kind in found.items() if kind != "pin"]
    return [
        Placement(path, kind)
        for path, kind in sorted(found.items())
        if not any(path.startswith(c + "/") for c in covering)  # inside a read-only one
    ]


def _place(root: Path, entry: Entry) -> list[Placement]:
    parts = entry.path.split("/")
    placements: list[Placement] = []
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for depth, name in enumerate(parts):
            here = "/".join(parts[: depth + 1])
            last = depth == len(parts) - 1
            try:
                info = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                kind: Kind = (
                    "placeholder-dir" if (entry.directory or not last) else ("placeholder-file")
                )
                return [*placements, Placement(here, kind)]
            except NotADirectoryError:
                return placements
            if stat.S_ISLNK(info.st_mode) or not (
                stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode)
            ):
                raise _refusal(entry.path, here, info.st_mode)
            if last or stat.S_ISREG(info.st_mode):
                return [*placements, Placement(here, "readonly")]
            next_fd = _open_dir(fd, name)
            os.close(fd)
            fd = next_fd
            if here == ".git" and not _exists(fd, "HEAD"):
                # Not a repository (yet): whole, so the agent cannot make one of its own.
                return [*placements, Placement(here, "readonly")]
            placements.append(Placement(here, "pin"))
    finally:
        os.close(fd)
    return placements


def _exists(fd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=fd, follow_symlinks=False)
    except OSError:
        return False
    return True


def _refusal(entry: str, here: str, mode: int) -> RefusedError:
    what = "a symbolic link" if stat.S_ISLNK(mode) else "not a regular file or directory"
    return RefusedError(
        f"cannot make {quote(entry)} read-only in the sandbox: {quote(here)} is {what}",
        hint=f"replace {quote(here)} with a plain file or directory (an engine would follow "
        f'a link when it mounts), or let the agent write it: workdir_unprotect = ["{entry}"]',
    )


def host_placeholder(placement: Placement) -> bool:
    """Whether a bind-mounted workspace gets this placeholder on the host.

    Empty directories (invisible to git) and files inside `.git/` are made; an empty file
    elsewhere (`.envrc`) would show in `git status` and make direnv complain in every
    project, so a missing one is left unprotected: direnv runs no `.envrc` you have not
    allowed (`direnv allow`), which is its own guard. A synced workspace needs no host file.
    """
    return placement.kind == "placeholder-dir" or placement.path.startswith(".git/")


def materialise(root: Path, placements: Sequence[Placement]) -> list[str]:
    """Create the placeholders on the host (bind-mounted workspace); returns what it made.

    Each is created in its parent directory opened without following links, and never
    replaces anything: a name that appeared meanwhile is left alone and refused.
    """
    made: list[str] = []
    for placement in placements:
        if not placement.kind.startswith("placeholder"):
            continue
        if not host_placeholder(placement):
            continue
        *parents, name = placement.path.split("/")
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for parent in parents:
                next_fd = _open_dir(fd, parent)
                os.close(fd)
                fd = next_fd
            if placement.kind == "placeholder-dir":
                os.mkdir(name, 0o755, dir_fd=fd)
            else:
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                os.close(os.open(name, flags, 0o644, dir_fd=fd))
        except OSError as error:
            if error.errno in (errno.EEXIST, errno.ELOOP, errno.ENOTDIR):
                raise RefusedError(
                    f"cannot make {quote(placement.path)} read-only in the sandbox: it "
                    "changed while alca prepared it",
                    hint="run 'alca up' again",
                ) from None
            raise
        finally:
            os.close(fd)
        made.append(placement.path)
    return made


def excluded(path: str, patterns: Sequence[str]) -> bool:
    """Whether `path` or a directory above it may match an exclude pattern.

    Deliberately generous (`*` crosses `/`): a protected path that might be a hidden secret
    is never bound into the sandbox.
    """
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        anchored = pattern.startswith("/") or "/" in pattern.rstrip("/")
        body = pattern.strip("/").replace("**/", "*").replace("/**", "*")
        for prefix in prefixes:
            if fnmatch.fnmatchcase(prefix, body):
                return True
            if not anchored and fnmatch.fnmatchcase(prefix.rsplit("/", 1)[-1], body):
                return True
    return False


def placeholder_sources(home: Path) -> tuple[str, str]:
    """An empty read-only file and directory under the alcatraz home (synced workspaces)."""
    base = home / "placeholders"
    base.mkdir(parents=True, exist_ok=True)
    empty_file, empty_dir = base / "empty-file", base / "empty-dir"
    if not empty_file.is_file():
        empty_file.touch()
    empty_dir.mkdir(exist_ok=True)
    os.chmod(empty_file, 0o444)
    os.chmod(empty_dir, 0o555)  # noqa: S103 - empty; the engine's daemon reads it
    os.chmod(base, 0o755)  # noqa: S103 - holds only the two empty placeholders
    return str(empty_file), str(empty_dir)


def bind_mounts(
    config: Config, placements: Sequence[Placement], home: Path
) -> list[tuple[str, str, bool]]:
    """(source, target, readonly) for each placement.

    Bind-mounted workspace: every placement is a host path (placeholders were made by
    `materialise`). Synced workspace: pins are not needed (the sync leaves the names out
    whatever directory they are in), excluded paths are never bound, and placeholders come
    from the alcatraz home.
    """
    root, workdir = config.project_root, PurePosixPath(config.workdir)
    synced = bool(config.workdir_exclude)
    mounts: list[tuple[str, str, bool]] = []
    sources: tuple[str, str] | None = None
    for placement in placements:
        target = str(workdir / placement.path)
        if not synced:
            if placement.kind.startswith("placeholder") and not host_placeholder(placement):
                continue  # not made on the host (see host_placeholder)
            mounts.append((str(root / placement.path), target, placement.readonly))
            continue
        if placement.kind == "pin" or excluded(placement.path, config.workdir_exclude):
            continue
        if placement.kind == "readonly":
            mounts.append((str(root / placement.path), target, True))
            continue
        sources = sources or placeholder_sources(home)
        mounts.append((sources[placement.kind == "placeholder-dir"], target, True))
    return mounts


def sync_ignores(config: Config, placements: Sequence[Placement]) -> list[str]:
    """Mutagen ignore patterns keeping the protected names out of a synced workspace."""
    names = [e.path for e in config_entries(config)] + [
        p.path for p in placements if p.kind != "pin"
    ]
    return ["/" + name for name in dict.fromkeys([*names, *SYNC_ONLY])]
