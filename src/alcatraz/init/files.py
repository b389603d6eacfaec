"""Writing the files `alca init` creates or updates, and checking what it is about to write."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from alcatraz.config.schema import SCHEMA_FILE_NAME, schema_text


def toml_problem(text: str) -> str | None:
    """Why `text` is not valid TOML, or None when it is."""
    import tomllib

    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        return str(error)
    return None


def write_text_atomic(
    path: Path, text: str, *, exclusive: bool = False, follow: bool = True
) -> None:
    """Write through a temporary file and a rename, so a reader never sees half a file.

    `exclusive` refuses to replace an existing file, atomically (a hard link fails if the
    name exists). Otherwise an existing file keeps its permission bits and a symlink is
    followed, unless `follow` is false: then the rename replaces the link itself, so a
    link planted in the project cannot send the write elsewhere. A new file gets 0644.
    """
    target = path
    mode = 0o644
    if not exclusive:
        if follow and path.is_symlink():
            target = Path(os.path.realpath(path))
        with contextlib.suppress(OSError):
            info = target.stat() if follow else target.lstat()
            if stat.S_ISREG(info.st_mode):
                mode = stat.S_IMODE(info.st_mode)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.chmod(mode)
        if not exclusive:
            tmp.replace(target)
            return
        try:
            os.link(tmp, target)
        except FileExistsError:
            raise
        except OSError:
            # No hard links on this file system: fall back to check-then-rename.
            if os.path.lexists(target):
                raise FileExistsError(target) from None
            tmp.replace(target)
    finally:
        if tmp.exists():
            tmp.unlink()


def install_user_schema(home: Path) -> Path:
    """Write the schema into alcatraz's per-user directory; returns its path."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / SCHEMA_FILE_NAME
    text = schema_text()
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    return path
