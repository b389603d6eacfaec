"""Workspace paths the host hands to the engine, resolved without ever following a link.

The agent owns the project directory: it can turn any mount source, protected config file
or sync root into a symlink to a host path, and the engine resolves bind sources by path
each time it starts the container. So every such source is walked from the project root
one component at a time (`openat` with `O_NOFOLLOW`), refusing a link anywhere on the way,
and its identity (device, inode) is pinned when the container is created and compared
before every start (decision 0010). The sandbox-private directories of `${alca:PRIVATE}/NAME`
sources, outside the project, are made here too. Stdlib only.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from alcatraz.errors import RefusedError, quote
from alcatraz.printable import printable

if TYPE_CHECKING:
    from alcatraz.config.load import Config

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_PATH_FLAGS = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC


def _refuse(relative: str, what: str, hint: str) -> RefusedError:
    shown = printable("./" + relative if relative else ".")
    return RefusedError(f"workspace path {shown} {what}; nothing was started", hint=hint)


_LINK_HINT = (
    "replace it with a real directory or file inside the project (the agent may have made "
    "it; the engine would follow it out of the project), then run 'alca up' again"
)


def _parts(relative: str) -> list[str]:
    path = PurePosixPath(relative)
    if path.is_absolute() or ".." in path.parts:
        raise _refuse(relative, "leaves the project ('..' or absolute)", "use a path inside it")
    return [p for p in path.parts if p != "."]


def _kind(parent: int, name: str) -> int:
    """The file type of `name` in directory `parent`, without following a link."""
    return stat.S_IFMT(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode)


def open_beneath(root: Path | str, relative: str, *, create: bool = False) -> int:
    """A file descriptor for `root/relative`, reached without following any link.

    Every component but the last must be a directory; the last a directory or a regular
    file. With `create`, missing directories are made with `mkdirat` beneath descriptors
    already checked. Raises `RefusedError` (links, FIFOs, devices, `..`), or
    `FileNotFoundError` for a missing component without `create`.
    """
    parts = _parts(relative)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)  # the user's own path
    try:
        for depth, name in enumerate(parts):
            last = depth == len(parts) - 1
            shown = "/".join(parts[: depth + 1])
            try:
                kind = _kind(fd, name)
            except FileNotFoundError:
                if not create:
                    raise
                os.mkdir(name, 0o755, dir_fd=fd)
                kind = stat.S_IFDIR
            if kind == stat.S_IFLNK:
                raise _refuse(shown, "is a symbolic link", _LINK_HINT)
            if kind == stat.S_IFREG and last:
                child = os.open(name, _PATH_FLAGS, dir_fd=fd)
                if not stat.S_ISREG(os.fstat(child).st_mode):  # swapped since the stat
                    os.close(child)
                    raise _refuse(shown, "changed while it was checked", _LINK_HINT)
            elif kind == stat.S_IFDIR:
                try:
                    child = os.open(name, _DIR_FLAGS, dir_fd=fd)
                except OSError as error:
                    if error.errno in (errno.ELOOP, errno.ENOTDIR):
                        raise _refuse(shown, "is a symbolic link", _LINK_HINT) from None
                    raise
            else:
                what = "is not a directory" if not last else "is not a directory or file"
                raise _refuse(shown, what, "replace it with a real directory or file")
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def identity(root: Path | str, relative: str) -> list[int]:
    """[st_dev, st_ino] of `root/relative`, reached without following links."""
    fd = open_beneath(root, relative)
    try:
        info = os.fstat(fd)
        return [info.st_dev, info.st_ino]
    finally:
        os.close(fd)


def workspace_relative(config: Config, path: Path | str) -> str | None:
    """`path` relative to the project root ("" for the root), or None when outside it."""
    root = config.project_root
    target = Path(os.path.normpath(path))
    for base in (root, root.resolve()):
        try:
            relative = target.relative_to(base).as_posix()
            return "" if relative == "." else relative
        except ValueError:
            continue
    return None


def workspace_sources(config: Config) -> list[str]:
    """Every bind source, sync root and protected config file inside the project."""
    found: list[str] = []
    candidates: Iterable[Path | str] = [
        *(m.source for m in config.mounts),
        *config.files,
    ]
    for path in candidates:
        relative = workspace_relative(config, path)
        if relative is not None and relative not in found:
            found.append(relative)
    return found


def pins(config: Config) -> dict[str, list[int]]:
    """Identity of every workspace source that exists; refuses links (see `open_beneath`)."""
    result: dict[str, list[int]] = {}
    for relative in workspace_sources(config):
        try:
            result[relative] = identity(config.project_root, relative)
        except FileNotFoundError:
            continue
    return result


def replaced(recorded: object, current: dict[str, list[int]]) -> list[str]:
    """The sources pinned at create that are now another file or gone."""
    if not isinstance(recorded, dict):
        return []
    return [path for path, ident in recorded.items() if current.get(path) != ident]


def ensure(config: Config, relative: str) -> None:
    """Create the missing directories of `relative` beneath the root, following no link."""
    os.close(open_beneath(config.project_root, relative, create=True))


def ensure_private(source: Path) -> None:
    """Create a private directory (0700); refuse one that is not a plain directory.

    Its parents are alcatraz's own state, which no sandbox can see, so only the last step
    is checked; it must not be a symlink (nothing in a sandbox can plant one there, but a
    symlink would send the engine elsewhere on every start).
    """
    source.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(FileExistsError):
        os.mkdir(source, 0o700)
    info = os.lstat(source)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise RefusedError(
            f"the sandbox-private directory {quote(str(source))} is not a directory you own",
            hint="remove it; `alca up` creates it again",
        )
