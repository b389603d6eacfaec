"""Network isolation, proven in the lab (issue #4; security test plan §4.3, §4.4).

Per engine (Docker, Podman), a positive control runs first: the full matrix from a plain
container must reach every lab destination, or every test here errors (a BLOCK verdict
means nothing on a broken lab). Then one sandbox per configuration, started with `alca up`
and probed through `alca run`:

* default (`lan-access = []`): every private/special destination BLOCK-OK (nothing arrived
  and this project's own drop counters moved), the internet stand-in and, on Podman, DNS
  to the gateway allowed;
* E1: exactly the listed exceptions open (port, protocol and CIDR edges, and
  `${alca:HOST_IP}:19001` opening only the gateway's port 19001);
* `["*"]`: everything reachable, `alca status` says isolation is Off;
* a transparent proxy: internet TCP DNATed to the proxy, LAN and host TCP not redirected
  and still blocked, UDP to the proxy's port (only) open; with `lan-access = ["*"]` internet
  TCP still DNATed, the LAN reached directly; an IPv6 proxy loads;
* an IPv6 `lan-access` entry on an IPv4-only network loads and verifies;
* `alca net log` and `alca network-helper status` read the kernel;
* engines alca cannot protect (remote, rootless) are refused with exit 77, nothing created.

Run with `-s` to see the truth tables (they are also attached with `record_property`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from alcatraz.runtime.cli_compat import CliRuntime
from tests.integration.isolation_helpers import (
    REFUSED,
    OrigDstProxy,
    Project,
    Workspace,
    attach,
    chain_text,
    helper_workspace,
    network_info,
    positive_control,
    reduced_cells,
    sh,
    shim,
    summary,
    unexpected,
)
from tests.lab.matrix import (
    DEFAULT,
    E1,
    E1_LAN_ACCESS,
    GATEWAY,
    OPEN,
    Cell,
    Expect,
    Report,
    Verdict,
    tier_b_cells,
)
from tests.lab.topology import Lab

# `lab_session` / `lab` registered once for the whole session (importing them into two
# modules would build two labs over the same namespaces)
pytestmark = pytest.mark.integration

PROXY_PORT = 18888
V6_PROXY = "[2001:db8:100::10]:18080"
LAN, WAN = "192.168.250.2", "203.0.113.10"


class Sandboxes:
    """One sandbox per (engine, configuration), made on first use, shared by the tests."""

    def __init__(self, ws: Workspace, lab: Lab) -> None:
        self.ws, self.lab = ws, lab
        self.made: dict[tuple[str, str], Project] = {}

    def get(
        self,
        engine: str,
        name: str,
        *,
        lan_access: tuple[str, ...] | list[str] = (),
        proxy: str | None = None,
        env: dict[str, str] | None = None,
    ) -> Project:
        key = (engine, name)
        if key not in self.made:
            positive_control(engine, self.lab.ensure_up())  # never trust a BLOCK without it
            project = self.ws.project(
                engine, f"{engine[0]}{name}", lan_access=lan_access, proxy=proxy
            )
            self.made[key] = project
            project.up(**(env or {}))
        return self.made[key]


@pytest.fixture(scope="module")
def ws() -> Iterator[Workspace]:
    with helper_workspace("i") as workspace:
        yield workspace


@pytest.fixture(scope="module")
def sandboxes(ws: Workspace, lab_session: Lab) -> Sandboxes:
    return Sandboxes(ws, lab_session)


def dns_gateway(engine: str, *, isolated: bool = True) -> bool:
    """A resolver answers on the gateway: the project's own in an isolated sandbox (both
    engines); with lan-access = ["*"], Podman's aardvark-dns (Docker's is in-container)."""
    return isolated or engine == "podman"


def test_positive_control_plain_container_reaches_every_cell(
    engine: CliRuntime, lab: Lab, record_property: pytest.RecordProperty
) -> None:
    report = positive_control(engine.executable, lab)
    attach(record_property, f"{engine.executable}/positive-control", report)
    assert report.by_verdict().get(Verdict.ALLOW_OK, 0) >= 35, summary(report)


def test_default_config_blocks_every_private_destination(
    engine: CliRuntime, lab: Lab, sandboxes: Sandboxes, record_property: pytest.RecordProperty
) -> None:
    sandbox = sandboxes.get(engine.executable, "def")
    report = sandbox.matrix(tier_b_cells(dns_gateway=dns_gateway(engine.executable)), DEFAULT, lab)
    attach(record_property, f"{engine.executable}/default", report)

    assert not report.failures(), report.explain()
    assert not unexpected(report), "\n".join(unexpected(report))
    verdicts = {r.cell.key: r.verdict for r in report.results}
    # the ones that matter most, by name (ICMP is sent: the sandbox has NET_RAW)
    for key in (
        f"NET-L1 {LAN} tcp/18080",
        f"NET-L1 {LAN} icmp",
        "NET-M1 169.254.169.254 tcp/80",
        "NET-C1 100.64.0.2 tcp/18080",
        f"NET-H1 {GATEWAY} tcp/19000",
        "NET-H5 192.168.250.1 tcp/19002",
        "NET-B1 255.255.255.255 icmp",
    ):
        assert verdicts[key] == Verdict.BLOCK_OK, (key, verdicts[key])
    for key in (f"NET-W1 {WAN} tcp/80", f"NET-W1 {WAN} udp/17000", f"NET-W1 {WAN} icmp"):
        assert verdicts[key] == Verdict.ALLOW_OK, (key, verdicts[key])
    if dns_gateway(engine.executable):
        assert verdicts[f"DNS-5 {GATEWAY} dns/53"] == Verdict.ALLOW_OK
    metadata = next(r for r in report.results if r.cell.id == "NET-M1")
    assert metadata.client is not None and lab.canary not in metadata.client.output
    delta = report.counter_delta or {}
    assert delta.get(f"p_{sandbox.key}_fwd", 0) > 0 and delta.get(f"p_{sandbox.key}_in", 0) > 0

    status = sandbox.status_json()["isolation"]
    assert status["state"] == "enabled", status
    text = sandbox.ok("status").stdout
    assert "Network isolation: Enabled on" in text, text


def test_net_log_and_helper_status_read_the_kernel(
    engine: CliRuntime, lab: Lab, sandboxes: Sandboxes
) -> None:
    sandbox = sandboxes.get(engine.executable, "def")
    probe = sandbox.exec_alca(["sh", "-c", f"printf x | timeout 2 nc -w 2 {LAN} 18081"])
    assert probe.returncode != 0, "the blocked probe connected"
    log = sandbox.ok("net", "log")
    print(f"\n[{engine.executable}] $ alca net log\n{log.stdout}")
    assert re.search(rf"^{re.escape(LAN)}\s+[1-9]", log.stdout, re.M), log.stdout
    assert "packets blocked in total" in log.stdout

    status = sandbox.ok("network-helper", "status")
    print(f"$ alca network-helper status\n{status.stdout}")
    assert "Installed: Yes" in status.stdout
    assert "Rules applied: Yes" in status.stdout
    assert f"- {sandbox.key}: bridge {sandbox.interface()}" in status.stdout


def e1_extra_cells() -> list[Cell]:
    """Edges of `${alca:HOST_IP}:19001`: same port over UDP, a neighbour port on the
    gateway (each gets a listener bound to the gateway only)."""
    block = {DEFAULT: Expect.BLOCK, E1: Expect.BLOCK}
    return [
        Cell("ALW-8", GATEWAY, "udp", 19001, block, note="the token means TCP only"),
        Cell("ALW-8", GATEWAY, "tcp", 19003, block, note="only port 19001 is opened"),
    ]


def test_e1_opens_exactly_the_listed_exceptions(
    engine: CliRuntime, lab: Lab, sandboxes: Sandboxes, record_property: pytest.RecordProperty
) -> None:
    sandbox = sandboxes.get(engine.executable, "e1", lan_access=E1_LAN_ACCESS)
    cells = tier_b_cells(dns_gateway=dns_gateway(engine.executable)) + e1_extra_cells()
    report = sandbox.matrix(cells, E1, lab)
    attach(record_property, f"{engine.executable}/E1", report)

    assert not report.failures(), report.explain()
    assert not unexpected(report), "\n".join(unexpected(report))
    verdicts = {r.cell.key: r.verdict for r in report.results}
    allowed = [
        f"NET-L1 {LAN} tcp/18080",  # ALW-1
        "NET-L2 10.77.0.2 udp/17000",  # ALW-3
        "ALW-7 10.77.0.2 tcp/18081",  # inside 10.77.0.0/24
        f"NET-H2 {GATEWAY} tcp/19001",  # ${alca:HOST_IP}:19001
    ]
    blocked = [
        f"NET-L1 {LAN} tcp/18081",  # ALW-2: port-exact
        f"NET-L1 {LAN} udp/18080",  # ALW-2: TCP by default
        f"NET-L1 {LAN} icmp",
        "ALW-4 10.77.0.2 tcp/17000",  # UDP-only rule
        "ALW-7 10.77.1.2 tcp/18081",  # CIDR edge
        f"NET-H1 {GATEWAY} tcp/19000",
        f"ALW-8 {GATEWAY} udp/19001",
        f"ALW-8 {GATEWAY} tcp/19003",
        "ALW-8 192.168.250.1 tcp/19001",  # the same port on another host address
        "NET-M1 169.254.169.254 tcp/80",
    ]
    for key in allowed:
        assert verdicts[key] == Verdict.ALLOW_OK, (key, verdicts[key])
    for key in blocked:
        assert verdicts[key] == Verdict.BLOCK_OK, (key, verdicts[key])
    assert sandbox.status_json()["isolation"]["state"] == "enabled"


def test_allow_all_reaches_everything_and_status_says_off(
    engine: CliRuntime, lab: Lab, sandboxes: Sandboxes, record_property: pytest.RecordProperty
) -> None:
    sandbox = sandboxes.get(engine.executable, "all", lan_access=["*"])
    report = sandbox.matrix(
        tier_b_cells(dns_gateway=dns_gateway(engine.executable, isolated=False)),
        OPEN,
        lab,
        counted=False,
    )
    attach(record_property, f"{engine.executable}/allow-all", report)

    assert not report.failures(), report.explain()
    assert not unexpected(report), "\n".join(unexpected(report))
    status = sandbox.ok("status").stdout
    assert 'Network isolation: Off (lan-access = ["*"]' in status, status
    assert sandbox.status_json()["isolation"]["state"] == "off"
    assert "Network isolation is off" in sandbox.ok("net", "log").stdout


def proxy_cells(gateway: str) -> tuple[list[Cell], set[str]]:
    """Cells for the proxy test and the keys of those that must reach the proxy."""
    block = {DEFAULT: Expect.BLOCK}
    allow = {DEFAULT: Expect.ALLOW}
    cells = [
        Cell("PX-1", WAN, "tcp", 80, block, note="proxied, never direct"),
        Cell("PX-1", WAN, "tcp", 443, block, note="proxied, never direct"),
        Cell("PX-6", gateway, "tcp", PROXY_PORT, block, note="the proxy itself, not DNATed"),
        Cell("PX-2", LAN, "tcp", 18080, block),
        Cell("PX-2", "10.77.0.2", "tcp", 18081, block),
        Cell("PX-3", GATEWAY, "tcp", 19000, block),
        Cell("PX-3", "192.168.250.1", "tcp", 19002, block),
        Cell("PX-M", "169.254.169.254", "tcp", 80, block),
        Cell("PX-4", WAN, "udp", 17000, allow, note="UDP is not redirected (documented)"),
        Cell("PX-4", LAN, "udp", 17000, block),
        Cell("PX-7", GATEWAY, "udp", PROXY_PORT, allow, note="UDP to the proxy's port passes"),
        Cell("PX-7", GATEWAY, "udp", 19004, block, note="another UDP port of the proxy's host"),
    ]
    proxied = {c.key for c in cells if c.id in ("PX-1", "PX-6")}
    return cells, proxied


def proxy_allow_all_cells(gateway: str) -> tuple[list[Cell], set[str]]:
    """With `lan-access = ["*"]`: internet TCP proxied, everything private reached directly."""
    cells, proxied = proxy_cells(gateway)
    allow = {DEFAULT: Expect.ALLOW}
    return [c if c.key in proxied else replace(c, expect=allow) for c in cells], proxied


def proxy_problems(
    report: Report, proxy: OrigDstProxy, proxied: set[str], gateway: str, *, counted: bool
) -> list[str]:
    """What went wrong: a proxied cell that went direct or reached the proxy with the wrong
    original destination, another cell redirected, or a verdict other than expected (a
    block is BLOCK-OK when judged with the host's counters, else BLOCK: nothing arrived)."""
    blocked = Verdict.BLOCK_OK if counted else Verdict.BLOCK
    problems: list[str] = []
    for result in report.results:
        at_proxy = proxy.by_token(result.token)
        if result.cell.key in proxied:
            if result.verdict == Verdict.LEAK:
                problems.append(f"went direct instead of through the proxy: {result.describe()}")
            if result.cell.id == "PX-1":
                want = f"{result.cell.dest}:{result.cell.port}"
            else:
                want = f"{gateway}:{PROXY_PORT}"
            if [r["original"] for r in at_proxy] != [want]:
                problems.append(f"{result.cell.key}: proxy saw {at_proxy}, wanted dst {want}")
            continue
        if at_proxy:
            problems.append(f"{result.cell.key} was redirected to the proxy: {at_proxy}")
        want_verdict = Verdict.ALLOW_OK if result.expect == Expect.ALLOW else blocked
        if result.verdict != want_verdict:
            problems.append(result.describe())
    return problems


def proxy_matrix(
    sandbox: Project, lab: Lab, cells_for: Any, *, counted: bool = True
) -> tuple[Report, list[str]]:
    """Run the proxy cells against a sink proxy on the gateway; the report and problems."""
    gateway = str(sandbox.status_json()["isolation"]["gateway"])
    proxy = OrigDstProxy(gateway, PROXY_PORT)
    try:
        cells, proxied = cells_for(gateway)
        report = sandbox.matrix(cells, DEFAULT, lab, counted=counted)
    finally:
        proxy.close()
    print(report.table())
    print("proxy saw:", proxy.records)
    print(chain_text(f"p_{sandbox.key}_nat"))
    return report, proxy_problems(report, proxy, proxied, gateway, counted=counted)


def test_proxy_redirects_internet_tcp_and_nothing_private(
    engine: CliRuntime, lab: Lab, sandboxes: Sandboxes, record_property: pytest.RecordProperty
) -> None:
    sandbox = sandboxes.get(engine.executable, "px", proxy=f"${{alca:HOST_IP}}:{PROXY_PORT}")
    report, problems = proxy_matrix(sandbox, lab, proxy_cells)
    attach(record_property, f"{engine.executable}/proxy", report)
    assert not problems, "\n".join(problems)


def test_proxy_udp_and_tcp_with_both_layers(
    engine: CliRuntime, lab: Lab, sandboxes: Sandboxes, record_property: pytest.RecordProperty
) -> None:
    """The same truth table with the layer in the sandbox's namespace loaded too (as a user
    gets it): it must open the proxy's UDP port and block the rest alike. Judged without
    the host's counters (the inner layer drops first)."""
    sandbox = sandboxes.get(
        engine.executable,
        "pxin",
        proxy=f"${{alca:HOST_IP}}:{PROXY_PORT}",
        env={"ALCA_TEST_HOST_LAYER_ONLY": ""},
    )
    report, problems = proxy_matrix(sandbox, lab, proxy_cells, counted=False)
    attach(record_property, f"{engine.executable}/proxy-both-layers", report)
    assert not problems, "\n".join(problems)


def test_proxy_redirects_under_allow_all(
    engine: CliRuntime, lab: Lab, sandboxes: Sandboxes, record_property: pytest.RecordProperty
) -> None:
    """Issue #15: `lan-access = ["*"]` plus a proxy printed "Transparent proxy enabled" and
    applied no DNAT. Internet TCP goes to the proxy; the LAN, the host and UDP are reached
    directly (everything private is allowed); both layers loaded, as a user gets them."""
    sandbox = sandboxes.get(
        engine.executable,
        "pxall",
        lan_access=["*"],
        proxy=f"${{alca:HOST_IP}}:{PROXY_PORT}",
        env={"ALCA_TEST_HOST_LAYER_ONLY": ""},
    )
    report, problems = proxy_matrix(sandbox, lab, proxy_allow_all_cells, counted=False)
    attach(record_property, f"{engine.executable}/proxy-allow-all", report)
    assert not problems, "\n".join(problems)
    ok, detail = sandbox.rules_verified()
    assert ok, detail
    status = sandbox.ok("status").stdout
    assert 'Network isolation: Off (lan-access = ["*"]' in status, status
    assert "transparent proxy rules loaded" in status, status
    assert "Network isolation is off" in sandbox.ok("net", "log").stdout


def test_proxy_under_allow_all_run_refuses_without_its_rules(
    engine: CliRuntime, sandboxes: Sandboxes
) -> None:
    """The proxy is what `up` promised: `alca run` refuses when its rules are gone (as for
    isolation), and `up` restores them."""
    sandbox = sandboxes.get(
        engine.executable,
        "pxall",
        lan_access=["*"],
        proxy=f"${{alca:HOST_IP}}:{PROXY_PORT}",
        env={"ALCA_TEST_HOST_LAYER_ONLY": ""},
    )
    assert sandbox.alca("run", "true").returncode == 0
    sh(["nft", "flush", "chain", "inet", "alcatraz", f"p_{sandbox.key}_nat"])
    sh(["nft", "flush", "chain", "inet", "alcatraz", f"p_{sandbox.key}_fwd"])
    refused = sandbox.alca("run", "true")
    assert refused.returncode == REFUSED, str(refused)
    sandbox.up(ALCA_TEST_HOST_LAYER_ONLY="")
    assert sandbox.alca("run", "true").returncode == 0
    assert "dnat ip to" in chain_text(f"p_{sandbox.key}_nat")


def test_ipv6_proxy_config_loads(engine: CliRuntime, sandboxes: Sandboxes) -> None:
    sandbox = sandboxes.get(engine.executable, "px6", proxy=V6_PROXY)
    assert sandbox.status_json()["isolation"]["state"] == "enabled"
    ok, detail = sandbox.rules_verified()
    assert ok, detail
    nat = chain_text(f"p_{sandbox.key}_nat")
    assert "dnat ip6 to [2001:db8:100::10]:18080" in nat, nat


def test_ipv6_proxy_is_never_bypassed_by_ipv4_tcp(
    engine: CliRuntime, lab: Lab, sandboxes: Sandboxes
) -> None:
    """Plan PX-5: proxied or blocked, never direct. A v6-only proxy cannot take the
    IPv4-only sandbox's traffic, so `up` should refuse, or IPv4 TCP should be dropped."""
    sandbox = sandboxes.get(engine.executable, "px6", proxy=V6_PROXY)
    cells = [Cell("PX-5", WAN, "tcp", 80, {DEFAULT: Expect.BLOCK}, note="never direct")]
    report = sandbox.matrix(cells, DEFAULT, lab, counted=False)
    print(report.table())
    assert report.results[0].verdict != Verdict.LEAK, report.results[0].describe()


def test_ipv6_lan_access_entry_on_ipv4_network_loads(
    engine: CliRuntime, lab: Lab, sandboxes: Sandboxes
) -> None:
    sandbox = sandboxes.get(engine.executable, "v6", lan_access=["[fd00:250::2]:18080"])
    info = network_info(engine.executable, sandbox.network)
    assert info is not None and all(":" not in s for s in info.subnets), info
    ok, detail = sandbox.rules_verified()
    assert ok, detail
    assert sandbox.status_json()["isolation"]["state"] == "enabled"
    fwd = chain_text(f"p_{sandbox.key}_fwd")
    assert "ip6 daddr fd00:250::2 tcp dport 18080 accept" in fwd, fwd
    report = sandbox.matrix(reduced_cells(tier_b_cells()), DEFAULT, lab)
    print(report.table())
    assert not report.failures(), report.explain()
    assert not unexpected(report), "\n".join(unexpected(report))


@pytest.mark.parametrize("mode", ["remote", "rootless", "unreachable"])
def test_engines_alca_cannot_protect_are_refused(
    engine: CliRuntime, ws: Workspace, mode: str, tmp_path: Path
) -> None:
    """Remote and rootless engines: `up` exits 77 naming the reason, and nothing is created
    (simulated with a shim in front of the real engine). An unreachable remote engine:
    `up` fails before anything is created."""
    name = engine.executable
    if mode == "rootless" and name == "podman" and os.geteuid() == 0:
        pytest.skip(
            "as root, Podman is rootful by definition and alca no longer asks `podman info` "
            "(so a shim cannot fake it); rootless Podman needs an unprivileged user"
        )
    if mode == "unreachable":
        variable = "DOCKER_HOST" if name == "docker" else "CONTAINER_HOST"
        env = {variable: "tcp://127.0.0.1:1"}
    else:
        env = shim(tmp_path / "bin", name, mode)
    project = ws.project(name, f"{name[0]}ref{mode[:3]}")
    project.ok("trust", "--yes")
    done = project.alca("up", **env)
    print(f"\n[{name}/{mode}] {done}")
    if mode == "unreachable":
        assert done.returncode != 0, str(done)
    else:
        assert done.returncode == REFUSED, str(done)
        reason = "the engine is remote (tcp://" if mode == "remote" else "runs rootless"
        assert "network isolation cannot be guaranteed: " in done.stderr, str(done)
        assert reason in done.stderr, str(done)
    # nothing was created
    label = f"label=alca.project.path={project.root}"
    containers = sh([name, "ps", "-a", "--filter", label, "--format", "{{.Names}}"])
    assert containers.stdout.split() == [], containers.stdout
    networks = sh([name, "network", "ls", "--filter", label, "--format", "{{.Name}}"])
    assert networks.stdout.split() == [], networks.stdout
    pid = project.state().get("project_id")
    if isinstance(pid, str):
        assert network_info(name, project.network) is None
        assert project.chains_loaded() == []
