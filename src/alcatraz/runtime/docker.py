"""Docker (and Docker-compatible desktops such as OrbStack): what differs from Podman.

Docker needs its daemon, so the availability probe asks for the *server* version: a
`docker` client without a reachable daemon is not a usable engine.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, ClassVar

from alcatraz.errors import AlcaError
from alcatraz.runtime.cli_compat import PROBE_TIMEOUT, CliRuntime

if TYPE_CHECKING:
    from alcatraz.proc import Runner

__all__ = ["DockerRuntime", "is_orbstack", "rootless_from_security_options"]


def rootless_from_security_options(text: str) -> bool:
    """Read `docker info --format '{{json .SecurityOptions}}'` (e.g. `["name=rootless"]`).

    Each entry is a comma-separated list of `key=value`; rootless mode shows as `name=rootless`.
    Anything that is not a JSON list of strings is an error: callers must not guess.
    """
    try:
        options = json.loads(text)
    except json.JSONDecodeError:
        options = None
    if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
        raise AlcaError(
            f"could not read Docker's security options from {text.strip()[:200]!r}",
            hint="check that `docker info` works",
        )
    return any("name=rootless" in option.split(",") for option in options)


def is_orbstack(operating_system: str) -> bool:
    """Whether `docker info --format {{.OperatingSystem}}` names an OrbStack engine."""
    return "orbstack" in operating_system.lower()


class DockerRuntime(CliRuntime):
    """Docker Engine, Docker Desktop or OrbStack, through the `docker` CLI."""

    VERSION_FORMAT: ClassVar[str] = "{{.Server.Version}}"

    #: Both facts `up` asks Docker, in one `docker info` (each call costs ~15 ms).
    FACTS_FORMAT: ClassVar[str] = "{{json .SecurityOptions}}\t{{json .OperatingSystem}}"

    def __init__(self, runner: Runner, *, executable: str = "docker", name: str = "Docker") -> None:
        super().__init__(executable, name, runner)
        self._facts: tuple[str, str] | None = None

    def _engine_facts(self) -> tuple[str, str]:
        """(security options, operating system) as JSON text: once per daemon identity."""
        if self._facts is None:
            text = self.facts.get("info") if self.facts is not None else None
            if text is None:
                args = ["info", "--format", self.FACTS_FORMAT]
                text = self._checked(args, timeout=PROBE_TIMEOUT).stdout.strip("\n")
                rootless_from_security_options(text.partition("\t")[0])  # never cache junk
                if self.facts is not None:
                    self.facts.put("info", text)
            options, _, system = text.partition("\t")
            self._facts = (options, system)
        return self._facts

    def is_rootless(self) -> bool:
        return rootless_from_security_options(self._engine_facts()[0])

    def operating_system(self) -> str:
        """The engine's OS as Docker reports it ("OrbStack", "Docker Desktop", a distro)."""
        text = self._engine_facts()[1].strip()
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            return text
        return value if isinstance(value, str) else ""
