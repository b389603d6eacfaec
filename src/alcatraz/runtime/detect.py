"""Choose the container engine, and say why it was chosen.

Precedence, highest first:
1. the configuration (`runtime = "docker"` or `"podman"`): that engine or an error;
2. the environment variable `ALCA_RUNTIME` (`docker` or `podman`): the same, for a user who
   wants one engine everywhere without editing each project's configuration. It does not
   override an explicit configuration value, because the project author chose that one;
3. auto: on Linux Podman if it answers, else Docker; elsewhere Docker.

`ALCA_RUNTIME` empty or `auto` means auto. On macOS a Docker engine that reports
"OrbStack" as its operating system is shown as OrbStack; it is still driven with `docker`.
Detection runs the engines' version probes, so the result is cached per process.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

from alcatraz.errors import AlcaError, UnavailableError, UsageError, quote
from alcatraz.proc import SubprocessRunner
from alcatraz.runtime.docker import DockerRuntime, is_orbstack
from alcatraz.runtime.engine_facts import FactsCache, api_enabled
from alcatraz.runtime.podman import PodmanRuntime

if TYPE_CHECKING:
    from pathlib import Path

    from alcatraz.proc import Runner
    from alcatraz.runtime.base import Runtime
    from alcatraz.runtime.cli_compat import CliRuntime

__all__ = ["ENGINES", "RUNTIME_ENV", "clear_cache", "resolve_runtime"]

RUNTIME_ENV: Final = "ALCA_RUNTIME"
ENGINES: Final = ("docker", "podman")
_PLATFORM_NAMES: Final = {"linux": "Linux", "darwin": "macOS"}

_DOCKER_HINTS: Final = {
    "linux": "start the Docker daemon (e.g. `sudo systemctl start docker`), or install "
    "Docker Engine: https://docs.docker.com/engine/install/",
    "darwin": "start Docker Desktop or OrbStack, or install one of them: "
    "https://docs.docker.com/desktop/ or https://orbstack.dev/",
}
_PODMAN_HINTS: Final = {
    "linux": "install Podman (e.g. `sudo apt install podman`): https://podman.io/docs/installation",
    "darwin": "start the Podman machine (`podman machine start`), or install Podman: "
    "https://podman.io/docs/installation",
}

_default_runner: Runner | None = None
_cache: dict[tuple[str, str, str, str], tuple[Runner, Runtime, str]] = {}


def clear_cache() -> None:
    """Forget cached detections (tests; or after starting an engine)."""
    _cache.clear()


def _hint(hints: Mapping[str, str], platform: str) -> str:
    return hints.get(platform, hints["linux"])


def _name_orbstack(docker: DockerRuntime, platform: str) -> DockerRuntime:
    """Show Docker as OrbStack when the macOS engine says it is one (display only)."""
    if platform == "darwin":
        try:
            if is_orbstack(docker.operating_system()):
                docker.name = "OrbStack"
        except AlcaError:
            pass  # only the display name depends on it
    return docker


class _Engines:
    """Makes the engines' runtimes, each with its facts cache when there is a home for it."""

    def __init__(self, runner: Runner, environ: Mapping[str, str], home: Path | None) -> None:
        self.runner, self.environ, self.home = runner, environ, home
        self.api = home is not None and api_enabled(environ)

    def _with_facts(self, runtime: CliRuntime) -> None:
        if self.home is not None:
            runtime.use_facts(FactsCache(self.home, runtime.executable, self.environ), api=self.api)

    def docker(self) -> DockerRuntime:
        docker = DockerRuntime(self.runner)
        self._with_facts(docker)
        return docker

    def podman(self) -> PodmanRuntime:
        podman = PodmanRuntime(self.runner)
        self._with_facts(podman)
        return podman


def _explicit(choice: str, why: str, engines: _Engines, platform: str) -> tuple[Runtime, str]:
    if choice == "docker":
        docker = engines.docker()
        if docker.available():
            return _name_orbstack(docker, platform), why
        raise UnavailableError(f"Docker not available ({why})", hint=_hint(_DOCKER_HINTS, platform))
    podman = engines.podman()
    if podman.available():
        return podman, why
    raise UnavailableError(f"Podman not available ({why})", hint=_hint(_PODMAN_HINTS, platform))


def _auto(engines: _Engines, platform: str) -> tuple[Runtime, str]:
    where = _PLATFORM_NAMES.get(platform, platform)
    if platform == "linux":
        podman = engines.podman()
        if podman.available():
            return podman, "auto: Podman found on Linux"
        docker = engines.docker()
        if docker.available():
            return _name_orbstack(docker, platform), "auto: Podman not available, using Docker"
        raise UnavailableError(
            "no container runtime available: neither Podman nor Docker found",
            hint=_hint(_PODMAN_HINTS, platform) + "\nor " + _hint(_DOCKER_HINTS, platform),
        )
    docker = engines.docker()
    if docker.available():
        _name_orbstack(docker, platform)
        label = "Docker" if docker.name == "Docker" else f"Docker ({docker.name})"
        return docker, f"auto: {label} on {where}"
    raise UnavailableError(
        "no container runtime available: Docker not found", hint=_hint(_DOCKER_HINTS, platform)
    )


def _choose(
    configured: str, env_value: str, engines: _Engines, platform: str
) -> tuple[Runtime, str]:
    if configured in ENGINES:
        return _explicit(configured, f"configured runtime={configured}", engines, platform)
    if configured not in ("", "auto"):
        raise UsageError(
            f"unknown runtime {quote(configured)}: expected auto, docker or podman",
            hint='set runtime = "auto", "docker" or "podman"',
        )
    if env_value in ENGINES:
        return _explicit(env_value, f"{RUNTIME_ENV}={env_value}", engines, platform)
    if env_value not in ("", "auto"):
        raise UsageError(
            f"{RUNTIME_ENV}={quote(env_value)} is not a runtime: expected docker, podman or auto",
            hint=f"unset {RUNTIME_ENV}, or set it to docker or podman",
        )
    return _auto(engines, platform)


def resolve_runtime(
    configured: str = "auto",
    *,
    platform: str = sys.platform,
    runner: Runner | None = None,
    environ: Mapping[str, str] | None = None,
    home: Path | None = None,
) -> tuple[Runtime, str]:
    """The engine to use and the reason, e.g. "auto: Podman found on Linux".

    `configured` is the config's `runtime` value. Raises `UnavailableError` (with a hint on
    starting or installing the engine) when the chosen engine does not answer. With `home`
    (`App.facts_home`), engine facts are cached there and queries may use the API socket.
    """
    global _default_runner
    if runner is None:
        if _default_runner is None:
            _default_runner = SubprocessRunner()
        runner = _default_runner
    if environ is None:
        environ = os.environ
    env_value = environ.get(RUNTIME_ENV, "")
    key = (configured, platform, env_value, str(home or ""))
    cached = _cache.get(key)
    if cached is not None and cached[0] is runner:
        return cached[1], cached[2]
    engines = _Engines(runner, environ, home)
    runtime, reason = _choose(configured, env_value, engines, platform)
    _cache[key] = (runner, runtime, reason)
    return runtime, reason
