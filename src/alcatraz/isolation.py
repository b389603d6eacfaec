"""Network isolation around the lifecycle: network, rules, checks, in a safe order.

`prepare()` runs before any container is created or started: it refuses when isolation
cannot be guaranteed, creates the project network, loads the rules and verifies them.
`teardown()` runs after the container is gone. `ensure()` repairs missing or changed
rules for a sandbox that exists.
"""

from __future__ import annotations

import ipaddress
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alcatraz import state
from alcatraz.app import App
from alcatraz.config.load import Config
from alcatraz.errors import AlcaError, RefusedError
from alcatraz.network import nft, resolver
from alcatraz.network.firewall import HELPER_NAME, Firewall, TableState, firewall_for
from alcatraz.network.plan import (
    Policy,
    ProjectNetwork,
    choose_subnet,
    make_policy,
    network_name,
    project_key,
)
from alcatraz.runtime.base import LABEL_OWNER, LABEL_PROJECT_ID, LABEL_PROJECT_PATH, Runtime
from alcatraz.statefile import IsolationRecord, ResolverEntry


@dataclass
class Isolation:
    """The network a sandbox lives on and the firewall that guards it."""

    network: ProjectNetwork
    policy: Policy
    firewall: Firewall | None  # None only for lan-access = ["*"] where nft is unavailable
    resolver: ResolverEntry | None = None  # the project's resolver (alcatraz.network.resolver)

    @property
    def dns(self) -> tuple[str, ...]:
        """The container's resolvers: the project's own on the gateway, else the engine's."""
        return (self.resolver.listen,) if self.resolver else ()

    @property
    def enforced(self) -> bool:
        return self.firewall is not None and not self.policy.allow_all

    def record(self) -> IsolationRecord:
        """What state.json keeps (and `alca run` checks)."""
        return IsolationRecord(
            network=self.network.name,
            interface=self.network.interface,
            subnet=str(self.network.subnet),
            gateway=str(self.network.gateway),
            key=self.policy.key,
            digest=nft.policy_digest(self.policy),
            enforced=self.enforced,
            allow_all=self.policy.allow_all,
            nft=tuple(self.firewall.command) if self.firewall else None,
            resolver=self.resolver,
        )


def policy_for(project_id: str, network: ProjectNetwork, config: Config) -> Policy:
    """The policy `config` asks for on `network`, tokens resolved to its gateway."""
    return make_policy(
        project_id,
        network,
        allow_all=config.allow_all_lan,
        rules=config.lan_rules,
        proxy=config.proxy,
    )


def needs_firewall(config: Config) -> bool:
    return not config.allow_all_lan or config.proxy is not None


def check_guarantee(app: App, config: Config, runtime: Runtime) -> None:
    """Refuse where host nftables cannot see the sandbox's traffic (upstream S8)."""
    if not needs_firewall(config):
        return
    reasons = _beyond_host_firewall(app, runtime)
    if reasons:
        raise RefusedError(
            "network isolation cannot be guaranteed: " + "; ".join(reasons),
            hint="use a rootful local engine (e.g. `sudo alca up` with Docker Engine or rootful "
            'Podman), or opt out knowingly with lan-access = ["*"] under [network]',
        )


def _beyond_host_firewall(app: App, runtime: Runtime) -> list[str]:
    """Why this host's nftables cannot see the engine's container traffic (empty: it can)."""
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
    if _docker_desktop_on_linux(runtime):
        reasons.append("Docker Desktop for Linux runs containers in a VM this host cannot filter")
    return reasons


def _docker_desktop_on_linux(runtime: Runtime) -> bool:
    from alcatraz.runtime.docker import DockerRuntime

    if sys.platform != "linux" or not isinstance(runtime, DockerRuntime):
        return False
    return "Docker Desktop" in runtime.operating_system()


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
        return _network_from_info(name, info), info.dns_enabled
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
    return _network_from_info(name, info), info.dns_enabled


def firewall(app: App, runtime: Runtime, config: Config) -> Firewall | None:
    """The firewall, or None when the config does not need one and nft is unusable.

    Also None for an opted-out sandbox on an engine this host's nftables cannot see
    (rootless, remote): its bridge names mean nothing here and could collide with a
    rootful project's.
    """
    if not needs_firewall(config) and _beyond_host_firewall(app, runtime):
        return None
    try:
        fw = firewall_for(app.runner, app.environ, runtime.executable)
        fw.probe()
    except AlcaError:
        if needs_firewall(config):
            raise
        return None
    return fw


def prepare(
    app: App,
    config: Config,
    runtime: Runtime,
    project_id: str,
    state_dir: Path,
    *,
    creating: bool = False,
) -> Isolation:
    """Network + verified rules + the project's resolver, before the container runs.

    `creating`: no container of the project exists, so a network whose engine resolver
    holds the gateway's port 53 (Podman, created by an older alcatraz) is made anew.
    """
    check_guarantee(app, config, runtime)
    fw = firewall(app, runtime, config)
    helper = Helper(app, runtime.executable)
    if fw is not None and needs_firewall(config) and not helper.installed():
        app.step("Network helper required for network isolation.")
        if not app.confirm("Install now?"):
            raise RefusedError(
                "network isolation needs the network helper, so that the rules survive a "
                "reboot (a container started outside alcatraz must never run unfiltered); "
                "nothing was started",
                hint="run 'alca network-helper install' once (as root), then 'alca up'",
            )
        for line in helper.install():
            app.step(line)
    own_resolver = fw is not None and fw.mechanism == "native" and resolver.expected(config)
    network, engine_dns = ensure_network(
        app, runtime, project_id, str(config.project_root), engine_dns=not own_resolver
    )
    if own_resolver and engine_dns and creating:
        runtime.network_remove(network.name)
        network, engine_dns = ensure_network(
            app, runtime, project_id, str(config.project_root), engine_dns=False
        )
    policy = policy_for(project_id, network, config)
    isolation = Isolation(network, policy, fw)
    if fw is not None:
        table = fw.read()
        if not fw.verify(policy, table):
            with app.progress(
                "Applying network isolation rules..."
                if not policy.allow_all
                else "Registering the network (LAN access allowed)..."
            ):
                fw.apply(policy, table)
                helper.persist(fw)
        if isolation.enforced:
            app.step("Network isolation enabled")
        if policy.proxy is not None:
            app.step(f"Transparent proxy enabled (→ {config.proxy_text})")
    if own_resolver and engine_dns:
        # A network created before alcatraz had its own resolver: Podman's serves it.
        app.info("Names resolve through Podman's resolver ('alca down' then 'alca up' to change)")
    elif own_resolver:
        isolation.resolver = resolver.start(str(network.gateway), state_dir, app.environ)
    return isolation


#: Tests only: skip the sandbox-namespace layer, so a lab verdict is the host table's alone.
HOST_LAYER_ONLY_ENV = "ALCA_TEST_HOST_LAYER_ONLY"


def guard_inside(app: App, runtime: Runtime, guard: Isolation, container: str, pid: int = 0) -> int:
    """Load the second layer (`nft.guard_script`) in the sandbox's own network namespace.

    It keeps the policy when the host's table goes under a running sandbox. Only where
    alcatraz runs nft itself as root on this host (it must enter the namespace); through
    `sudo -n nft` or the helper container, the host's table is the only layer.
    Returns the pid of the container's init it was loaded for (0 when there is no layer):
    a restart without alcatraz gives the container a new init and a namespace without it.
    """
    fw = guard.firewall
    if fw is None or fw.mechanism != "native" or os.geteuid() != 0:
        return 0
    if app.environ.get(HOST_LAYER_ONLY_ENV):  # the lab's truth tables judge the host's table
        return 0
    if pid <= 0:
        info = runtime.inspect(container)
        pid = info.pid if info is not None else 0
    if pid <= 0:
        raise AlcaError(
            f"cannot guard the sandbox's network: container {container} is not running",
            hint="alca up",
        )
    inside = _in_namespace_of(app, pid, fw.command)
    tag = nft.guard_tag(guard.policy)
    if not guard.policy.allow_all and inside.guard_loaded(tag):
        return pid
    inside.load(nft.guard_script(guard.policy))
    if not guard.policy.allow_all and not inside.guard_loaded(tag):
        raise RefusedError(
            "the sandbox's own network rules did not load as expected",
            hint=f"check `nsenter --target={pid} --net nft list ruleset`",
        )
    return pid


def run_record(guard: Isolation, inside_pid: int) -> IsolationRecord:
    """The isolation record for `alca run`, with the init the second layer is bound to.

    Bound with every policy, allow-all too: a container started without alcatraz had its
    workspace sources resolved by the engine unchecked, so `alca run` refuses it either way.
    """
    record = guard.record()
    if inside_pid > 0:
        record = record._replace(inside=(inside_pid, state.process_start(inside_pid)))
    return record


def fallback_record(
    app: App, runtime: Runtime, project_id: str, state_dir: Path | None = None
) -> IsolationRecord:
    """What to tear down when `up` was interrupted before it saved its isolation record."""
    name = network_name(project_id)
    info = runtime.network_inspect(name)
    try:
        command: list[str] | None = firewall_for(
            app.runner, app.environ, runtime.executable
        ).command
    except AlcaError:
        command = None
    return IsolationRecord(
        key=project_key(project_id),
        interface=info.interface if info is not None else name,
        network=name if info is not None else "",
        nft=None if command is None else tuple(command),
        resolver=(
            resolver.record(info.gateways[0], str(state_dir), "")
            if state_dir is not None and info is not None and info.gateways
            else None
        ),
    )


def teardown(app: App, runtime: Runtime, record: IsolationRecord | None) -> None:
    """Remove rules, then the network; only call once the container is gone."""
    if record is None:
        return
    entry = record.resolver
    if entry is not None and entry.listen and entry.pidfile:
        resolver.stop(entry)
    key = record.key
    interface = record.interface
    command = record.nft
    if key and command:
        fw = Firewall(app.runner, list(command))
        try:
            fw.remove(key, [interface] if interface else [])
            Helper(app, runtime.executable).persist(fw)
        except AlcaError as error:
            app.warn(f"could not remove the firewall rules of {key}: {error.message}")
    name = record.network
    if name:
        runtime.network_remove(name)


def report(
    app: App, config: Config, project_id: str, record: IsolationRecord | None, pid: int = 0
) -> dict[str, Any]:
    """Isolation as the kernel has it now, for `status` and `net log`.

    `state` is one of: off, enabled, outdated (rules of an older config), missing, none
    (no sandbox network yet). With the running container's `pid`, the blocked packets and
    destinations include what the second layer in its namespace dropped first.
    """
    if record is None:
        return {"state": "none"}
    result: dict[str, Any] = {
        "network": record.network,
        "interface": record.interface,
        "subnet": record.subnet,
        "gateway": record.gateway,
    }
    if record.allow_all and not config.proxy:
        return {**result, "state": "off"}
    command = list(record.nft or ())
    if not command:
        return {**result, "state": "missing"}
    fw = Firewall(app.runner, command)
    table = fw.read()
    network = ProjectNetwork(
        record.network,
        record.interface,
        ipaddress.IPv4Network(str(record.subnet)),
        ipaddress.IPv4Address(str(record.gateway)),
    )
    policy = policy_for(project_id, network, config)
    fwd, inp, _ = nft.chain_names(policy.key)
    seen4, seen6 = nft.seen_sets(policy.key)
    if fw.verify(policy, table):
        state = "enabled"
    elif table.dispatch.get("fwd_dispatch", {}).get(network.interface) == fwd and table.tags.get(
        fwd, ""
    ).startswith(f"alcatraz {policy.key} "):
        state = "outdated"  # our rules, from another configuration
    else:
        state = "missing"  # deleted, flushed or never loaded
    blocked = table.counters.get(fwd, 0) + table.counters.get(inp, 0)
    packets: dict[str, int] = {}
    for address, count in table.seen.get(seen4, []) + table.seen.get(seen6, []):
        packets[address] = packets.get(address, 0) + count
    inside = _guard_state(app, command, pid)
    if inside is not None:
        blocked += inside.counters.get("output", 0)
        for address, count in inside.seen.get("seen4", []) + inside.seen.get("seen6", []):
            packets[address] = packets.get(address, 0) + count
    seen = sorted(packets.items(), key=lambda item: -item[1])
    return {
        **result,
        "state": state,
        "blocked": blocked,
        "destinations": [{"address": a, "packets": p} for a, p in seen],
    }


def _in_namespace_of(app: App, pid: int, command: list[str]) -> Firewall:
    """`command` (nft) run in the network namespace of process `pid` (the sandbox's init)."""
    return Firewall(app.runner, ["nsenter", f"--target={pid}", "--net", "--", *command])


def _guard_state(app: App, command: list[str], pid: int) -> TableState | None:
    """The second layer's table in the sandbox's namespace, when it can be read here."""
    if pid <= 0 or sys.platform != "linux" or os.geteuid() != 0:
        return None
    if app.environ.get("ALCA_FIREWALL") == "helper":
        return None
    try:
        table = _in_namespace_of(app, pid, command).read(nft.GUARD_TABLE)
    except AlcaError:
        return None
    return table if table.exists else None


class Helper:
    """Installation state and actions of the network helper for this machine."""

    def __init__(self, app: App, engine: str):
        from alcatraz.network import helper as helper_module

        self.app = app
        self.engine = engine
        self.mechanism = app.environ.get("ALCA_FIREWALL") or (
            "native" if sys.platform == "linux" else "helper"
        )
        self.module = helper_module
        self.paths = helper_module.native_paths(app.environ)

    @classmethod
    def for_app(cls, app: App) -> Helper:
        engine = app.environ.get("ALCA_RUNTIME") or "docker"
        return cls(app, engine if engine in ("docker", "podman") else "docker")

    def describe(self) -> str:
        if self.mechanism == "native":
            return (
                f"native nftables; rules saved in {self.paths.rules}, included by {self.paths.conf}"
            )
        return f"helper container {HELPER_NAME} ({self.engine})"

    def firewall(self) -> Firewall:
        return firewall_for(self.app.runner, self.app.environ, self.engine)

    def installed(self) -> bool:
        if self.mechanism == "native":
            return self.module.native_installed(self.paths)
        return self.module.helper_running(self.app.runner, self.engine)

    def table_exists(self) -> bool:
        try:
            return self.firewall().read().exists
        except AlcaError:
            return False

    def install(self) -> list[str]:
        if self.mechanism == "native":
            done = self.module.native_install(self.paths)
            if "ALCA_NFT_CONF" in self.app.environ:
                done.append(f"Custom ALCA_NFT_CONF: make sure {self.paths.conf} is loaded at boot")
            else:
                systemctl = self.app.runner.run(
                    ["systemctl", "enable", "nftables.service"], timeout=30
                )
                done.append(
                    "Enabled nftables.service (restores the rules at boot)"
                    if systemctl.ok
                    else f"Could not enable nftables.service: make sure {self.paths.conf} is "
                    "loaded at boot"
                )
            self.persist(self.firewall())
            return done
        self.module.helper_install(self.app.runner, self.engine, self.app.home, self.app.environ)
        self.persist(self.firewall())
        return [f"Started {HELPER_NAME}"]

    def uninstall(self) -> list[str]:
        done: list[str] = []
        try:
            fw = self.firewall()
            if fw.read().exists:
                fw._nft(["delete", "table", "inet", "alcatraz"])
                done.append("Deleted nftables table inet alcatraz")
        except AlcaError as error:
            done.append(f"Could not delete the rules: {error.message}")
        if self.mechanism == "native":
            done += self.module.native_uninstall(self.paths)
        else:
            self.module.helper_uninstall(self.app.runner, self.engine)
            done.append(f"Removed {HELPER_NAME}")
        return done

    def persist(self, fw: Firewall) -> None:
        """Save the live table where it is restored from at boot (when installed)."""
        if self.mechanism == "native":
            if self.module.native_installed(self.paths):
                self.module.save(fw, self.paths.rules)
        else:
            self.module.save(
                fw, self.module.helper_rules_dir(self.app.home) / self.module.RULES_FILE
            )

    def loaded_projects(self) -> dict[str, str]:
        """Project key -> a one-line summary, read from the kernel."""
        try:
            table = self.firewall().read()
        except AlcaError:
            return {}
        loaded: dict[str, str] = {}
        for chain in sorted(table.chains):
            if chain.startswith("p_") and chain.endswith("_fwd"):
                key = chain[2:-4]
                interfaces = [
                    name
                    for name, target in table.dispatch.get("fwd_dispatch", {}).items()
                    if target == chain
                ]
                blocked = table.counters.get(chain, 0) + table.counters.get(f"p_{key}_in", 0)
                loaded[key] = (
                    f"bridge {', '.join(interfaces) or '(none)'}, {blocked} packets blocked"
                )
        return loaded
