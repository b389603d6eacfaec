"""The project's own engine network: found or created on a subnet no host route overlaps.

A step of `up` (`alcatraz.sandbox.guard.prepare` calls it before loading rules); `status`
and `down` only read or remove what it made.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from alcatraz import state
from alcatraz.app import App
from alcatraz.errors import AlcaError, RefusedError
from alcatraz.network.plan import ProjectNetwork, choose_subnet, network_name
from alcatraz.runtime.base import LABEL_OWNER, LABEL_PROJECT_ID, LABEL_PROJECT_PATH, Runtime


def _host_networks(app: App) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Every destination the host routes, so a new project subnet overlaps none of them."""
    found: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for family in ("-4", "-6"):
        result = app.runner.run(["ip", "-j", family, "route", "show", "table", "all"], timeout=10)
        if not result.ok:
            raise AlcaError(
                f"cannot read the host's routes: {result.stderr.strip()}",
                hint="install iproute2 (the `ip` command)",
            )
        for route in json.loads(result.stdout or "[]"):
            destination = route.get("dst", "")
            if destination in ("default", ""):
                continue
            try:
                found.append(ipaddress.ip_network(destination, strict=False))
            except ValueError:
                continue
    return found


def network_from_info(name: str, info: Any) -> ProjectNetwork:
    subnets = [ipaddress.ip_network(s) for s in info.subnets]
    v4 = [s for s in subnets if isinstance(s, ipaddress.IPv4Network)]
    gateways = [ipaddress.ip_address(g) for g in info.gateways]
    v4_gateways = [g for g in gateways if isinstance(g, ipaddress.IPv4Address)]
    if not v4 or not info.interface:
        raise AlcaError(
            f"network {name} has no IPv4 subnet or bridge name",
            hint=f"remove it (docker/podman network rm {name}) and run 'alca up' again",
        )
    gateway = v4_gateways[0] if v4_gateways else next(v4[0].hosts())
    return ProjectNetwork(name, info.interface, v4[0], gateway)


def ensure_network(
    app: App, runtime: Runtime, project_id: str, root: str, *, engine_dns: bool = True
) -> tuple[ProjectNetwork, bool]:
    """The project's own engine network, created on first use; and whether the engine's own
    resolver serves it (Podman's aardvark-dns on the gateway)."""
    name = network_name(project_id)
    info = runtime.network_inspect(name)
    if info is not None:
        if info.labels.get(LABEL_PROJECT_ID) != project_id:
            raise RefusedError(
                f"network {name} exists but does not belong to this project",
                hint=f"remove it ({runtime.executable} network rm {name}) if it is a leftover",
            )
        return network_from_info(name, info), info.dns_enabled
    taken: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = list(_host_networks(app))
    for other in runtime.networks():
        for cidr in other.subnets:
            try:
                taken.append(ipaddress.ip_network(cidr, strict=False))
            except ValueError:
                continue
    subnet = choose_subnet(project_id, taken)
    gateway = next(subnet.hosts())
    with app.progress(f"Creating network: {name} ({subnet})"):
        info = runtime.network_create(
            name,
            subnet=str(subnet),
            gateway=str(gateway),
            interface=name,
            labels={
                LABEL_PROJECT_ID: project_id,
                LABEL_PROJECT_PATH: root,
                LABEL_OWNER: state.owner_label(str(app.home)),
            },
            engine_dns=engine_dns,
        )
    return network_from_info(name, info), info.dns_enabled
