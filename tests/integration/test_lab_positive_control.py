"""Positive control for the Tier B lab (security test plan §4.2): a PLAIN container, not
started by alca, must reach every cell. This proves the lab works, so that a BLOCK verdict
in the isolation tests comes from alca and not from the lab.

Two exceptions are recorded, never hidden: IPv6 cells from a network without IPv6 are
NO-ROUTE, and the UDP limited-broadcast cell (NET-B1) is UNSENDABLE with busybox (no
SO_BROADCAST); its ICMP twin proves the broadcast path.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import socket
import ssl
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from alcatraz.runtime.cli_compat import CliRuntime
from tests.integration.conftest import TEST_IMAGE
from tests.lab.matrix import (
    DEFAULT,
    OPEN,
    Cell,
    ExecInSandbox,
    Expect,
    SandboxInfo,
    Verdict,
    discover,
    engine_exec,
    nft_counters,
    run_matrix,
    tier_b_cells,
)
from tests.lab.names import (
    ALLOWED_NAME,
    APEX_NAME,
    BANNER_PORT,
    BLOCKED_NAME,
    CDN4,
    DNS4,
    ECHO_PORTS,
    EGRESS_HOSTS,
    EGRESS_NAMES,
    PUBLIC_DNS4,
    UNLISTED4,
    WILD4,
    NamesLab,
    ask,
)
from tests.lab.topology import (
    LAN_HOST4,
    NFT_TABLE,
    Lab,
    lab_prefixes,
    leftovers,
    load_firewall,
    overlaps,
    read_sysctl,
    remove_firewall,
    stand_in_firewall,
)

pytestmark = pytest.mark.integration

#: alca carves project networks out of this pool and fails closed for all of it, so a
#: plain control container must never live there (it would be dropped once isolation is on)
ALCA_POOL4 = ipaddress.ip_network("10.213.0.0/16")
EGRESS_PROBE = Path(__file__).parents[1] / "lab" / "egressprobe.py"


@dataclass(frozen=True)
class UserNet:
    name: str
    subnet4: str
    subnet6: str
    options: tuple[str, ...]


USER_NETS = {
    "docker": UserNet(
        "alab-pc-net",
        "10.214.250.0/24",
        "fd00:214:250::/64",
        ("-o", "com.docker.network.bridge.name=alab-pcd0"),
    ),
    "podman": UserNet("alab-pc-net", "10.214.251.0/24", "fd00:214:251::/64", ()),
}


@dataclass
class Plain:
    engine: str
    network: str  # "default" or "user"
    name: str
    exec: ExecInSandbox
    info: SandboxInfo


def sh(argv: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


def check_subnets_free(net: UserNet) -> None:
    """Fail (never skip) if the control network could collide with anything real or ours."""
    prefixes = [ipaddress.ip_network(net.subnet4), ipaddress.ip_network(net.subnet6)]
    problems = overlaps(prefixes)
    problems += [f"{p} is inside alca's pool {ALCA_POOL4}" for p in prefixes if p == ALCA_POOL4]
    problems += [
        f"{p} overlaps alca's pool {ALCA_POOL4}"
        for p in prefixes
        if p.version == 4 and p.overlaps(ALCA_POOL4)
    ]
    problems += [
        f"{p} overlaps the lab prefix {q}"
        for p in prefixes
        for q in lab_prefixes()
        if p.version == q.version and p.overlaps(q)
    ]
    if problems:
        pytest.fail("ABORT: control network subnets are not free:\n  " + "\n  ".join(problems))


@contextlib.contextmanager
def plain_container(engine: str, kind: str, lab: Lab) -> Iterator[Plain]:
    """A plain container (`<engine> run`, not alca) on the engine's default network or on a
    dual-stack user network created here; removed by its own name afterwards."""
    container = f"alab-pc-{engine}-{kind}"
    net = USER_NETS[engine]
    # Podman's `rm -f` waits 10 s for `sleep` (PID 1 ignores SIGTERM) unless told not to
    remove = [engine, "rm", "-f", *(["-t", "0"] if engine == "podman" else []), container]
    sh(remove)  # a leftover of a crashed run of this very test
    network_args: list[str] = []
    made_network = False
    try:
        if kind == "user":
            check_subnets_free(net)
            if sh([engine, "network", "inspect", net.name]).returncode == 0:
                sh([engine, "network", "rm", net.name])
                check_subnets_free(net)
            create = [engine, "network", "create", "--ipv6", "--subnet", net.subnet4]
            create += ["--subnet", net.subnet6, *net.options, net.name]
            made = sh(create)
            assert made.returncode == 0, made.stderr
            made_network = True
            network_args = ["--network", net.name]
            lab.add_return_route(net.subnet6)  # Docker does not masquerade IPv6
        # NET_RAW: Podman 4.3 drops it by default and busybox ping needs a raw socket
        # ("ping: permission denied (are you root?)"); the control is as permissive as can be
        run = [engine, "run", "-d", "--rm", "--pull=never", "--cap-add", "NET_RAW"]
        run += ["--name", container, *network_args]
        started = sh([*run, TEST_IMAGE, "sleep", "600"])
        assert started.returncode == 0, started.stderr
        run_in = engine_exec(engine, container)
        yield Plain(engine, kind, container, run_in, discover(run_in))
    finally:
        removed = sh(remove)
        if made_network:
            gone = sh([engine, "network", "rm", net.name])
            assert gone.returncode == 0, gone.stderr
        assert removed.returncode == 0 or "no such container" in removed.stderr.lower()


@pytest.fixture(params=["default", "user"])
def plain(request: pytest.FixtureRequest, engine: CliRuntime, lab: Lab) -> Iterator[Plain]:
    with plain_container(engine.executable, request.param, lab) as container:
        yield container


@pytest.fixture
def plain_user(engine: CliRuntime, lab: Lab) -> Iterator[Plain]:
    with plain_container(engine.executable, "user", lab) as container:
        yield container


def test_plain_container_reaches_every_cell(plain: Plain, lab: Lab, tmp_path: Path) -> None:
    dns_gateway = plain.engine == "podman" and plain.network == "user"  # aardvark-dns
    cells = tier_b_cells(dns_gateway=dns_gateway)
    report = run_matrix(plain.exec, cells, OPEN, info=plain.info)
    print(f"\n[{plain.engine}/{plain.network}] lab set-up {lab.setup_seconds:.2f} s")
    print(report.table())
    (tmp_path / "report.json").write_text(json.dumps(report.to_json(), indent=2))

    assert not report.failures(), report.explain()
    assert len(report.results) >= 40
    for result in report.results:
        address = result.address or ""
        if result.verdict == Verdict.NO_ROUTE:
            assert ":" in address and not plain.info.has_v6, result.describe()
        elif result.verdict == Verdict.UNSENDABLE:
            assert result.cell.id == "NET-B1" and result.cell.proto == "udp", result.describe()
        else:
            assert result.verdict == Verdict.ALLOW_OK, result.describe()
    if plain.network == "user":  # dual-stack: the IPv6 cells are really exercised
        assert plain.info.has_v6
        assert not [r for r in report.results if r.verdict == Verdict.NO_ROUTE]
    metadata = next(r for r in report.results if r.cell.id == "NET-M1")
    assert metadata.client is not None and lab.canary in metadata.client.output
    assert report.probe_seconds < 20


def test_harness_judges_a_stand_in_firewall(plain_user: Plain, lab: Lab) -> None:
    """Negative control of the harness itself: with a stand-in for alca's default policy
    (the lab's own `inet alab-fw` table, matching only the control network as source) the
    verdicts must be BLOCK-OK with counters, and wrong expectations must fail loudly."""
    net = USER_NETS[plain_user.engine]
    cells = tier_b_cells(dns_gateway=plain_user.engine == "podman")
    load_firewall(stand_in_firewall(net.subnet4, net.subnet6))
    try:
        report = run_matrix(
            plain_user.exec, cells, DEFAULT, info=plain_user.info, counter=nft_counters(NFT_TABLE)
        )
    finally:
        remove_firewall()
    print(f"\n[{plain_user.engine}/user + stand-in firewall] counters {report.counter_delta}")
    print(report.table())

    assert not report.failures(), report.explain()
    for result in report.results:
        if result.cell.id == "NET-B1" and result.cell.proto == "udp":
            assert result.verdict == Verdict.UNSENDABLE, result.describe()
        elif result.expect == Expect.ALLOW:
            assert result.verdict == Verdict.ALLOW_OK, result.describe()
        else:
            assert result.verdict == Verdict.BLOCK_OK, result.describe()
    delta = report.counter_delta or {}
    for rule in ("lab_forward:lan4", "lab_forward:lan6", "lab_input:host4", "lab_input:bcast4"):
        assert delta.get(rule, 0) > 0, (rule, delta)
    assert report.probe_seconds < 20

    def inverted(cell: Cell) -> Expect:
        return Expect.ALLOW if cell.expected(DEFAULT) == Expect.BLOCK else Expect.BLOCK

    wrong = report.rejudge(inverted)
    for result in wrong.results:
        if result.verdict != Verdict.UNSENDABLE:
            expected = Verdict.LEAK if result.expect == Expect.BLOCK else Verdict.FALSE_BLOCK
            assert result.verdict == expected, result.describe()
    unexplained = report.rejudge(DEFAULT, counter_keys=lambda cell: ["lab_forward:no-such-rule"])
    assert {r.verdict for r in unexplained.results if r.expect == Expect.BLOCK} == {
        Verdict.BLOCK_UNEXPLAINED,
        Verdict.UNSENDABLE,
    }


def test_lab_teardown_leaves_nothing_behind(lab_session: Lab, tmp_path: Path) -> None:
    lab_session.ensure_up()
    assert leftovers(), "the leftover detector sees nothing while the lab is up"
    assert not lab_session.teardown()
    assert leftovers() == []
    forwarding = read_sysctl("net.ipv6.conf.all.forwarding")

    # a crashed run: processes and interfaces left behind, no teardown
    crashed = Lab(workdir=tmp_path / "crashed")
    crashed.setup()
    crashed.bind_on(LAN_HOST4, 19003)
    orphans = [s.proc for s in [*crashed.servers, *crashed.extra.values()] if s.proc]
    assert len(orphans) == 4

    fresh = Lab(workdir=tmp_path / "fresh")
    fresh.setup()  # cleans up the crashed run first (by name and pid file)
    try:
        assert all(proc.wait(timeout=5) is not None for proc in orphans)
        assert not fresh.dead_servers()
    finally:
        errors = fresh.teardown()
    assert not errors
    assert leftovers() == []
    assert read_sysctl("net.ipv6.conf.all.forwarding") == forwarding


def host_probe(commands: list[list[object]]) -> list[dict[str, object]]:
    """The egress probe run on the host (the positive control of what a sandbox runs)."""
    done = subprocess.run(
        [sys.executable, str(EGRESS_PROBE), json.dumps(commands)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    results: list[dict[str, object]] = json.loads(done.stdout)
    return results


def test_egress_lab_answers_as_designed_and_leaves_nothing_behind() -> None:
    """The egress lab (issue 15) from the host: every name with its address and TTL, the
    shared address's two sites by SNI and by Host, the echo services on both ports of every
    host; then nothing of it is left."""
    lab = NamesLab().setup()
    try:
        assert lab.ca is not None
        for server in (DNS4, PUBLIC_DNS4):
            for name, address, ttl in EGRESS_NAMES:
                assert ask(server, name) == (0, [(address, ttl)]), (server, name)
        assert ask(DNS4, f"probe-{uuid.uuid4().hex[:8]}.{APEX_NAME}")[1] == [(WILD4, 5)]
        assert ask(DNS4, "nowhere.alca.test") == (3, [])
        commands: list[list[object]] = []
        for site in (ALLOWED_NAME, BLOCKED_NAME):
            commands += [["tls", CDN4, site], ["http", CDN4, 80, site]]
        for host in EGRESS_HOSTS:
            commands.append(["banner", host, BANNER_PORT])
            for port in ECHO_PORTS:
                commands += [["tcp", host, port], ["udp", host, port]]
        results = host_probe(commands)
        failed = [r for r in results if not r["ok"]]
        assert not failed, failed
        print(f"\negress lab from the host: {len(results)} probes passed")
        # The certificate behind the shared address names both sites (a client that checks).
        context = ssl.create_default_context(cafile=str(lab.ca))
        for site in (ALLOWED_NAME, BLOCKED_NAME):
            with (
                socket.create_connection((CDN4, 443), timeout=5) as raw,
                context.wrap_socket(raw, server_hostname=site) as tls,
            ):
                assert tls.version()
        # The negative control of the probe: a wrong Host/SNI is not mistaken for a pass.
        wrong = host_probe([["http", CDN4, 80, "x.alca.test"], ["tcp", UNLISTED4, 9]])
        assert [r["ok"] for r in wrong] == [True, False], wrong
        assert lab.leftovers(), "the leftover detector sees nothing while the lab is up"
    finally:
        lab.teardown()
    assert lab.leftovers() == []
