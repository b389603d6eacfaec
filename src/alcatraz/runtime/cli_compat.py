"""The shared implementation for engines with a Docker-compatible CLI (docker, podman).

Argv building is pure and every value is its own argv element, so nothing a user writes
(paths, env values, labels) is ever interpreted by a shell or split by the engine's flag
parser. Results come from `inspect` JSON, parsed by `parse_inspect`, which the unit tests
feed with output recorded from both engines. The subclasses in `docker.py` and `podman.py`
only override what differs.

Mounts use `--mount type=bind,...` rather than `-v src:dst[:ro]`: both engines split `-v`
on `:`, so a host path containing `:` fails (Docker: "invalid mode: /dst", Podman:
'invalid option type "/dst"'), and no escaping exists for `-v`. `--mount` is parsed as one
CSV record by both engines, so each field is written as a quoted CSV field (`"src=..."`,
with `"` doubled), which keeps `,` `:` `=` `"` spaces and newlines in paths intact (verified
with Docker 20.10 and Podman 4.3). Unlike `-v`, `--mount` refuses a missing source instead of
creating a root-owned directory; callers create sources they want.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Final

from alcatraz.config.netgrammar import PortMapping
from alcatraz.errors import AlcaError
from alcatraz.proc import CommandFailed, Result
from alcatraz.runtime.base import (
    BindMount,
    ContainerInfo,
    ContainerSpec,
    ContainerState,
    NetworkInfo,
)

if TYPE_CHECKING:
    from alcatraz.proc import Runner

__all__ = [
    "CliRuntime",
    "check_name",
    "format_cpus",
    "is_no_such_container",
    "mount_arg",
    "parse_inspect",
]

PROBE_TIMEOUT: Final = 10.0
"""`version`/`info` must answer quickly; a daemon that hangs counts as unavailable."""

QUERY_TIMEOUT: Final = 60.0
"""`inspect`, `ps`, `start`: bounded so a wedged engine cannot hang `alca` forever."""

# Both engines accept container names of this form (Docker's `RestrictedNamePattern`).
_NAME: Final = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")
_ENV_KEY_BAD: Final = re.compile(r"[=\x00]")

# How each engine says "that container does not exist" (stderr of inspect/rm/stop).
# Docker: "Error response from daemon: No such container: x" (older: "Error: No such object: x")
# Podman: "Error: inspecting object: no such container x",
#         'Error: no container with name or ID "x" found: no such container'
_NO_SUCH_CONTAINER: Final = re.compile(r"no such (container|object)", re.IGNORECASE)
# Docker: "No such image: x"; Podman: "Error: inspecting object: x: image not known"
_NO_SUCH_IMAGE: Final = re.compile(r"no such image|image not known", re.IGNORECASE)


def check_name(name: str) -> str:
    """Refuse a container name that the engine could read as a flag or would reject."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"invalid container name {name!r}: use letters, digits, _ . -")
    return name


def _csv_field(text: str) -> str:
    """One quoted CSV field: both engines read `--mount` with a CSV reader."""
    return '"' + text.replace('"', '""') + '"'


def mount_arg(mount: BindMount) -> str:
    """The value of `--mount` for a bind mount; see the module docstring for why not `-v`."""
    parts = ["type=bind", _csv_field("src=" + mount.source), _csv_field("dst=" + mount.target)]
    if mount.readonly:
        parts.append("readonly")
    return ",".join(parts)


def format_cpus(cpus: float) -> str:
    """`0.5` → "0.5", `2.0` → "2": plain decimal, never exponent notation."""
    text = f"{cpus:.9f}".rstrip("0").rstrip(".")
    return text or "0"


def is_no_such_container(stderr: str) -> bool:
    """True when every error line says a container is missing (and nothing else failed)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    return bool(lines) and all(_NO_SUCH_CONTAINER.search(line) for line in lines)


def _strs(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(str(v) for v in value)


def _mounts(value: Any) -> tuple[BindMount, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(
        BindMount(str(m.get("Source", "")), str(m.get("Destination", "")), not m.get("RW", True))
        for m in value
        if isinstance(m, dict) and m.get("Type") == "bind"
    )


def _ports(value: Any) -> tuple[PortMapping, ...]:
    """`HostConfig.PortBindings` ({"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]})."""
    if not isinstance(value, dict):
        return ()
    ports: list[PortMapping] = []
    for key, bindings in value.items():
        port, _, protocol = str(key).partition("/")
        for binding in bindings if isinstance(bindings, list) else ():
            host_ip = str(binding.get("HostIp") or "") if isinstance(binding, dict) else ""
            host_port = str(binding.get("HostPort") or "") if isinstance(binding, dict) else ""
            try:
                ports.append(
                    PortMapping(
                        container_port=int(port),
                        host_port=int(host_port),
                        host_ip=ipaddress.ip_address(host_ip) if host_ip else None,
                        protocol=protocol or "tcp",
                    )
                )
            except ValueError:
                continue  # a random host port or something alcatraz never creates
    return tuple(sorted(ports, key=lambda p: (p.container_port, p.protocol, str(p.host_ip))))


def _networks(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {
        str(name): str(net.get("IPAddress") or "")
        for name, net in value.items()
        if isinstance(net, dict)
    }


def _parse_one(raw: Mapping[str, Any], states: Mapping[str, ContainerState]) -> ContainerInfo:
    state = raw.get("State") or {}
    config = raw.get("Config") or {}
    host = raw.get("HostConfig") or {}
    network = raw.get("NetworkSettings") or {}
    pids = host.get("PidsLimit")
    effective = raw.get("EffectiveCaps")
    return ContainerInfo(
        id=str(raw.get("Id", "")),
        name=str(raw.get("Name", "")).lstrip("/"),  # Docker writes "/name", Podman "name"
        state=states.get(str(state.get("Status", "")), ContainerState.UNKNOWN),
        image=str(config.get("Image", "")),
        started_at=str(state.get("StartedAt", "")),
        created_at=str(raw.get("Created", "")),
        labels={str(k): str(v) for k, v in (config.get("Labels") or {}).items()},
        restart_policy=str((host.get("RestartPolicy") or {}).get("Name", "")),
        networks=_networks(network.get("Networks")),
        memory=int(host.get("Memory") or 0),
        nano_cpus=int(host.get("NanoCpus") or 0),
        pids_limit=int(pids) if isinstance(pids, int) and pids > 0 else None,
        init=bool(host.get("Init")),
        security_opt=_strs(host.get("SecurityOpt")),
        cap_add=_strs(host.get("CapAdd")),
        cap_drop=_strs(host.get("CapDrop")),
        effective_caps=_strs(effective) if isinstance(effective, list) else None,
        mounts=_mounts(raw.get("Mounts")),
        ports=_ports(host.get("PortBindings")),
        pid=int(state.get("Pid") or 0) if isinstance(state.get("Pid"), int) else 0,
        dns=_strs(host.get("Dns")),
    )


def parse_inspect(
    text: str, states: Mapping[str, ContainerState] | None = None
) -> list[ContainerInfo]:
    """Parse `container inspect` JSON (a list); `states` maps the engine's status words."""
    try:
        data = json.loads(text) if text.strip() else []
    except json.JSONDecodeError as exc:
        raise AlcaError(f"could not parse the engine's inspect output: {exc}") from None
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise AlcaError("unexpected inspect output: expected a JSON list of objects")
    table = CliRuntime.STATES if states is None else states
    return [_parse_one(item, table) for item in data]


class CliRuntime:
    """A Docker-compatible engine driven through its CLI; subclasses set the differences."""

    STATES: ClassVar[Mapping[str, ContainerState]] = {
        "running": ContainerState.RUNNING,
        "exited": ContainerState.STOPPED,
    }
    VERSION_FORMAT: ClassVar[str] = "{{.Version}}"

    def __init__(self, executable: str, name: str, runner: Runner):
        self.executable = executable
        self.name = name
        self.runner = runner

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
        """Installed and answering within `PROBE_TIMEOUT`."""
        try:
            return bool(self.version())
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
        if _NO_SUCH_IMAGE.search(result.stderr):
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
            # A key without "=" would copy the host's variable; "=" in a key would shift it.
            if not key or _ENV_KEY_BAD.search(key):
                raise ValueError(f"invalid environment variable name {key!r}")
            args += ["-e", f"{key}={value}"]
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
            if not key or _ENV_KEY_BAD.search(key):
                raise ValueError(f"invalid environment variable name {key!r}")
            args += ["-e", f"{key}={value}"]
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
        """All containers (any state) carrying `label` ("key" or "key=value"), by name."""
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
        result = self._run(["network", "inspect", "--", check_name(name)])
        if not result.ok:
            if _NO_SUCH_NETWORK.search(result.stderr):
                return None
            raise CommandFailed(result, f"{self.name}: network inspect failed")
        found = _network_list(result.stdout)
        return found[0] if found else None

    def network_remove(self, name: str) -> None:
        result = self._run(["network", "rm", "--", check_name(name)])
        if not result.ok and not _NO_SUCH_NETWORK.search(result.stderr):
            raise CommandFailed(result, f"{self.name}: network rm failed")

    def networks(self) -> list[NetworkInfo]:
        names = self._checked(["network", "ls", "--format", "{{.Name}}"]).stdout.split()
        if not names:
            return []
        result = self._run(["network", "inspect", "--", *names])
        if result.ok:
            return _network_list(result.stdout)
        # A network vanished between `ls` and `inspect` (another project's `down`): go one
        # by one and skip the missing ones.
        found: list[NetworkInfo] = []
        for name in names:
            info = self.network_inspect(name)
            if info is not None:
                found.append(info)
        return found


_NO_SUCH_NETWORK = re.compile(r"no such network|network .* not found|unable to find network", re.I)


def parse_network(raw: Mapping[str, Any]) -> NetworkInfo:
    """One network from `docker network inspect` or `podman network inspect` JSON."""
    labels = raw.get("Labels") or raw.get("labels") or {}
    if "IPAM" in raw:  # Docker
        configs = (raw.get("IPAM") or {}).get("Config") or []
        options = raw.get("Options") or {}
        return NetworkInfo(
            name=str(raw.get("Name", "")),
            interface=str(options.get("com.docker.network.bridge.name", "")),
            subnets=tuple(str(c["Subnet"]) for c in configs if c.get("Subnet")),
            gateways=tuple(str(c["Gateway"]) for c in configs if c.get("Gateway")),
            labels={str(k): str(v) for k, v in labels.items()},
        )
    subnets = raw.get("subnets") or []  # Podman (netavark)
    return NetworkInfo(
        name=str(raw.get("name", "")),
        interface=str(raw.get("network_interface", "")),
        subnets=tuple(str(s["subnet"]) for s in subnets if s.get("subnet")),
        gateways=tuple(str(s["gateway"]) for s in subnets if s.get("gateway")),
        labels={str(k): str(v) for k, v in labels.items()},
        dns_enabled=bool(raw.get("dns_enabled")),
    )


def _network_list(text: str) -> list[NetworkInfo]:
    try:
        data = json.loads(text or "[]")
    except json.JSONDecodeError as exc:
        raise AlcaError(f"could not parse the engine's network output: {exc}") from None
    if not isinstance(data, list):
        raise AlcaError("unexpected network inspect output: expected a JSON list")
    return [parse_network(item) for item in data if isinstance(item, dict)]
