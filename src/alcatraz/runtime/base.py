"""The container-engine interface and its value objects.

One small protocol with one real implementation per engine CLI (docker, podman). Argv
building is pure (`ContainerSpec` -> list of strings) so "does `up` produce the right
flags?" is a unit test; running goes through `alcatraz.proc`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from alcatraz.config.netgrammar import PortMapping
    from alcatraz.proc import Result

LABEL_PROJECT_ID = "alca.project.id"
LABEL_PROJECT_PATH = "alca.project.path"
LABEL_VERSION = "alca.version"
LABEL_VERSION_VALUE = "1"
#: Which alcatraz home (user) owns an object: `cleanup` judges only its own.
LABEL_OWNER = "alca.owner"


class ContainerState(enum.Enum):
    RUNNING = "running"
    STOPPED = "stopped"
    UNKNOWN = "unknown"  # created, paused, restarting, ...
    NOT_FOUND = "not found"


@dataclass(frozen=True)
class BindMount:
    source: str
    target: str
    readonly: bool = False


@dataclass(frozen=True)
class ContainerSpec:
    """Everything `docker|podman run` needs to create a sandbox container.

    Mount sources must exist: mounts use `--mount`, which refuses a missing source rather
    than creating a root-owned directory as `-v` does.
    """

    name: str
    image: str
    workdir: str
    labels: Mapping[str, str]
    mounts: Sequence[BindMount] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    ports: Sequence[PortMapping] = ()
    cap_drop: Sequence[str] = ()
    cap_add: Sequence[str] = ()
    memory: str | None = None
    cpus: float | None = None
    pids_limit: int = 4096
    network: str | None = None  # an alcatraz-created network; None = engine default
    restart: str = "no"  # every start goes through alcatraz (decision 0010)
    keepalive: Sequence[str] = ("sleep", "infinity")
    extra_args: Sequence[str] = ()  # engine-specific flags (tests, quirks); never user input
    pull: str | None = None  # "never" / "missing" / "always"; None = the engine's default
    seccomp_profile: str | None = None  # a profile file; None = the engine's default profile
    dns: Sequence[str] = ()  # resolvers for the container (the project's own); () = engine's


@dataclass(frozen=True)
class ContainerInfo:
    """What `inspect` says about one container."""

    id: str
    name: str
    state: ContainerState
    image: str
    started_at: str
    created_at: str
    labels: Mapping[str, str]
    restart_policy: str = ""
    networks: Mapping[str, str] = field(default_factory=dict)  # network name -> IPv4
    # Read back from HostConfig, so tests and drift checks can see what the engine applied.
    memory: int = 0  # bytes; 0 = no limit
    nano_cpus: int = 0  # CPUs x 1e9; 0 = no limit
    pids_limit: int | None = None
    init: bool = False
    security_opt: tuple[str, ...] = ()
    cap_add: tuple[str, ...] = ()  # as the engine reports them (Podman: relative to its defaults)
    cap_drop: tuple[str, ...] = ()
    effective_caps: tuple[str, ...] | None = None  # Podman reports these; Docker does not
    mounts: tuple[BindMount, ...] = ()  # bind mounts only
    ports: tuple[PortMapping, ...] = ()  # published ports with a fixed host port
    pid: int = 0  # the container's init on the engine host; 0 when not running
    dns: tuple[str, ...] = ()  # HostConfig.Dns: the resolvers it was created with


@dataclass(frozen=True)
class NetworkInfo:
    """An engine network as alcatraz needs it: where its bridge is and what it routes."""

    name: str
    interface: str  # the bridge device on the engine host ("" if not known yet)
    subnets: tuple[str, ...]  # CIDRs
    gateways: tuple[str, ...]
    labels: Mapping[str, str] = field(default_factory=dict)
    dns_enabled: bool = False  # Podman: the engine's own resolver (aardvark-dns) serves it


class Runtime(Protocol):
    """A container engine driven through its CLI."""

    name: str  # display name: "Docker" or "Podman"
    executable: str  # "docker" or "podman"

    # Engine failures raise `CommandFailed` (with the engine's stderr) unless noted.
    def available(self) -> bool: ...  # answers within a few seconds; never raises
    def version(self) -> str: ...
    def is_rootless(self) -> bool: ...  # raises when it cannot tell (fail closed)
    def run_argv(self, spec: ContainerSpec) -> list[str]: ...  # pure; without the executable
    def create(self, spec: ContainerSpec) -> str: ...  # create + start; the id; no leftovers
    def start(self, name: str) -> None: ...
    def stop(self, name: str, timeout: int = 10) -> None: ...
    def remove(self, name: str) -> None: ...  # force; a missing container is not an error
    def inspect(self, name: str) -> ContainerInfo | None: ...  # None = no such container
    def list_by_label(self, label: str) -> list[ContainerInfo]: ...  # "key" or "key=value"
    def exec_argv(
        self,
        name: str,
        command: Sequence[str],
        *,
        workdir: str | None = None,
        env: Mapping[str, str] | None = None,
        tty: bool = False,
        interactive: bool = True,
    ) -> list[str]: ...
    def exec(
        self,
        name: str,
        command: Sequence[str],
        *,
        workdir: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> int: ...
    def exec_capture(
        self,
        name: str,
        command: Sequence[str],
        *,
        workdir: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Result: ...
    def image_exists(self, image: str) -> bool: ...
    def network_create(
        self,
        name: str,
        *,
        subnet: str,
        gateway: str,
        interface: str,
        labels: Mapping[str, str],
        engine_dns: bool = True,
    ) -> NetworkInfo: ...
    def network_inspect(self, name: str) -> NetworkInfo | None: ...
    def network_remove(self, name: str) -> None: ...
    def networks(self) -> list[NetworkInfo]: ...
