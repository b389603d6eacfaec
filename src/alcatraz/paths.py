"""Where things live: the project root, and alcatraz's own per-user directory.

Stdlib only: `alca run` imports this. Nothing here writes anything.
"""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from pathlib import Path

CONFIG_NAME: Final = ".alca.toml"


def find_root(start: str) -> str | None:
    """Nearest directory at or above `start` holding a `.alca.toml` that is not a directory.

    A directory named `.alca.toml` (or a symlink to one) does not count, as upstream. Any
    other kind of entry does, so that a FIFO or a dangling symlink gets a precise error from
    the loader rather than "not initialized". Strings only: `alca run` avoids pathlib.
    """
    current = start
    while True:
        candidate = os.path.join(current, CONFIG_NAME)
        try:
            if not stat.S_ISDIR(os.lstat(candidate).st_mode) and not os.path.isdir(candidate):
                return current
        except OSError:
            pass
        parent = os.path.dirname(current)
        if parent == current:
            return None
        current = parent


def find_project_root(start: Path) -> Path | None:
    """`find_root` for `Path`s."""
    found = find_root(str(start))
    return None if found is None else type(start)(found)


def alca_home_str(environ: os._Environ[str] | dict[str, str] | None = None) -> str:
    """alcatraz's per-user directory as a string (see `alca_home`)."""
    env = os.environ if environ is None else environ
    override = env.get("ALCA_HOME")
    if override:
        return override
    return os.path.join(env.get("HOME") or os.path.expanduser("~"), ".alcatraz")


def alca_home(environ: os._Environ[str] | dict[str, str] | None = None) -> Path:
    """alcatraz's per-user directory (`~/.alcatraz`, or `$ALCA_HOME`).

    It lives outside every project, so nothing inside a sandbox can read or change it.
    """
    from pathlib import Path

    return Path(alca_home_str(environ))


def display_path(path: Path, cwd: Path | None = None) -> str:
    """A path as the user should see it: relative when under the current directory."""
    base = cwd if cwd is not None else type(path).cwd()
    try:
        relative = path.relative_to(base)
    except ValueError:
        return str(path)
    return str(relative) if str(relative) != "." else str(path)
