"""The Mutagen daemon private to alcatraz: its data directory, environment and `docker` link.

Isolation. Every command runs with `MUTAGEN_DATA_DIRECTORY=<data_dir>`: a daemon private to
alcatraz, so a user's own Mutagen (another version, `~/.mutagen`) never meets ours. All other
`MUTAGEN_*` variables are removed from the environment (`MUTAGEN_BETA_DOCKER_HOST` and the
like would redirect an endpoint), and `sync create` gets `--no-global-configuration`, so
`~/.mutagen.yml` cannot add ignores, negations or modes. The docker:// transport runs a
program named `docker` found in `MUTAGEN_DOCKER_PATH`; this points at `<data_dir>/bin`, where
`docker` is a symlink to the engine's CLI (`podman` for Podman), so the daemon drives the
right engine whatever PATH started it. The daemon looks that program up on every call, so
one data directory serves one engine (recorded in `<data_dir>/engine`).

Layout and its limit. `<data_dir>/daemon/daemon.sock` is a Unix socket, and Linux socket
paths hold at most 107 bytes, so `data_dir` may be at most 88 bytes long. Longer, and Mutagen
fails with the misleading "unable to connect to daemon: connection timed out (is the daemon
running?)", so it is refused up front. A path like `~/.alcatraz/m/<8 chars>` fits. It must
not lie inside a synced directory (the daemon's own writes would be synced forever).
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from alcatraz.errors import UnavailableError, quote
from alcatraz.sync.sessions import SyncError

SOCKET_PATH_MAX: Final = 107
"""Bytes in a Linux Unix-socket path (`sun_path` is 108 with the terminating NUL)."""
_SOCKET_SUFFIX: Final = "/daemon/daemon.sock"
MAX_DATA_DIR_BYTES: Final = SOCKET_PATH_MAX - len(_SOCKET_SUFFIX)  # 88

# Captured by `sync create` and replayed to every docker call; meaningless for Podman.
_DOCKER_VARS: Final = (
    "DOCKER_HOST",
    "DOCKER_TLS",
    "DOCKER_TLS_VERIFY",
    "DOCKER_CERT_PATH",
    "DOCKER_CONTEXT",
    "DOCKER_CONFIG",
    "DOCKER_API_VERSION",
)


def check_data_dir(data_dir: Path) -> None:
    """Refuse a relative data directory, or one too long for the daemon's socket path."""
    if not data_dir.is_absolute():
        raise ValueError(f"the sync data directory must be absolute, not {str(data_dir)!r}")
    size = len(os.fsencode(str(data_dir)))
    if size > MAX_DATA_DIR_BYTES:
        raise SyncError(
            f"the sync data directory {quote(str(data_dir))} is {size} bytes long; "
            f"at most {MAX_DATA_DIR_BYTES} fit (its daemon socket path must stay within "
            f"{SOCKET_PATH_MAX} bytes)",
            hint="use a shorter ALCA_HOME or HOME",
        )


def docker_dir(data_dir: Path) -> Path:
    """Where the daemon finds the program it runs as `docker`."""
    return data_dir / "bin"


def socket_path(data_dir: Path) -> Path:
    """The daemon's Unix socket, whose length `check_data_dir` bounds."""
    return data_dir / "daemon" / "daemon.sock"


def isolated_env(source: Mapping[str, str], engine: str, data_dir: Path) -> dict[str, str]:
    """`source` without any `MUTAGEN_*` variable (nor Docker's, for Podman), aimed at our daemon."""
    env = {k: v for k, v in source.items() if not k.startswith("MUTAGEN_")}
    if engine == "podman":
        for key in _DOCKER_VARS:
            env.pop(key, None)
    env["MUTAGEN_DATA_DIRECTORY"] = str(data_dir)
    env["MUTAGEN_DOCKER_PATH"] = str(docker_dir(data_dir))
    return env


def prepare_data_dir(
    data_dir: Path, engine: str, engine_executable: str, env: Mapping[str, str]
) -> None:
    """Create the data dir and the `docker` symlink the daemon will use."""
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o700)
    marker = data_dir / "engine"
    try:
        recorded = marker.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        recorded = ""
    if recorded and recorded != engine:
        raise SyncError(
            f"the sync data directory {quote(str(data_dir))} belongs to {recorded}, not {engine}",
            hint="use one sync data directory per container engine",
        )
    _link_engine(docker_dir(data_dir), engine, engine_executable, env)
    if not recorded:
        marker.write_text(engine + "\n", encoding="utf-8")


def _link_engine(
    link_dir: Path, engine: str, engine_executable: str, env: Mapping[str, str]
) -> None:
    """Point `<link_dir>/docker` at the engine's CLI, replacing the link in one rename."""
    target = shutil.which(engine_executable, path=env.get("PATH", os.defpath))
    if target is None:
        raise UnavailableError(
            f"{engine_executable} is not installed (not found on PATH)",
            hint=f"install {engine}, or fix PATH",
        )
    target = os.path.abspath(target)
    link_dir.mkdir(mode=0o700, exist_ok=True)
    link = link_dir / "docker"
    try:
        current = os.readlink(link)
    except OSError:
        current = None
    if current != target:
        staged = link_dir / f".docker.{os.getpid()}"
        staged.unlink(missing_ok=True)
        staged.symlink_to(target)
        staged.replace(link)


def socket_answers(path: Path) -> bool:
    """Whether a daemon accepts a connection on `path` (no program is run)."""
    if not path.exists():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(2.0)
        try:
            sock.connect(os.fsencode(str(path)))
        except OSError:
            return False
    return True
