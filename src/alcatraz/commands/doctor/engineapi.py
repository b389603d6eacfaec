"""`alca doctor`'s `engine-api` check: which path `alca run` and `alca up` take to the engine.

The engine's API socket saves a CLI start per call (Docker ~22 ms, Podman ~90 ms); when it
is not there the CLI still works, so a missing socket warns (with how to enable it), and
never fails. What is checked is what `up` records: the local socket, asked `GET /_ping`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from alcatraz.commands.doctor.report import FAIL, INFO, OK, WARN, Check
from alcatraz.errors import quote
from alcatraz.runtime.engine_api import local_socket, ping

NAME = "engine-api"
_FORCED_CLI = ("0", "off", "cli")


def _enable_hint(engine: str, path: str) -> str:
    if engine == "podman":
        unit = "systemctl --user" if os.geteuid() != 0 else "sudo systemctl"
        return (
            f"start Podman's API service: `{unit} enable --now podman.socket` (without "
            f"systemd: `podman system service --time=0 unix://{path} &`)"
        )
    return (
        f"make {path} reachable for this user (the `docker` group, or root), or point "
        "DOCKER_HOST / `docker context` at the daemon's Unix socket"
    )


def check_engine_api(engine: str, environ: Mapping[str, str]) -> Check:
    """OK when the socket answers, WARN (with the fix) when `run` must use the CLI."""
    choice = environ.get("ALCA_ENGINE_API", "")
    if choice in _FORCED_CLI:
        return Check(
            NAME, INFO, f"ALCA_ENGINE_API={choice}: `alca run` uses the {engine} command (forced)"
        )
    if choice not in ("", "auto"):
        return Check(
            NAME,
            FAIL,
            f"ALCA_ENGINE_API={quote(choice)} is not a known value: `alca run` refuses it",
            "unset it, or set it to auto (the API when it answers) or cli",
        )
    path = local_socket(engine, environ)
    if path is None:
        return Check(
            NAME,
            INFO,
            f"{engine} is not on a local Unix socket (remote host or context): "
            f"`alca run` uses the {engine} command",
        )
    if ping(path):
        return Check(NAME, OK, f"`alca run` execs through {engine}'s API at {quote(path)}")
    found = "does not answer" if os.path.exists(path) else "is not there"
    return Check(
        NAME,
        WARN,
        f"{engine}'s API socket {quote(path)} {found}: `alca run` uses the {engine} command "
        "(slower: one more process per call)",
        _enable_hint(engine, path),
    )
