"""Engine facts (version, rootless, operating system) asked once per daemon identity.

Why: `docker version` and `docker info` cost 15-60 ms each and `podman info` ~200 ms, and
their answers only change when the engine does. They are kept in `ALCA_HOME/engine-facts.json`
under the engine's identity: for a local API socket the socket file's (device, inode,
ctime), which a restarted daemon recreates; otherwise (a remote host, no socket) the CLI's
name and the variables that select the host, trusted for `CLI_TTL` seconds only. A corrupt
or foreign cache file is ignored and rewritten; writing it may fail without harm (the facts
are asked again next time). The cache lives in the user's alcatraz home, outside every
project, so nothing inside a sandbox can change it.

`ALCA_ENGINE_API` chooses whether queries go through the API socket: unset or `auto` use it
when it answers; `0`, `off` or `cli` always use the engine's CLI.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from alcatraz.errors import UsageError, quote

__all__ = ["API_ENV", "CACHE_FILE", "CLI_TTL", "FactsCache", "api_enabled", "identity"]

API_ENV: Final = "ALCA_ENGINE_API"
CACHE_FILE: Final = "engine-facts.json"
CLI_TTL: Final = 60.0
"""Seconds a fact asked without a socket identity is trusted."""

_HOST_VARIABLES: Final = ("DOCKER_HOST", "DOCKER_CONTEXT", "CONTAINER_HOST", "CONTAINER_CONNECTION")


def api_enabled(environ: Mapping[str, str]) -> bool:
    """Whether `ALCA_ENGINE_API` allows the API socket (a bad value is a usage error)."""
    value = environ.get(API_ENV, "")  # the same values as `alca run` (sandbox.enter)
    if value in ("", "auto"):
        return True
    if value in ("0", "off", "cli"):
        return False
    raise UsageError(
        f"{API_ENV}={quote(environ.get(API_ENV, ''))} is not understood",
        hint=f"unset {API_ENV} (or set it to auto) to use the engine's API socket when it "
        "answers, or set it to cli to always use the engine's command-line tool",
    )


def identity(executable: str, environ: Mapping[str, str]) -> tuple[str, str | None]:
    """(the engine's identity, its local API socket or None).

    A socket identity changes when the daemon restarts; a CLI identity never does, so its
    facts expire after `CLI_TTL`. Both name the CLI program found on PATH: facts asked
    through another `docker` (a wrapper, another installation) are that program's.
    """
    from alcatraz.runtime.engine_api import local_socket

    program = shutil.which(executable, path=environ.get("PATH")) or executable
    socket_path = local_socket(executable, environ)
    if socket_path:
        try:
            found = os.stat(socket_path)
        except OSError:
            found = None
        if found is not None and stat.S_ISSOCK(found.st_mode):
            daemon = f"{socket_path} {found.st_dev} {found.st_ino} {found.st_ctime_ns}"
            return f"socket {daemon} via {program}", socket_path
    selected = " ".join(f"{name}={environ.get(name, '')}" for name in _HOST_VARIABLES)
    return f"cli {program} {selected}", None


class FactsCache:
    """The cached facts of one engine (by executable) under its current identity."""

    def __init__(self, home: Path, executable: str, environ: Mapping[str, str]) -> None:
        self.path = home / CACHE_FILE
        self.executable = executable
        self.identity, self.socket = identity(executable, environ)
        self._entries: dict[str, object] | None = None

    def _load(self) -> dict[str, object]:
        if self._entries is None:
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                data = None
            self._entries = data if isinstance(data, dict) else {}
        return self._entries

    def _current(self) -> dict[str, object]:
        """This engine's facts when they belong to its current identity (else empty)."""
        entry = self._load().get(self.executable)
        if not isinstance(entry, dict) or entry.get("identity") != self.identity:
            return {}
        facts = entry.get("facts")
        stored = entry.get("stored")
        if not isinstance(facts, dict) or not isinstance(stored, (int, float)):
            return {}
        if self.socket is None and not 0 <= time.time() - stored <= CLI_TTL:
            return {}
        return facts

    def get(self, name: str) -> str | None:
        value = self._current().get(name)
        return value if isinstance(value, str) else None

    def put(self, name: str, value: str) -> None:
        """Remember one fact; the file is replaced atomically, and a failure is harmless."""
        entries = self._load()
        current = dict(self._current())
        current[name] = value
        entries[self.executable] = {
            "identity": self.identity,
            "stored": time.time(),
            "facts": current,
        }
        temporary = self.path.with_name(f".{CACHE_FILE}.{os.getpid()}")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_text(json.dumps(entries, sort_keys=True), encoding="utf-8")
            os.replace(temporary, self.path)
        except OSError:
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)
