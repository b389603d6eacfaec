"""Egress by name with DNS closed (issue 15, Acceptance), against real Docker and Podman.

The lab (tests/lab/names.py) is network namespaces only: a lab DNS server on 10.79.53.53
that logs every query, the egress hosts on /32 TEST-NET-3 addresses behind it, and the Tier
B lab's non-private LAN 198.51.100.0/24 directly connected to the host (tests/lab/topology).
Each project uses `[network] dns = ["10.79.53.53"]`, the Debian test image (python3 runs
tests/lab/egressprobe.py inside) and both isolation layers.

Every test prints a truth table. Positive controls come first: each probe a row expects
to be blocked works from the host (the lab DNS server answers each name), and an allowed
neighbour of each blocked row passes from the same sandbox (the allowed name on the same
shared address, the allowed port on the same host, a CIDR-listed address on the same lab
namespace, the internet-side address of the same LAN host). A misbehaving product FAILS
a row; nothing here skips except a missing engine.

TTL: the lab answers short.alca.test with TTL 2 s; the daemon clamps it to ttl_min (30 s
in the design; read from the daemon's policy file when present). The test asserts the
element's timeout in the set equals the clamped TTL (and 600 s, unclamped, for
long.alca.test), then deletes the element itself, as its expiry would, and checks that the
address no longer connects, instead of waiting 30 s.
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import time
import tomllib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from alcatraz import state as alca_state
from alcatraz.network.egress.sets import REFRESH_AFTER
from tests.integration.egress_helpers import (
    DEBIAN,
    TruthTable,
    apply_config,
    controls,
    delete_element,
    in_sandbox,
    rows,
    set_elements,
    set_exists,
    set_has,
    set_name,
    ttl_bounds,
    write_config,
)
from tests.integration.isolation_helpers import (
    REFUSED,
    Project,
    Workspace,
    helper_workspace,
    sh,
    wait_for,
)
from tests.lab.names import (
    ALLOWED_NAME,
    APEX4,
    APEX_NAME,
    BANNER_PORT,
    BLOCKED_NAME,
    CDN4,
    CIDR4,
    DEEP_NAME,
    DNS4,
    LINK_LOCAL_DNS,
    LONG4,
    LONG_NAME,
    LONG_TTL,
    OTHER4,
    OTHER_NAME,
    PROTO4,
    PROTO_NAME,
    PUBLIC_DNS4,
    SHORT4,
    SHORT_NAME,
    SHORT_TTL,
    UNLISTED4,
    WEB4,
    WEB_NAME,
    WILD4,
    NamesLab,
    ask,
)
from tests.lab.topology import WAN4, WAN_EXTRA4, Lab

pytestmark = pytest.mark.integration

EGRESS = [
    ALLOWED_NAME,
    f"{OTHER_NAME}:7001",
    f"*.{APEX_NAME}",
    SHORT_NAME,
    LONG_NAME,
    f"{CIDR4}/32",
    f"udp://{PROTO_NAME}:7001-7002",
]
EDE_BLOCKED = 15  # RFC 8914 "Blocked"
DAEMON_MODULE = "alcatraz.network.dnsproxy"
LIVE_TIMEOUT = 20.0  # the live element's 15 s timeout, and some slack


def unique(case: str) -> str:
    """A name no cache has seen, answered by the lab (its `*.web.alca.test` record)."""
    return f"probe-{case}-{uuid.uuid4().hex[:8]}.{WEB_NAME}"


# --- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def egress_lab(lab_session: Lab) -> Iterator[NamesLab]:
    # The Tier B lab first: its set-up removes every `alab-*` namespace it finds.
    lab_session.ensure_up()
    lab = NamesLab().setup()
    try:
        yield lab
    finally:
        lab.teardown()
        left = lab.leftovers()
    assert not left, f"the egress lab left {left}"


@pytest.fixture(scope="module")
def workspace(egress_lab: NamesLab) -> Iterator[Workspace]:
    with helper_workspace("egress", ALCA_TEST_HOST_LAYER_ONLY="") as ws:  # both layers
        yield ws


@pytest.fixture(scope="module")
def engine_name(engine: object) -> str:
    return str(getattr(engine, "executable", engine))


def image_ready(engine: str) -> None:
    done = sh([engine, "image", "inspect", DEBIAN])
    assert done.returncode == 0, f"{engine} has no {DEBIAN}: run scripts/setup-test-env.sh"


@pytest.fixture(scope="module")
def guarded(engine_name: str, workspace: Workspace) -> Iterator[Project]:
    """A project with the test's egress list."""
    image_ready(engine_name)
    project = workspace.project(engine_name, f"eg-{engine_name}")
    apply_config(project, EGRESS)
    yield project
    project.alca("down")


@pytest.fixture(scope="module")
def open_project(engine_name: str, workspace: Workspace) -> Iterator[Project]:
    """A project without `egress` (the internet open, as before issue 15)."""
    image_ready(engine_name)
    project = workspace.project(engine_name, f"eo-{engine_name}")
    apply_config(project, None)
    yield project
    project.alca("down")


@pytest.fixture
def restore_config(guarded: Project) -> Iterator[Project]:
    """The guarded project with its egress list approved and up again after the test."""
    yield guarded
    apply_config(guarded, EGRESS)


def lab_saw(lab: NamesLab, name: str) -> int:
    return sum(1 for query in lab.queries() if query["name"] == name)


# --- names and addresses ----------------------------------------------------------------


def test_allowed_names_connect_others_neither_resolve_nor_connect(
    egress_lab: NamesLab, guarded: Project
) -> None:
    table = TruthTable(f"[{guarded.engine}] names and addresses, egress = {EGRESS}")
    never = unique("never")
    controls(
        table,
        [["resolve", ALLOWED_NAME], ["resolve", BLOCKED_NAME], ["tcp", UNLISTED4, 7001],
         ["udp", UNLISTED4, 7001], ["tls", CDN4, ALLOWED_NAME], ["udp", OTHER4, 7001],
         ["tcp", CDN4, 7001], ["banner", CDN4, BANNER_PORT]],
    )  # fmt: skip
    table.add(
        "control (host): lab DNS answers a fresh name", "PASS", bool(ask(DNS4, unique("c"))[1])
    )
    blocked_before = lab_saw(egress_lab, BLOCKED_NAME)
    results = rows(
        table,
        guarded,
        [
            (["resolve", ALLOWED_NAME], "PASS"),
            (["tls", ALLOWED_NAME, ALLOWED_NAME], "PASS"),  # TCP by name
            (["udp", OTHER_NAME, 7001], "PASS"),  # UDP by name
            (["tcp", ALLOWED_NAME, 7001], "PASS"),  # a line protocol: no name to check
            (["banner", ALLOWED_NAME, BANNER_PORT], "PASS"),  # the server speaks first
            (["tcp", CIDR4, 7001], "PASS"),  # the CIDR entry: the same lab host as below
            (["udp", CIDR4, 7001], "PASS"),
            (["resolve", BLOCKED_NAME], "BLOCK"),
            (["resolve", never], "BLOCK"),
            (["dns", "resolv", BLOCKED_NAME, "udp"], "PASS"),  # answered: NXDOMAIN + EDE
            (["tcp", UNLISTED4, 7001], "BLOCK"),
            (["udp", UNLISTED4, 7001], "BLOCK"),
        ],
    )
    assert_resolved(table, results[0], CDN4)
    answered = next(r for r in results if r["cmd"][0] == "dns")
    reply = json.loads(answered["detail"]) if answered["ok"] else {}
    ede = reply.get("ede") or [None, ""]
    table.add("resolver answers NXDOMAIN (rcode 3)", "PASS", reply.get("rcode") == 3, str(reply))
    text = f"alcatraz: {BLOCKED_NAME} is not in [network] egress"
    table.add(f"EDE {EDE_BLOCKED} {text!r}", "PASS", ede == [EDE_BLOCKED, text], str(ede))
    table.add(
        f"lab DNS server never saw {BLOCKED_NAME}",
        "PASS",
        lab_saw(egress_lab, BLOCKED_NAME) == blocked_before,
        f"{lab_saw(egress_lab, BLOCKED_NAME) - blocked_before} new queries",
    )
    table.add(f"lab DNS server never saw {never}", "PASS", lab_saw(egress_lab, never) == 0)
    isolation_current(table, guarded)
    table.check()


def isolation_current(table: TruthTable, project: Project) -> None:
    """`alca status` finds the rules `up` loaded for this config (not "outdated")."""
    isolation = project.status_json().get("isolation") or {}
    table.add("alca status: isolation enabled", "PASS", isolation.get("state") == "enabled",
              str(isolation.get("state")))  # fmt: skip


def assert_resolved(table: TruthTable, result: dict[str, Any], address: str) -> None:
    table.add(f"  ... to {address}", "PASS", result["detail"] == address, result["detail"])


def test_a_shared_address_passes_only_the_allowed_sni_and_host(guarded: Project) -> None:
    table = TruthTable(f"[{guarded.engine}] {ALLOWED_NAME} and {BLOCKED_NAME} share {CDN4}")
    controls(
        table,
        [["tls", CDN4, ALLOWED_NAME], ["tls", CDN4, BLOCKED_NAME],
         ["http", CDN4, 80, ALLOWED_NAME], ["http", CDN4, 80, BLOCKED_NAME]],
    )  # fmt: skip
    rows(
        table,
        guarded,
        [
            (["resolve", ALLOWED_NAME], "PASS"),  # puts the shared address in the set
            (["tls", CDN4, ALLOWED_NAME], "PASS"),
            (["tls", CDN4, BLOCKED_NAME], "BLOCK"),
            (["http", CDN4, 80, ALLOWED_NAME], "PASS"),
            (["http", CDN4, 80, BLOCKED_NAME], "BLOCK"),
            (["tls", CDN4, ALLOWED_NAME], "PASS"),  # still fine after the refusals
        ],
    )
    table.check()


def test_wildcard_and_port_entries_behave_as_written(
    egress_lab: NamesLab, guarded: Project
) -> None:
    table = TruthTable(
        f"[{guarded.engine}] '*.{APEX_NAME}', '{OTHER_NAME}:7001', 'udp://{PROTO_NAME}:7001-7002'"
    )
    controls(
        table,
        [["resolve", DEEP_NAME], ["resolve", APEX_NAME], ["tcp", APEX4, 7001],
         ["tcp", OTHER4, 7002], ["udp", OTHER4, 7002], ["tcp", PROTO4, 7001]],
    )  # fmt: skip
    apex_before = lab_saw(egress_lab, APEX_NAME)
    results = rows(
        table,
        guarded,
        [
            (["resolve", DEEP_NAME], "PASS"),
            (["tcp", DEEP_NAME, 7001], "PASS"),
            (["udp", DEEP_NAME, 7002], "PASS"),  # no port in the entry: every port
            (["resolve", APEX_NAME], "BLOCK"),  # `*.` is subdomains only
            (["tcp", APEX4, 7001], "BLOCK"),
            (["resolve", OTHER_NAME], "PASS"),
            (["tcp", OTHER_NAME, 7001], "PASS"),
            (["udp", OTHER_NAME, 7001], "PASS"),  # a port without a prefix: tcp and udp
            (["tcp", OTHER4, 7002], "BLOCK"),
            (["udp", OTHER4, 7002], "BLOCK"),
            (["http", OTHER4, 80, OTHER_NAME], "BLOCK"),
            (["resolve", PROTO_NAME], "PASS"),
            (["udp", PROTO_NAME, 7001], "PASS"),  # udp:// and a range: both ends
            (["udp", PROTO_NAME, 7002], "PASS"),
            (["tcp", PROTO4, 7001], "BLOCK"),  # udp:// only
        ],
    )
    table.add(
        f"lab DNS server never saw {APEX_NAME}",
        "PASS",
        lab_saw(egress_lab, APEX_NAME) == apex_before,
    )
    assert_resolved(table, results[0], WILD4)
    table.check()


def test_direct_queries_to_any_other_resolver_are_refused(
    egress_lab: NamesLab, guarded: Project
) -> None:
    servers = {"lab resolver": DNS4, "public resolver": PUBLIC_DNS4, "link-local": LINK_LOCAL_DNS}
    table = TruthTable(f"[{guarded.engine}] DNS from inside to anything but the project's")
    names = {server: unique("direct") for server in servers.values()}
    for label, server in servers.items():
        control = ask(server, unique("control"))[1]
        table.add(f"control (host): {label} {server} answers", "PASS", bool(control), str(control))
    rows(table, guarded, [(["dns", "resolv", ALLOWED_NAME, "udp"], "PASS"),
                          (["dns", "resolv", ALLOWED_NAME, "tcp"], "PASS")])  # fmt: skip
    cases = [
        (["dns", server, names[server], proto], "BLOCK")
        for server in servers.values()
        for proto in ("udp", "tcp")
    ]
    rows(table, guarded, cases)
    for server, name in names.items():
        table.add(
            f"lab never saw the query sent to {server}", "PASS", lab_saw(egress_lab, name) == 0
        )
    table.check()


def test_the_directly_connected_non_private_lan_is_blocked(
    lab_session: Lab, open_project: Project
) -> None:
    """Even with the internet open (no `egress`): the host's own LAN on a public range.
    The host's real gateway is never probed: only its presence in the set is checked."""
    table = TruthTable(f"[{open_project.engine}] the host's LAN {WAN4}/24 (no egress)")
    wan_host = WAN_EXTRA4[0]  # the same lab host, on an address routed through it
    controls(table, [["alab", WAN4, 18080], ["alab", wan_host, 18080]])
    rows(
        table, open_project, [(["alab", wan_host, 18080], "PASS"), (["alab", WAN4, 18080], "BLOCK")]
    )
    lan4 = set_name(open_project, "lan4")
    found, detail = set_has(lan4, WAN4)
    table.add(f"{WAN4} in {lan4}", "PASS", found, detail)
    found, detail = set_has(lan4, wan_host)
    table.add(f"{wan_host} (routed, not connected) not in {lan4}", "PASS",
              set_exists(lan4) and not found, detail)  # fmt: skip
    gateways = default_gateways()
    for gateway in gateways:
        lan = set_name(open_project, "lan6" if ":" in gateway else "lan4")
        found, detail = set_has(lan, gateway)
        table.add(f"the host's default gateway {gateway} in {lan}", "PASS", found, detail)
    if not gateways:
        print("(this host has no default gateway: nothing more to check)")
    isolation_current(table, open_project)
    table.check()


#: A LAN that comes up while a sandbox runs (a veth pair on this host, both ends here; no
#: packet is sent to it). A /30 of TEST-NET-3, away from the lab's /32s and the bench's /30.
LATE_LAN = ipaddress.IPv4Network("203.0.113.228/30")
LATE_VETH = ("alab-late0", "alab-late1")


def test_a_lan_that_comes_up_later_is_blocked_within_seconds(open_project: Project) -> None:
    """The daemon keeps the host-LAN sets current: a new directly connected network is in
    them within a few seconds, and leaves them when its interface goes."""
    taken = sh(["ip", "-j", "-4", "route", "show", "table", "all"]).stdout
    assert not any(
        ipaddress.ip_network(r["dst"], strict=False).overlaps(LATE_LAN)
        for r in json.loads(taken or "[]")
        if r.get("dst", "default") != "default"
    ), f"{LATE_LAN} is in use on this host: not used"
    table = TruthTable(f"[{open_project.engine}] a LAN that comes up while the sandbox runs")
    lan4 = set_name(open_project, "lan4")
    probe = str(LATE_LAN.network_address + 2)
    table.add(f"before: {probe} not in {lan4}", "PASS", not set_has(lan4, probe)[0], "")
    host_end, peer_end = LATE_VETH
    try:
        sh(["ip", "link", "add", host_end, "type", "veth", "peer", "name", peer_end])
        sh(["ip", "addr", "add", f"{LATE_LAN.network_address + 1}/30", "dev", host_end])
        sh(["ip", "link", "set", peer_end, "up"])
        sh(["ip", "link", "set", host_end, "up"])
        seen = _within(8.0, lambda: set_has(lan4, probe)[0])
        table.add(f"up: {probe} in {lan4} within 8 s", "PASS", seen, "")
    finally:
        sh(["ip", "link", "del", host_end])
    gone = _within(8.0, lambda: not set_has(lan4, probe)[0])
    table.add(f"down: {probe} out of {lan4} within 8 s", "PASS", gone, "")
    table.check()


def _within(seconds: float, condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.25)
    return condition()


def default_gateways() -> list[str]:
    found = []
    for family in ("-4", "-6"):
        done = sh(["ip", "-j", family, "route", "show", "default"])
        for route in json.loads(done.stdout or "[]"):
            gateway = route.get("gateway", "")
            if gateway and not gateway.startswith("fe80:"):  # link-local: blocked anyway
                found.append(gateway)
    return found


def test_an_empty_egress_blocks_every_name_and_address(open_project: Project) -> None:
    table = TruthTable(f"[{open_project.engine}] egress absent, then egress = []")
    cases = [
        (["resolve", BLOCKED_NAME], "PASS"),
        (["tls", ALLOWED_NAME, ALLOWED_NAME], "PASS"),
        (["tcp", UNLISTED4, 7001], "PASS"),
        (["udp", OTHER4, 7002], "PASS"),
        (["tcp", CIDR4, 7001], "PASS"),
    ]
    rows(table, open_project, cases, prefix="absent: ")  # the positive control
    try:
        apply_config(open_project, [])
        rows(table, open_project, [(c, "BLOCK") for c, _ in cases], prefix="[]: ")
        answer = rows(table, open_project, [(["dns", "resolv", ALLOWED_NAME, "udp"], "PASS")],
                      prefix="[]: ")[0]  # fmt: skip
        rcode = json.loads(answer["detail"]).get("rcode") if answer["ok"] else None
        table.add(f"[]: {ALLOWED_NAME} is NXDOMAIN", "PASS", rcode == 3, str(rcode))
    finally:
        apply_config(open_project, None)
    table.check()


# --- the daemon's lifetime, TTLs and config changes -------------------------------------


def test_ttl_sets_the_timeout_and_an_expired_address_no_longer_connects(
    guarded: Project,
) -> None:
    ttl_min, ttl_max = ttl_bounds(guarded)
    table = TruthTable(f"[{guarded.engine}] TTLs (bounds {ttl_min}..{ttl_max} s)")
    controls(table, [["resolve", SHORT_NAME], ["resolve", LONG_NAME], ["tcp", SHORT4, 7001]])
    rows(table, guarded, [(["resolve", SHORT_NAME], "PASS"), (["resolve", LONG_NAME], "PASS"),
                          (["tcp", SHORT4, 7001], "PASS")])  # fmt: skip
    written = time.monotonic()  # the daemon wrote the elements before this
    ea4 = set_name(guarded, "ea4")
    timeouts = {e["val"]: e["timeout"] for e in set_elements(ea4)}
    expected = {SHORT4: max(ttl_min, SHORT_TTL), LONG4: min(max(ttl_min, LONG_TTL), ttl_max)}
    for address, seconds in expected.items():
        got = timeouts.get(address)
        table.add(f"{address} timeout {seconds} s in {ea4}", "PASS", got == seconds, f"{got}")
    if SHORT4 in timeouts:
        delete_element(ea4, SHORT4)  # what its timeout does when it runs out
    rows(table, guarded, [(["tcp", SHORT4, 7001], "BLOCK")], prefix="expired: ")
    # A real expiry comes at least ttl_min after the write; the daemon does not rewrite an
    # element it wrote less than REFRESH_AFTER ago, so let that much pass since then.
    time.sleep(max(0.0, REFRESH_AFTER - (time.monotonic() - written)))
    rows(table, guarded, [(["resolve", SHORT_NAME], "PASS"), (["tcp", SHORT4, 7001], "PASS")],
         prefix="resolved again: ")  # fmt: skip
    table.check()


def daemon_pid(project: Project) -> int:
    """The project's daemon, by its pid file (`resolver.pid` in the project's state), after
    checking that the command line is this project's daemon."""
    state_dir = alca_state.project_dir(project.ws.alca_home, project.root)
    entry = (project.state().get("isolation") or {}).get("resolver") or {}
    pidfile = Path(entry.get("pidfile") or state_dir / "resolver.pid")
    pid = int(pidfile.read_text().split()[0])
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    assert DAEMON_MODULE in cmdline and str(state_dir) in cmdline, cmdline
    return pid


def live(project: Project) -> bool:
    return bool(set_elements(set_name(project, "live")))


def expired(project: Project) -> bool:
    """The live set is there and empty (a missing set proves nothing)."""
    return set_exists(set_name(project, "live")) and not live(project)


def test_a_killed_daemon_lets_nothing_pass_run_refuses_and_up_repairs(guarded: Project) -> None:
    table = TruthTable(f"[{guarded.engine}] the project's daemon killed")
    cases = [
        (["resolve", ALLOWED_NAME], "PASS"),
        (["tls", CDN4, ALLOWED_NAME], "PASS"),
        (["tcp", CIDR4, 7001], "PASS"),
    ]
    rows(table, guarded, cases, direct=True, prefix="running: ")
    table.add("running: the live element is there", "PASS", live(guarded))
    pid = daemon_pid(guarded)
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not Path(f"/proc/{pid}").exists(), 5)
    gone = wait_for(lambda: expired(guarded), LIVE_TIMEOUT)
    table.add(f"killed: the live element expired within {LIVE_TIMEOUT:.0f} s", "PASS", gone)
    found, detail = set_has(set_name(guarded, "ea4"), CDN4)
    table.add(f"killed: {CDN4} is still in the set (the gate, not the set, blocks)", "PASS",
              found, detail)  # fmt: skip
    rows(table, guarded, [(c, "BLOCK") for c, _ in cases], direct=True, prefix="killed: ")
    run = guarded.alca("run", "sh", "-c", "echo RAN")
    table.add(f"killed: alca run refuses (exit {REFUSED})", "PASS", run.returncode == REFUSED,
              f"exit {run.returncode}: {run.output}")  # fmt: skip
    table.add("killed: alca run ran nothing", "PASS", "RAN" not in run.stdout)
    said = any(w in run.output.lower() for w in ("resolver", "egress", "daemon", "not running"))
    table.add("killed: alca run says why", "PASS", said, run.output)
    names = guarded.status_json().get("names") or {}
    table.add("killed: alca status says stopped", "PASS", names.get("state") == "stopped",
              str(names))  # fmt: skip
    doctor = guarded.alca("doctor")
    table.add("killed: alca doctor says not running", "PASS", "not running" in doctor.stdout,
              doctor.stdout)  # fmt: skip
    up = guarded.alca("up")
    table.add("alca up repairs (exit 0)", "PASS", up.returncode == 0, up.output)
    with_new = wait_for(lambda: live(guarded), 10)
    table.add("repaired: the live element is back", "PASS", with_new)
    rows(table, guarded, cases, prefix="repaired: ")
    table.check()


def test_a_config_change_applies_on_up_after_approval(restore_config: Project) -> None:
    project = restore_config
    table = TruthTable(f"[{project.engine}] adding {WEB_NAME} to egress")
    url = f"https://{WEB_NAME}/hello.txt"
    controls(table, [["resolve", WEB_NAME], ["fetch", f"https://{WEB4}/hello.txt"]])
    cases = [(["resolve", WEB_NAME], "BLOCK"), (["fetch", url], "BLOCK")]
    rows(table, project, cases, prefix="before: ")
    write_config(project, [*EGRESS, WEB_NAME])
    unapproved = project.alca("up")
    table.add("changed, not approved: alca up refuses", "PASS", unapproved.returncode == REFUSED,
              f"exit {unapproved.returncode}: {unapproved.output}")  # fmt: skip
    rows(table, project, [(c, "BLOCK") for c, _ in cases], direct=True, prefix="unapproved: ")
    project.ok("trust", "--yes")
    approved = project.alca("up")
    table.add("approved: alca up", "PASS", approved.returncode == 0, approved.output)
    rows(table, project, [(c, "PASS") for c, _ in cases], prefix="after: ")
    table.check()


def test_net_log_names_the_refused_name_and_net_allow_proposes_it(
    restore_config: Project,
) -> None:
    project = restore_config
    table = TruthTable(f"[{project.engine}] alca net log / alca net allow {BLOCKED_NAME}")
    rows(table, project, [(["resolve", BLOCKED_NAME], "BLOCK")])
    log = project.alca("net", "log")
    print(f"$ alca net log\n{log.stdout}{log.stderr}")
    table.add("net log names the refused name", "PASS",
              log.returncode == 0 and BLOCKED_NAME in log.stdout, log.output)  # fmt: skip
    table.add("net log: the rules are current", "PASS", "Network isolation: enabled" in log.stdout,
              log.stdout.splitlines()[0] if log.stdout else "")  # fmt: skip
    config = project.root / ".alca.toml"
    before = config.read_bytes()
    asked = project.alca("net", "allow", BLOCKED_NAME)
    print(f"$ alca net allow {BLOCKED_NAME}\n{asked.stdout}{asked.stderr}")
    lines = asked.output.splitlines()
    headers = [line for line in lines if line.startswith(("--- ", "+++ ", "@@"))]
    added = [line for line in lines if line.startswith("+") and not line.startswith("+++")]
    table.add("net allow shows a unified diff", "PASS", len(headers) >= 3, "\n".join(headers))
    table.add("the diff adds the name", "PASS",
              any(f'"{BLOCKED_NAME}"' in line for line in added), "\n".join(added))  # fmt: skip
    table.add("not confirmed: the config is unchanged", "PASS", config.read_bytes() == before)
    written = project.alca("net", "allow", BLOCKED_NAME, "-y")
    table.add("net allow -y exits 0", "PASS", written.returncode == 0, written.output)
    old, new = tomllib.loads(before.decode()), tomllib.loads(config.read_text())
    want = {**old, "network": {**old.get("network", {}), "egress": [*EGRESS, BLOCKED_NAME]}}
    table.add("-y wrote exactly the name into egress", "PASS", new == want, json.dumps(new))
    unapproved = project.alca("up")
    table.add("the written change still needs approval on up", "PASS",
              unapproved.returncode == REFUSED, unapproved.output)  # fmt: skip
    table.check()


def test_the_probe_itself_sees_a_block(guarded: Project) -> None:
    """The harness's own negative control: a port nothing listens on reads as BLOCK from
    inside, so PASS rows above are real arrivals, not probe artefacts."""
    results = in_sandbox(guarded, [["tcp", CIDR4, 9], ["tcp", CIDR4, 7001]])
    print(f"\n[{guarded.engine}] probe negative control: {results}")
    assert [r["ok"] for r in results] == [False, True], results
