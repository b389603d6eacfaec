"""Network isolation around the lifecycle: network, rules, checks, in a safe order.

`prepare()` runs before any container is created or started: it refuses when isolation
cannot be guaranteed, creates the project network, loads the rules and verifies them.
`teardown()` runs after the container is gone. `ensure()` repairs missing or changed
rules for a sandbox that exists.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from typing import Any

from alcatraz.app import App
from alcatraz.config.load import Config
from alcatraz.errors import AlcaError, RefusedError
from alcatraz.network.firewall import Firewall, firewall_for
from alcatraz.network.plan import (
    Policy,
    ProjectNetwork,
    choose_subnet,
    make_policy,
    network_name,
    project_key,
)
from alcatraz.runtime.base import LABEL_PROJECT_ID, LABEL_PROJECT_PATH, Runtime


@dataclass
class Isolation:
    """The network a sandbox lives on and the firewall that guards it."""

    network: ProjectNetwork
    policy: Policy
    firewall: Firewall | None  # None only for lan-access = ["*"] where nft is unavailable

    @property
    def enforced(self) -> bool:
        return self.firewall is not None and not self.policy.allow_all

    def record(self) -> dict[str, Any]:
        """What state.json keeps (and `alca run` checks)."""
        return {
            "network": self.network.name,
            "interface": self.network.interface,
            "subnet": str(self.network.subnet),
            "gateway": str(self.network.gateway),
            "key": self.policy.key,
            "enforced": self.enforced,
            "allow_all": self.policy.allow_all,
            "nft": self.firewall.command if self.firewall else None,
        }


def needs_firewall(config: Config) -> bool:
    return not config.allow_all_lan or config.proxy is not None


def check_guarantee(app: App, config: Config, runtime: Runtime) -> None:
    """Refuse where host nftables cannot see the sandbox's traffic (upstream S8)."""
    if not needs_firewall(config):
        return
    reasons: list[str] = []
    docker_host = app.environ.get("DOCKER_HOST", "") if runtime.executable == "docker" else ""
    container_host = app.environ.get("CONTAINER_HOST", "") if runtime.executable == "podman" else ""
    remote = docker_host or container_host
    if remote and not remote.startswith("unix://"):
        reasons.append(
            f"the engine is remote ({remote}): this machine's firewall never sees its traffic"
        )
    if runtime.is_rootless():
        reasons.append(
            f"{runtime.name} runs rootless: its containers' traffic leaves through user-space "
            "networking, which nftables rules on bridges cannot filter"
        )
    if runtime.executable == "docker" and _docker_desktop_on_linux(app, runtime):
        reasons.append("Docker Desktop for Linux runs containers in a VM this host cannot filter")
    if reasons:
        raise RefusedError(
            "network isolation cannot be guaranteed: " + "; ".join(reasons),
            hint="use a rootful local engine (e.g. `sudo alca up` with Docker Engine or rootful "
            'Podman), or opt out knowingly with lan-access = ["*"] under [network]',
        )


def _docker_desktop_on_linux(app: App, runtime: Runtime) -> bool:
    import sys

    if sys.platform != "linux":
        return False
    result = app.runner.run(
        [runtime.executable, "info", "--format", "{{.OperatingSystem}}"], timeout=20
    )
    return result.ok and "Docker Desktop" in result.stdout


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


def _network_from_info(name: str, info: Any) -> ProjectNetwork:
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


def ensure_network(app: App, runtime: Runtime, project_id: str, root: str) -> ProjectNetwork:
    """The project's own engine network, created on first use."""
    name = network_name(project_id)
    info = runtime.network_inspect(name)
    if info is not None:
        if info.labels.get(LABEL_PROJECT_ID) != project_id:
            raise RefusedError(
                f"network {name} exists but does not belong to this project",
                hint=f"remove it ({runtime.executable} network rm {name}) if it is a leftover",
            )
        return _network_from_info(name, info)
    taken: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = list(_host_networks(app))
    for other in runtime.networks():
        for cidr in other.subnets:
            try:
                taken.append(ipaddress.ip_network(cidr, strict=False))
            except ValueError:
                continue
    subnet = choose_subnet(project_id, taken)
    gateway = next(subnet.hosts())
    app.step(f"Creating network: {name} ({subnet})")
    info = runtime.network_create(
        name,
        subnet=str(subnet),
        gateway=str(gateway),
        interface=name,
        labels={LABEL_PROJECT_ID: project_id, LABEL_PROJECT_PATH: root},
    )
    return _network_from_info(name, info)


def firewall(app: App, runtime: Runtime, config: Config) -> Firewall | None:
    """The firewall, or None when the config does not need one and nft is unusable."""
    try:
        fw = firewall_for(app.runner, app.environ, runtime.executable)
        fw.probe()
    except AlcaError:
        if needs_firewall(config):
            raise
        return None
    return fw


def prepare(app: App, config: Config, runtime: Runtime, project_id: str) -> Isolation:
    """Network + verified rules, before the container runs."""
    check_guarantee(app, config, runtime)
    fw = firewall(app, runtime, config)
    network = ensure_network(app, runtime, project_id, str(config.project_root))
    policy = make_policy(
        project_id,
        network,
        allow_all=config.allow_all_lan,
        rules=config.lan_rules,
        proxy=config.proxy,
    )
    isolation = Isolation(network, policy, fw)
    if fw is not None:
        if not fw.verify(policy):
            app.step(
                "Applying network isolation rules..."
                if not policy.allow_all
                else "Registering the network (LAN access allowed)..."
            )
            fw.apply(policy)
        if isolation.enforced:
            app.step("Network isolation enabled")
        if policy.proxy is not None:
            app.step(f"Transparent proxy enabled (→ {config.proxy_text})")
    return isolation


def teardown(app: App, runtime: Runtime, record: dict[str, Any] | None) -> None:
    """Remove rules, then the network; only call once the container is gone."""
    if not record:
        return
    key = str(record.get("key") or "")
    interface = str(record.get("interface") or "")
    command = record.get("nft")
    if key and command:
        fw = Firewall(app.runner, [str(c) for c in command])
        try:
            fw.remove(key, [interface] if interface else [])
        except AlcaError as error:
            app.warn(f"could not remove the firewall rules of {key}: {error.message}")
    name = str(record.get("network") or "")
    if name:
        runtime.network_remove(name)


def check_keys(project_id: str, record: dict[str, Any]) -> bool:
    return record.get("key") == project_key(project_id)
