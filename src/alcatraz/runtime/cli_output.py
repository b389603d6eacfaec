"""Reading what a Docker-compatible CLI prints: `inspect` JSON and its "no such ..." errors.

Docker and Podman write the same JSON with small differences (a leading `/` in names,
Podman's own network format); the parsers accept both and are fed output recorded from
each engine by the unit tests. Anything unexpected is skipped or refused, never guessed.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from typing import Any, Final

from alcatraz.config.netgrammar import PortMapping
from alcatraz.errors import AlcaError
from alcatraz.runtime.base import BindMount, ContainerInfo, ContainerState, NetworkInfo

CONTAINER_STATES: Final[Mapping[str, ContainerState]] = {
    "running": ContainerState.RUNNING,
    "exited": ContainerState.STOPPED,
}
"""The status words both engines use; an engine adds its own (`CliRuntime.STATES`)."""

# How each engine says "that container does not exist" (stderr of inspect/rm/stop).
# Docker: "Error response from daemon: No such container: x" (older: "Error: No such object: x")
# Podman: "Error: inspecting object: no such container x",
#         'Error: no container with name or ID "x" found: no such container'
_NO_SUCH_CONTAINER: Final = re.compile(r"no such (container|object)", re.IGNORECASE)
# Docker: "No such image: x"; Podman: "Error: inspecting object: x: image not known"
_NO_SUCH_IMAGE: Final = re.compile(r"no such image|image not known", re.IGNORECASE)
# Podman's API says only "network not found".
_NO_SUCH_NETWORK: Final = re.compile(
    r"no such network|network .* not found|network not found|unable to find network", re.I
)


def is_no_such_container(stderr: str) -> bool:
    """True when every error line says a container is missing (and nothing else failed)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    return bool(lines) and all(_NO_SUCH_CONTAINER.search(line) for line in lines)


def is_no_such_image(stderr: str) -> bool:
    """Whether the engine said that the image is not in local storage."""
    return bool(_NO_SUCH_IMAGE.search(stderr))


def is_no_such_network(stderr: str) -> bool:
    """Whether the engine said that the network does not exist."""
    return bool(_NO_SUCH_NETWORK.search(stderr))


def _strs(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(str(v) for v in value)


def _mounts(value: Any) -> tuple[BindMount, ...]:
    """The bind mounts, by target: Docker lists `Mounts` in no fixed order (two inspects of
    one container may differ), so an unordered answer would make equal records unequal."""
    if not isinstance(value, list):
        return ()
    found = [
        BindMount(str(m.get("Source", "")), str(m.get("Destination", "")), not m.get("RW", True))
        for m in value
        if isinstance(m, dict) and m.get("Type") == "bind"
    ]
    return tuple(sorted(found, key=lambda m: (m.target, m.source, m.readonly)))


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
    return parse_inspect_objects(data, states)


def parse_inspect_objects(
    items: list[Mapping[str, Any]], states: Mapping[str, ContainerState] | None = None
) -> list[ContainerInfo]:
    """`parse_inspect` for objects already decoded (the API's replies)."""
    table = CONTAINER_STATES if states is None else states
    return [_parse_one(item, table) for item in items]


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


def parse_network_list(text: str) -> list[NetworkInfo]:
    """Every network in `network inspect` JSON (a list); other items are skipped."""
    try:
        data = json.loads(text or "[]")
    except json.JSONDecodeError as exc:
        raise AlcaError(f"could not parse the engine's network output: {exc}") from None
    if not isinstance(data, list):
        raise AlcaError("unexpected network inspect output: expected a JSON list")
    return [parse_network(item) for item in data if isinstance(item, dict)]
