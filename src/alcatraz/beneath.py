"""Reach a path beneath a directory without following any link: the `openat` walk.

The agent owns the project directory and can turn any component of a path into a symlink
to a host path. Mount sources, protected config files, sync roots and the config files the
loader reads are reached one component at a time from the project root (`openat` with
`O_NOFOLLOW`), and a link anywhere on the way is refused (decision 0010). Stdlib only, and
below `config` so the loader can use it.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path, PurePosixPath

from alcatraz.errors import RefusedError
from alcatraz.printable import printable

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
