"""The network guard of a sandbox: the checks, the firewall, the rules and the second layer.

Steps of the plans in `alcatraz.sandbox.plan`: `prepare_network` and `load_rules` run
before any container of the project is created or started (refusing when isolation cannot
be guaranteed); `load_inner_layer` loads the second layer in the sandbox's own namespace;
`teardown` runs once the container is gone.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from alcatraz import state
from alcatraz.app import App
from alcatraz.config.load import Config
from alcatraz.errors import AlcaError, RefusedError
from alcatraz.network import nft, resolver
from alcatraz.network.egress import hostlan
from alcatraz.network.firewall import Firewall, firewall_for
from alcatraz.network.plan import Policy, ProjectNetwork, make_policy, network_name, project_key
from alcatraz.runtime.base import Runtime
from alcatraz.sandbox.daemon import start as daemon_start
from alcatraz.sandbox.nethelper import Helper
from alcatraz.sandbox.network import ensure_network
from alcatraz.sandbox.plan import needs_firewall as needs_firewall  # doctor asks here too
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
            proxied=self.firewall is not None and self.policy.proxy is not None,
            egress=self.policy.egress is not None and not self.policy.allow_all,
        )


def policy_for(
    project_id: str, network: ProjectNetwork, config: Config, *, own_resolver: bool = False
) -> Policy:
    """The policy `config` asks for on `network`, tokens resolved to its gateway.

    `own_resolver`: alcatraz's daemon serves the gateway's port 53 (and enforces egress)."""
    return make_policy(
        project_id,
        network,
        allow_all=config.allow_all_lan,
        rules=config.lan_rules,
        proxy=config.proxy,
        egress=config.egress if own_resolver else None,
        own_resolver=own_resolver,
    )


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


class Network(NamedTuple):
    """The project network as `up` found or made it, before its rules are loaded."""

    network: ProjectNetwork
    firewall: Firewall | None
    engine_dns: bool  # the engine's own resolver serves it (Podman's aardvark-dns)
    own_resolver: bool  # the project's resolver (`alcatraz.network.resolver`) should


def prepare_network(
    app: App, config: Config, runtime: Runtime, project_id: str, *, creating: bool = False
) -> Network:
    """The firewall (the helper installed when isolation needs it) and the project network.

    `creating`: no container of the project exists, so a network whose engine resolver
    holds the gateway's port 53 (Podman, created by an older alcatraz) is made anew.
    """
    check_guarantee(app, config, runtime)
    fw = firewall(app, runtime, config)
    own_resolver = fw is not None and fw.mechanism == "native" and resolver.expected(config)
    if config.egress is not None and not own_resolver:
        raise RefusedError(
            "network.egress needs alcatraz's own resolver and name checker, which run only on "
            "Linux with alcatraz as root and nftables on this host (not yet through the "
            "network helper of Docker Desktop or OrbStack); nothing was started",
            hint="run 'alca up' as root on Linux, or remove [network] egress",
        )
    if fw is not None and needs_firewall(config):
        _require_helper(app, Helper(app, runtime.executable))
    root = str(config.project_root)
    network, engine_dns = ensure_network(
        app, runtime, project_id, root, engine_dns=not own_resolver
    )
    if own_resolver and engine_dns and creating:
        runtime.network_remove(network.name)
        network, engine_dns = ensure_network(app, runtime, project_id, root, engine_dns=False)
    if config.egress is not None and engine_dns:
        raise RefusedError(
            "network.egress needs alcatraz's resolver on the gateway, but this sandbox's "
            "network still uses Podman's; nothing was changed",
            hint="run 'alca down' then 'alca up' to recreate the network",
        )
    return Network(network, fw, engine_dns, own_resolver)


def _require_helper(app: App, helper: Helper) -> None:
    """Isolation needs rules that survive a reboot: install the helper, with consent."""
    if helper.installed():
        return
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


def load_rules(
    app: App, config: Config, runtime: Runtime, prepared: Network, project_id: str, state_dir: Path
) -> Isolation:
    """Load and verify the rules, start the project's resolver: before the container runs."""
    fw = prepared.firewall
    daemon = prepared.own_resolver and not prepared.engine_dns
    policy = policy_for(project_id, prepared.network, config, own_resolver=daemon)
    isolation = Isolation(prepared.network, policy, fw)
    if fw is not None:
        table = fw.read_project(policy.key, interface=policy.network.interface)
        if not fw.verify(policy, table):
            with app.progress(_applying(policy)):
                fw.apply(policy, table, extra=_lan_script(policy))
                Helper(app, runtime.executable).persist(fw)
        elif not daemon and not policy.allow_all:
            # Without the project's daemon (which rewrites them every 2 s), the host's LANs
            # are brought up to date here, on each `up`.
            fw.load(_lan_script(policy))
        if isolation.enforced:
            app.step("Network isolation enabled")
        if policy.proxy is not None:
            app.step(f"Transparent proxy enabled (→ {config.proxy_text})")
    if prepared.own_resolver and prepared.engine_dns:
        # A network created before alcatraz had its own resolver: Podman's serves it.
        app.info("Names resolve through Podman's resolver ('alca down' then 'alca up' to change)")
    elif daemon:
        command = list(fw.command) if fw is not None else ["nft"]
        isolation.resolver = daemon_start(app, config, policy, state_dir, command)
        if policy.egress is not None:
            app.step(f"Egress limited to {len(policy.egress)} allowed entries (DNS closed)")
    return isolation


def _lan_script(policy: Policy) -> str:
    """The host-LAN sets' elements (reading the routes costs ~10 ms: only when loaded)."""
    if policy.allow_all:
        return ""
    return hostlan.lan_script(nft.T, policy.key, hostlan.current())


def _applying(policy: Policy) -> str:
    if not policy.allow_all:
        return "Applying network isolation rules..."
    if policy.proxy is not None:
        return "Applying transparent proxy rules (LAN access allowed)..."
    return "Registering the network (LAN access allowed)..."


#: Tests only: skip the sandbox-namespace layer, so a lab verdict is the host table's alone.
HOST_LAYER_ONLY_ENV = "ALCA_TEST_HOST_LAYER_ONLY"


def load_inner_layer(
    app: App, runtime: Runtime, guard: Isolation, container: str, pid: int = 0, *, new: bool = False
) -> int:
    """Load the second layer (`nft.guard_script`) in the sandbox's own network namespace.

    It keeps the policy when the host's table goes under a running sandbox. Only where
    alcatraz runs nft itself as root on this host (it must enter the namespace); through
    `sudo -n nft` or the helper container, the host's table is the only layer.
    Returns the pid of the container's init it was loaded for (0 when there is no layer):
    a restart without alcatraz gives the container a new init and a namespace without it.
    `new`: the container was created by this `up`, so its namespace cannot hold the layer
    yet and is not asked first.
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
    inside = in_namespace_of(app, pid, fw.command)
    tag = nft.guard_tag(guard.policy)
    if not new and not guard.policy.allow_all and inside.guard_loaded(tag):
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


def in_namespace_of(app: App, pid: int, command: list[str]) -> Firewall:
    """`command` (nft) run in the network namespace of process `pid` (the sandbox's init)."""
    return Firewall(app.runner, ["nsenter", f"--target={pid}", "--net", "--", *command])
