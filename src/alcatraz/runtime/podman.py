"""Podman: what differs from Docker.

Verified with Podman 4.3:
- `--init` needs `catatonit` at the configured `init_path` (default
  /usr/libexec/podman/catatonit); without it `create` fails with "container-init binary
  not found on the host: stat /usr/libexec/podman/catatonit: no such file or directory".
  `init_path` can point at another init that takes `--` (e.g. tini).
- `rm -f` first stops with a 10 s grace period (Docker kills at once), hence `-t 0`.
- Status words include "stopped" besides "exited".
- `inspect` reports caps relative to Podman's default set (`CapAdd: []` and a long `CapDrop`
  for `--cap-drop ALL --cap-add CHOWN`), plus `EffectiveCaps`, which Docker lacks.
- `Config.Image` is the fully qualified name (docker.io/library/alpine:3.21).
- Podman needs no daemon: `podman version` answers without contacting anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar

from alcatraz.errors import AlcaError, UnavailableError
from alcatraz.proc import CommandFailed
from alcatraz.runtime.base import ContainerSpec, ContainerState
from alcatraz.runtime.cli_compat import PROBE_TIMEOUT, CliRuntime, check_name

if TYPE_CHECKING:
    from alcatraz.proc import Runner

__all__ = ["PodmanRuntime"]

_NO_INIT = "container-init binary not found"


class PodmanRuntime(CliRuntime):
    """Podman, through the `podman` CLI."""

    STATES: ClassVar[Mapping[str, ContainerState]] = {
        **CliRuntime.STATES,
        "stopped": ContainerState.STOPPED,
    }
    VERSION_FORMAT: ClassVar[str] = "{{.Version}}"
    LIBPOD: ClassVar[bool] = True

    def __init__(
        self, runner: Runner, *, executable: str = "podman", init_path: str | None = None
    ) -> None:
        super().__init__(executable, "Podman", runner)
        self.init_path = init_path

    def init_args(self) -> list[str]:
        if self.init_path:
            return ["--init", "--init-path", self.init_path]
        return ["--init"]

    def network_interface_args(self, interface: str) -> list[str]:
        """Podman 4.3 names bridges itself (podmanN); alcatraz reads the name back."""
        return []

    def no_engine_dns_args(self) -> list[str]:
        """No aardvark-dns on the gateway: the project's resolver listens there instead."""
        return ["--disable-dns"]

    def remove_args(self, name: str) -> list[str]:
        return ["rm", "-f", "-t", "0", check_name(name)]

    def is_rootless(self) -> bool:
        """Root running a local Podman is rootful by definition; otherwise ask (~200 ms, once
        per engine identity)."""
        import os

        if os.geteuid() == 0 and not self.runner_env_remote():
            return False
        answer = self.facts.get("rootless") if self.facts is not None else None
        if answer is None:
            result = self._checked(
                ["info", "--format", "{{.Host.Security.Rootless}}"], timeout=PROBE_TIMEOUT
            )
            answer = result.stdout.strip()
            if self.facts is not None and answer in ("true", "false"):
                self.facts.put("rootless", answer)
        if answer not in ("true", "false"):
            raise AlcaError(
                f"could not tell whether Podman runs rootless: `podman info` printed {answer!r}",
                hint="check that `podman info` works",
            )
        return answer == "true"

    @staticmethod
    def runner_env_remote() -> bool:
        import os

        return bool(os.environ.get("CONTAINER_HOST") or os.environ.get("CONTAINER_CONNECTION"))

    def create(self, spec: ContainerSpec) -> str:
        try:
            return super().create(spec)
        except CommandFailed as exc:
            if _NO_INIT in exc.result.stderr:
                raise UnavailableError(
                    "Podman cannot start an init process in the container: "
                    + exc.result.stderr.strip(),
                    hint="install catatonit (e.g. `apt install catatonit`), or set init_path "
                    "under [containers] in containers.conf to another init such as "
                    "/usr/bin/tini",
                ) from None
            raise
