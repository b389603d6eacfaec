"""The shared implementation for engines with a Docker-compatible CLI (docker, podman).

Argv building is pure and every value is its own argv element, so nothing a user writes
(paths, env values, labels) is ever interpreted by a shell or split by the engine's flag
parser; the checked pieces (names, `--mount`, env pairs) are in `cli_argv`. Results come
from `inspect` JSON, parsed in `cli_output`, which the unit tests feed with output recorded
from both engines. The subclasses in `docker.py` and `podman.py` only override what differs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, ClassVar, Final, TypeVar

from alcatraz.errors import AlcaError
from alcatraz.proc import CommandFailed, Result
from alcatraz.runtime.api_queries import ApiQueries
from alcatraz.runtime.base import ContainerInfo, ContainerSpec, ContainerState, NetworkInfo
from alcatraz.runtime.cli_argv import check_name, env_pair, format_cpus, mount_arg
from alcatraz.runtime.cli_output import (
    CONTAINER_STATES,
    is_no_such_container,
    is_no_such_image,
    is_no_such_network,
    parse_inspect,
    parse_inspect_objects,
    parse_network,
    parse_network_list,
)
from alcatraz.runtime.engine_api import ApiUnavailable

if TYPE_CHECKING:
    from alcatraz.proc import Runner
    from alcatraz.runtime.engine_facts import FactsCache

__all__ = [
    "CliRuntime",
    "check_name",
    "format_cpus",
    "is_no_such_container",
    "mount_arg",
    "parse_inspect",
]

_T = TypeVar("_T")

PROBE_TIMEOUT: Final = 10.0
"""`version`/`info` must answer quickly; a daemon that hangs counts as unavailable."""

QUERY_TIMEOUT: Final = 60.0
"""`inspect`, `ps`, `start`: bounded so a wedged engine cannot hang `alca` forever."""


class CliRuntime:
    """A Docker-compatible engine driven through its CLI; subclasses set the differences."""

    STATES: ClassVar[Mapping[str, ContainerState]] = CONTAINER_STATES
    VERSION_FORMAT: ClassVar[str] = "{{.Version}}"
    LIBPOD: ClassVar[bool] = False  # Podman's native API endpoints answer in its CLI's shapes

    def __init__(self, executable: str, name: str, runner: Runner):
        self.executable = executable
        self.name = name
        self.runner = runner
        self.facts: FactsCache | None = None  # per daemon identity; None = ask every time
        self.api: ApiQueries | None = None  # queries through the API socket; None = the CLI

    def use_facts(self, facts: FactsCache, *, api: bool) -> None:
        """Cache facts in `facts`; with `api`, query through its socket when it answers."""
        self.facts = facts
        if api and facts.socket:
            self.api = ApiQueries(facts.socket, libpod=self.LIBPOD, facts=facts)

    def _api_call(self, ask: Callable[[ApiQueries], list[_T]]) -> list[_T] | None:
        """`ask(api)`; None without a socket or once it stopped answering (then the CLI)."""
        if self.api is None:
            return None
        try:
            return ask(self.api)
        except ApiUnavailable:
            self.api = None
            return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(executable={self.executable!r}, name={self.name!r})"

    # -- running ----------------------------------------------------------------------------
    def _run(self, args: Sequence[str], *, timeout: float | None = QUERY_TIMEOUT) -> Result:
        return self.runner.run([self.executable, *args], timeout=timeout)

    def _checked(self, args: Sequence[str], *, timeout: float | None = QUERY_TIMEOUT) -> Result:
        result = self._run(args, timeout=timeout)
        if not result.ok:
            raise CommandFailed(result, f"{self.name}: {args[0]} failed")
        return result

    # -- probes -----------------------------------------------------------------------------
    def version(self) -> str:
        """The engine's version; for Docker the daemon's, so it fails when the daemon is down."""
        result = self._checked(["version", "--format", self.VERSION_FORMAT], timeout=PROBE_TIMEOUT)
        return result.stdout.strip()

    def available(self) -> bool:
        """Installed and answering within `PROBE_TIMEOUT` (its API socket's ping, if any)."""
        if self._api_call(lambda api: [True] if api.ping() else []):
            return True
        self.api = None
        without_socket = self.facts if self.facts is not None and not self.facts.socket else None
        if without_socket is not None and without_socket.get("version"):
            return True  # answered within the TTL (and no socket that could have gone)
        try:
            version = self.version()
            if version and without_socket is not None:
                without_socket.put("version", version)
            return bool(version)
        except AlcaError:  # not installed, non-zero exit, or timeout
            return False

    def is_rootless(self) -> bool:
        """Whether the engine runs rootless; raises when it cannot tell (fail closed)."""
        raise NotImplementedError

    def image_exists(self, image: str) -> bool:
        """Whether `image` is in local storage (no registry is contacted)."""
        result = self._run(["image", "inspect", "--format", "{{.Id}}", image])
        if result.ok:
            return True
        if is_no_such_image(result.stderr):
            return False
        raise CommandFailed(result, f"{self.name}: image inspect failed")

    # -- argv builders (pure) ---------------------------------------------------------------
    def init_args(self) -> list[str]:
        """An init as PID 1: reaps the agent's orphans and lets `stop` end `sleep` at once."""
        return ["--init"]

    def remove_args(self, name: str) -> list[str]:
        return ["rm", "-f", check_name(name)]

    def _create_options(self, spec: ContainerSpec) -> list[str]:
        """Everything between `run -d` (or `create`) and the image, in a stable order."""
        args = ["--name", check_name(spec.name), f"--restart={spec.restart}"]
        args += self.init_args()
        args += ["--security-opt", "no-new-privileges"]
        if spec.seccomp_profile:
            args += ["--security-opt", f"seccomp={spec.seccomp_profile}"]
        args += ["--pids-limit", str(spec.pids_limit)]
        args += ["-w", spec.workdir]
        for key, value in spec.labels.items():
            if not key or "=" in key:
                raise ValueError(f"invalid label key {key!r}")
            args += ["--label", f"{key}={value}"]
        for mount in spec.mounts:
            args += ["--mount", mount_arg(mount)]
        if spec.memory:
            args += ["-m", spec.memory]
        if spec.cpus:
            args += ["--cpus", format_cpus(spec.cpus)]
        for key, value in spec.env.items():
            args += ["-e", env_pair(key, value)]
        for port in spec.ports:
            args += ["-p", port.docker_arg()]
        for cap in spec.cap_drop:
            args += ["--cap-drop", cap]
        for cap in spec.cap_add:
            args += ["--cap-add", cap]
        if spec.network:
            args += ["--network", spec.network]
        for server in spec.dns:
            args += ["--dns", server]
        if spec.pull:
            args.append(f"--pull={spec.pull}")
        args += spec.extra_args
        # "--" ends option parsing in both engines, so the image can never act as a flag.
        args += ["--", spec.image, *spec.keepalive]
        return args

    def run_argv(self, spec: ContainerSpec) -> list[str]:
        """`run -d ...` as one command (what a user would type; shown in debug output)."""
        return ["run", "-d", *self._create_options(spec)]

    def create_argv(self, spec: ContainerSpec) -> list[str]:
        """`create ...`: the same options as `run_argv`, without starting."""
        return ["create", *self._create_options(spec)]

    def exec_argv(
        self,
        name: str,
        command: Sequence[str],
        *,
        workdir: str | None = None,
        env: Mapping[str, str] | None = None,
        tty: bool = False,
        interactive: bool = True,
    ) -> list[str]:
        """`exec [-i] [-t] [-e K=V ...] [-w DIR] NAME cmd...` (without the executable)."""
        if not command:
            raise ValueError("exec needs a command")
        args = ["exec"]
        if interactive:
            args.append("-i")
        if tty:
            args.append("-t")
        for key, value in (env or {}).items():
            args += ["-e", env_pair(key, value)]
        if workdir is not None:
            args += ["-w", workdir]
        args += [check_name(name), *command]
        return args

    # -- lifecycle --------------------------------------------------------------------------
    def create(self, spec: ContainerSpec) -> str:
        """Create and start the container; returns its id.

        `create` then `start` rather than `run -d`: when starting fails (a port already
        taken, a bad mount) both engines keep the half-made container in "created" state,
        which would block the name; with the id from `create` it is removed precisely.
        """
        created = self._run(self.create_argv(spec), timeout=None)  # may pull an image
        if not created.ok:
            raise CommandFailed(created, f"{self.name}: could not create container {spec.name}")
        lines = created.stdout.strip().splitlines()
        if not lines:
            raise AlcaError(f"{self.name} create printed no container id")
        container_id = lines[-1].strip()
        started = self._run(["start", container_id])
        if not started.ok:
            removed = self._run(self.remove_args(container_id))
            hint = None
            if not removed.ok:
                hint = f"remove the half-made container: {self.executable} rm -f {container_id}"
            raise CommandFailed(
                started, f"{self.name}: could not start container {spec.name}", hint=hint
            )
        return container_id

    def start(self, name: str) -> None:
        self._checked(["start", check_name(name)])

    def stop(self, name: str, timeout: int = 10) -> None:
        self._checked(
            ["stop", "-t", str(timeout), check_name(name)], timeout=timeout + QUERY_TIMEOUT
        )

    def remove(self, name: str) -> None:
        """Force-remove; a container that is already gone is fine."""
        result = self._run(self.remove_args(name))
        if not result.ok and not is_no_such_container(result.stderr):
            raise CommandFailed(result, f"{self.name}: could not remove container {name}")

    # -- queries ----------------------------------------------------------------------------
    def inspect_many(self, names: Sequence[str]) -> list[ContainerInfo]:
        """One `container inspect` for all names; missing ones are left out, not errors."""
        if not names:
            return []
        found = self._api_call(lambda api: [api.container(name) for name in names])
        if found is not None:
            return parse_inspect_objects([f for f in found if f is not None], self.STATES)
        result = self._run(["container", "inspect", *names])
        if not result.ok and not is_no_such_container(result.stderr):
            raise CommandFailed(result, f"{self.name}: container inspect failed")
        return parse_inspect(result.stdout, self.STATES)

    def inspect(self, name: str) -> ContainerInfo | None:
        """The container called `name` (or with that id), or None when there is none."""
        for info in self.inspect_many([check_name(name)]):
            # Engines also match id prefixes; only accept exactly what was asked for.
            if name in (info.name, info.id):
                return info
        return None

    def list_by_label(self, label: str) -> list[ContainerInfo]:
        """All containers (any state) carrying `label` ("key" or "key=value"), by name.

        Through the API from the listing alone (one request for any number of projects):
        only id, name, state, image, labels, networks and creation time are filled in.
        """
        listed = self._api_call(lambda api: api.containers_by_label(label, self.STATES))
        if listed is not None:
            return sorted(listed, key=lambda info: info.name)
        result = self._checked(
            ["ps", "-a", "--no-trunc", "--filter", f"label={label}", "--format", "{{.ID}}"]
        )
        ids = [line.strip() for line in result.stdout.splitlines() if line.strip()]
        return sorted(self.inspect_many(ids), key=lambda info: info.name)

    # -- exec -------------------------------------------------------------------------------
    def exec(
        self,
        name: str,
        command: Sequence[str],
        *,
        workdir: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> int:
        """Run in the container with output on the terminal; returns the command's exit code."""
        argv = self.exec_argv(name, command, workdir=workdir, env=env, interactive=False)
        return self.runner.stream([self.executable, *argv])

    def exec_capture(
        self,
        name: str,
        command: Sequence[str],
        *,
        workdir: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Result:
        """Run in the container and capture its output; the exit code is in the result."""
        argv = self.exec_argv(name, command, workdir=workdir, env=env, interactive=False)
        return self._run(argv, timeout=timeout)

    # -- networks ---------------------------------------------------------------------------

    def network_create_args(
        self,
        name: str,
        *,
        subnet: str,
        gateway: str,
        interface: str,
        labels: Mapping[str, str],
        engine_dns: bool = True,
    ) -> list[str]:
        args = ["network", "create", "--driver", "bridge", "--subnet", subnet]
        args += ["--gateway", gateway]
        for key, value in labels.items():
            args += ["--label", f"{key}={value}"]
        args += self.network_interface_args(interface)
        if not engine_dns:
            args += self.no_engine_dns_args()
        return [*args, "--", check_name(name)]

    def no_engine_dns_args(self) -> list[str]:
        """Docker's embedded resolver cannot be turned off (containers use `--dns` instead)."""
        return []

    def network_interface_args(self, interface: str) -> list[str]:
        return ["-o", f"com.docker.network.bridge.name={interface}"]

    def network_create(
        self,
        name: str,
        *,
        subnet: str,
        gateway: str,
        interface: str,
        labels: Mapping[str, str],
        engine_dns: bool = True,
    ) -> NetworkInfo:
        self._checked(
            self.network_create_args(
                name,
                subnet=subnet,
                gateway=gateway,
                interface=interface,
                labels=labels,
                engine_dns=engine_dns,
            )
        )
        info = self.network_inspect(name)
        if info is None:
            raise AlcaError(f"{self.name}: network {name} vanished right after creation")
        return info

    def network_inspect(self, name: str) -> NetworkInfo | None:
        raw = self._api_call(lambda api: [api.network(check_name(name))])
        if raw is not None:
            return None if raw[0] is None else parse_network(raw[0])
        result = self._run(["network", "inspect", "--", check_name(name)])
        if not result.ok:
            if is_no_such_network(result.stderr):
                return None
            raise CommandFailed(result, f"{self.name}: network inspect failed")
        found = parse_network_list(result.stdout)
        return found[0] if found else None

    def network_remove(self, name: str) -> None:
        result = self._run(["network", "rm", "--", check_name(name)])
        if not result.ok and not is_no_such_network(result.stderr):
            raise CommandFailed(result, f"{self.name}: network rm failed")

    def networks(self) -> list[NetworkInfo]:
        every = self._api_call(lambda api: api.networks())
        if every is not None:
            return [parse_network(raw) for raw in every]
        names = self._checked(["network", "ls", "--format", "{{.Name}}"]).stdout.split()
        if not names:
            return []
        result = self._run(["network", "inspect", "--", *names])
        if result.ok:
            return parse_network_list(result.stdout)
        # A network vanished between `ls` and `inspect` (another project's `down`): go one
        # by one and skip the missing ones.
        found: list[NetworkInfo] = []
        for name in names:
            info = self.network_inspect(name)
            if info is not None:
                found.append(info)
        return found
