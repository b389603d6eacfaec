"""Which Mutagen alcatraz needs, and how to tell that it is installed.

Mutagen itself must be 0.18.1 exactly (CLI, daemon and in-container agent must match, and
0.18.0 cannot install its agent into Docker >= 28 or Podman); `INSTALL_HINT` says how to
get it. The CLI alone is not enough: it copies its agent into each container from the
agent bundle installed beside it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Final

from alcatraz.errors import UnavailableError
from alcatraz.sync.sessions import error_text

if TYPE_CHECKING:
    from alcatraz.proc import Result

MUTAGEN_VERSION: Final = "0.18.1"
EXECUTABLE: Final = "mutagen"
AGENT_BUNDLE: Final = "mutagen-agents.tar.gz"
INSTALL_HINT: Final = (
    f"install Mutagen {MUTAGEN_VERSION}: put `mutagen` and `{AGENT_BUNDLE}` from its release "
    "archive in one directory on PATH, or build both from the Go module proxy "
    f"(github.com/mutagen-io/mutagen@v{MUTAGEN_VERSION}) as scripts/setup-test-env.sh does"
)


def check_version(result: Result, executable: str) -> str:
    """The version that `mutagen version` printed, if it is the one required."""
    found = result.stdout.strip()
    if not result.ok or not found:
        raise UnavailableError(
            f"`{executable} version` failed: {error_text(result)}", hint=INSTALL_HINT
        )
    if found != MUTAGEN_VERSION:
        raise UnavailableError(
            f"mutagen {MUTAGEN_VERSION} is required, found {found}", hint=INSTALL_HINT
        )
    return found


def check_agent_bundle(executable: str, env: Mapping[str, str]) -> None:
    """Refuse a Mutagen whose agent bundle is missing: it could sync nothing into a container."""
    where = shutil.which(executable, path=env.get("PATH", os.defpath))
    if where is None:
        return
    real = Path(os.path.realpath(where))
    candidates = [real.parent / AGENT_BUNDLE]
    if real.parent.name == "bin":
        candidates.append(real.parent.parent / "libexec" / AGENT_BUNDLE)
    if not any(path.is_file() for path in candidates):
        raise UnavailableError(
            f"mutagen's agent bundle {AGENT_BUNDLE} is missing (looked for "
            + ", ".join(str(p) for p in candidates)
            + "); without it nothing can be synced into a container",
            hint=INSTALL_HINT,
        )
