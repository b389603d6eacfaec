"""Where things live: the project root, and alcatraz's own per-user directory.

Stdlib only: `alca run` imports this. Nothing here writes anything.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Final

CONFIG_NAME: Final = ".alca.toml"


def find_project_root(start: Path) -> Path | None:
    """Nearest directory at or above `start` holding a `.alca.toml` that is not a directory.

    A directory named `.alca.toml` (or a symlink to one) does not count, as upstream. Any
    other kind of entry does, so that a FIFO or a dangling symlink gets a precise error from
    the loader rather than "not initialized".
    """
    current = start
    while True:
        candidate = current / CONFIG_NAME
        try:
            if not stat.S_ISDIR(candidate.lstat().st_mode) and not candidate.is_dir():
                return current  # not a regular file? the loader will say so, clearly
        except OSError:
            pass
        if current.parent == current:
            return None
        current = current.parent


def alca_home(environ: os._Environ[str] | dict[str, str] | None = None) -> Path:
    """alcatraz's per-user directory (`~/.alcatraz`, or `$ALCA_HOME`).

    It lives outside every project, so nothing inside a sandbox can read or change it.
    """
    env = os.environ if environ is None else environ
    override = env.get("ALCA_HOME")
    if override:
        return Path(override)
    home = env.get("HOME") or str(Path.home())
    return Path(home) / ".alcatraz"


def display_path(path: Path, cwd: Path | None = None) -> str:
    """A path as the user should see it: relative when under the current directory."""
    base = cwd if cwd is not None else Path.cwd()
    try:
        relative = path.relative_to(base)
    except ValueError:
        return str(path)
    return str(relative) if str(relative) != "." else str(path)
