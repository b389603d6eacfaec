"""Reach a path beneath a directory without following any link: the `openat` walk.

The agent owns the project directory and can turn any component of a path into a symlink
to a host path. Mount sources, protected config files, sync roots and the config files the
loader reads are reached one component at a time from the project root (`openat` with
`O_NOFOLLOW`), and a link anywhere on the way is refused (decision 0010). Stdlib only, and
below `config` so the loader can use it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path, PurePosixPath

from alcatraz.errors import RefusedError
from alcatraz.printable import printable

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_PATH_FLAGS = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC


def _refuse(
    relative: str, what: str, hint: str, outcome: str = "nothing was started"
) -> RefusedError:
    shown = printable("./" + relative if relative else ".")
    return RefusedError(f"workspace path {shown} {what}; {outcome}", hint=hint)


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


#: For reading or replacing a file (`net allow`), rather than starting a sandbox.
_EDIT = "nothing was read or written"
_FILE_HINT = (
    "replace it with a plain file inside the project (the agent may have made it; it would "
    "lead outside the project), then try again"
)


def _open_parent(root: Path | str, relative: str) -> tuple[int, str]:
    """(descriptor of the directory holding `relative`, its last component), by the walk."""
    parts = _parts(relative)
    if not parts:
        raise _refuse(relative, "is not a file", "name a file inside the project", _EDIT)
    try:
        return open_beneath(root, "/".join(parts[:-1])), parts[-1]
    except RefusedError as error:  # worded for a file edit, not for a start
        raise RefusedError(
            error.message.replace("nothing was started", _EDIT),
            hint=_FILE_HINT.replace("a plain file", "a real directory"),
        ) from None


def _refuse_kind(relative: str, info: os.stat_result) -> RefusedError | None:
    if stat.S_ISLNK(info.st_mode):
        return _refuse(relative, "is a symbolic link", _FILE_HINT, _EDIT)
    if not stat.S_ISREG(info.st_mode):
        return _refuse(relative, "is not a regular file", _FILE_HINT, _EDIT)
    return None


def read_beneath(root: Path | str, relative: str, limit: int) -> tuple[bytes, os.stat_result]:
    """The bytes of the regular file `root/relative`, reached without following a link,
    and its status (to notice a replacement before `replace_beneath`). Never blocks on a
    FIFO; a file over `limit` bytes is refused."""
    parent, name = _open_parent(root, relative)
    try:
        try:
            fd = os.open(
                name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY, dir_fd=parent
            )
        except OSError as error:
            if error.errno == errno.ELOOP:
                raise _refuse(relative, "is a symbolic link", _FILE_HINT, _EDIT) from None
            raise
        try:
            info = os.fstat(fd)
            refused = _refuse_kind(relative, info)
            if refused is not None:
                raise refused
            if info.st_size > limit:
                raise _refuse(relative, f"is larger than {limit} bytes", "check the file", _EDIT)
            return os.read(fd, limit + 1), info
        finally:
            os.close(fd)
    finally:
        os.close(parent)


def replace_beneath(root: Path | str, relative: str, data: bytes, expected: os.stat_result) -> None:
    """Replace the file `root/relative` with `data` atomically: a new file beside it
    (created, never opened through a link), then a rename over it. Refused when the file
    is no longer the one `read_beneath` returned `expected` for; nothing is then changed."""
    parent, name = _open_parent(root, relative)
    temporary = f".{name}.{os.urandom(6).hex()}.tmp"
    try:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(temporary, flags, stat.S_IMODE(expected.st_mode), dir_fd=parent)
        try:
            with os.fdopen(fd, "wb", closefd=False) as handle:
                handle.write(data)
                handle.flush()
                os.fsync(fd)
        finally:
            os.close(fd)
        try:
            now = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            now = None
        if now is None or not _same_file(now, expected):
            os.unlink(temporary, dir_fd=parent)
            raise _refuse(
                relative,
                "changed while it was edited",
                "check it, then try again",
                "nothing was written",
            )
        os.rename(temporary, name, src_dir_fd=parent, dst_dir_fd=parent)
        os.fsync(parent)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary, dir_fd=parent)
        raise
    finally:
        os.close(parent)


def _same_file(now: os.stat_result, expected: os.stat_result) -> bool:
    fields = ("st_dev", "st_ino", "st_mode", "st_size", "st_mtime_ns")
    return all(getattr(now, f) == getattr(expected, f) for f in fields)
