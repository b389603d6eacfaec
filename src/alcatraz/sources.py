"""Workspace paths the host hands to the engine, resolved without ever following a link.

The agent owns the project directory: it can turn any mount source, protected config file
or sync root into a symlink to a host path, and the engine resolves bind sources by path
each time it starts the container. So every such source is walked from the project root
one component at a time (`alcatraz.beneath`), refusing a link anywhere on the way,
and its identity (device, inode) is pinned when the container is created and compared
before every start (decision 0010). The sandbox-private directories of `${alca:PRIVATE}/NAME`
sources, outside the project, are made here too. Stdlib only.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from alcatraz.beneath import identity, open_beneath
from alcatraz.errors import RefusedError, quote

if TYPE_CHECKING:
    from alcatraz.config.load import Config


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
