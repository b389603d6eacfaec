"""Network isolation under faults (issue #4; security test plan §4.6) and the helper
container mechanism.

Each test owns its sandbox (made and removed inside the test), so a fault injected here
never touches another test's sandbox:

* FI-1: the sandbox restarts after another container took its old IP: still isolated (the
  rules follow the bridge, not an address), and the squatter is governed too;
* FI-2: the Docker daemon restarts; the sandbox stays stopped until `alca up`, then is isolated
  (opt-in: it stops the machine's dockerd, see below);
* FI-4: the project's rules deleted by hand (its bridge then fails closed on the base
  chains' backstop), then `table inet alcatraz` itself: `alca run` refuses (77) without
  starting the command, `alca status` says MISSING, the next `alca up` repairs; what the
  sandbox's already-running processes reach while the table is gone is printed;
* FI-7: `alca up` SIGKILLed at each of its external commands: "a running sandbox always
  has its rules loaded and verified" holds at every step, `up` then converges and `down`
  cleans up;
* bugs found on the way, as strict xfails: the project's chains flushed by hand (fail
  open, `alca run` does not notice), an interrupted `up` after a `down`, `down` after an
  interrupted `up` leaving the network and rules, the rules
  persisted for boot without their dispatch maps; and a regression test for `up` when
  another project's network disappears while it lists networks (fixed in 69fe0ef);
* the helper container (`ALCA_FIREWALL=helper`, how Docker Desktop/OrbStack VMs are
  reached) loads the same rules as native nft, and `uninstall` removes it.

Destructive steps check first that no other session's projects are in `inet alcatraz`
(this machine may be shared); when some are, the table deletion falls back to deleting
only this project's rules, and the helper uninstall (which deletes the whole table) skips.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from alcatraz.runtime.cli_compat import CliRuntime
from tests.integration.isolation_helpers import (
    HELPER_NAME,
    REFUSED,
    Outcome,
    Project,
    Workspace,
    backstop_counter,
    backstop_handles,
    chain_rules,
    check_lab,
    count_steps,
    docker_answers,
    dockerd_pids,
    ensure_dockerd,
    foreign_keys,
    helper_workspace,
    network_info,
    nft_table,
    positive_control,
    reduced_cells,
    remove_container,
    remove_rules,
    restart_dockerd,
    run_up_killed_at,
    sh,
    skip_unless_dockerd_restart_opted_in,
    skip_unless_table_is_ours,
    unexpected,
    wait_for,
)
from tests.lab.matrix import (
    DEFAULT,
    E1,
    E1_LAN_ACCESS,
    Cell,
    Expect,
    Verdict,
    discover,
    engine_exec,
    run_matrix,
    tier_b_cells,
)
from tests.lab.topology import Lab

pytestmark = pytest.mark.integration

HELPER_ENV = {
    "ALCA_FIREWALL": "helper",
    "ALCA_HELPER_IMAGE": "alpine:3.21",
    # this VM: --privileged fails (no CAP_SYS_RESOURCE) and PID 1's namespaces cannot be
    # opened, so the helper gets every other capability and enters dockerd's namespaces
    "ALCA_HELPER_PRIVILEGE_ARGS": "--cap-add ALL --cap-drop SYS_RESOURCE "
    "--security-opt seccomp=unconfined",
}


@pytest.fixture
def ws() -> Iterator[Workspace]:
    with helper_workspace("f") as workspace:
        yield workspace


def isolated(project: Project, lab: Lab, *, via: str = "alca", config: str = DEFAULT) -> None:
    """The reduced matrix from the sandbox: private destinations BLOCK-OK, internet OK."""
    report = project.matrix(reduced_cells(tier_b_cells()), config, lab, via=via)
    print(report.table())
    assert not report.failures(), report.explain()
    assert not unexpected(report), "\n".join(unexpected(report))


def sandbox(ws: Workspace, engine: str, name: str, lab: Lab, **config: object) -> Project:
    positive_control(engine, lab)  # never trust a BLOCK verdict on a broken lab
    project = ws.project(engine, f"{engine[0]}{name}", **config)  # type: ignore[arg-type]
    project.up()
    return project


# --- FI-1: restart with the old IP taken ------------------------------------------------


def test_restart_with_old_ip_taken_stays_isolated(
    engine: CliRuntime, lab: Lab, ws: Workspace
) -> None:
    name = engine.executable
    project = sandbox(ws, name, "ip", lab, lan_access=E1_LAN_ACCESS)
    old_ip = discover(project.exec_alca).addrs4[0]
    stop = [name, "stop", *(["-t", "0"] if name == "podman" else []), project.container_name]
    assert sh(stop).returncode == 0
    squatter = f"{project.container_name}-sq"
    project.squatters.append(squatter)
    run = [name, "run", "-d", "--pull=never", "--cap-add", "NET_RAW", "--name", squatter]
    run += ["--network", project.network, "--ip", old_ip]
    started = sh([*run, "alpine:3.21", "sleep", "600"])
    assert started.returncode == 0, started.stderr

    up = ok_up(project)
    assert "Starting stopped container" in up.stdout, up.stdout
    new = discover(project.exec_alca)
    print(f"\n[{name}] sandbox {old_ip} -> {' '.join(new.addrs4)}; squatter on {old_ip}")
    assert old_ip not in new.addrs4
    assert project.status_json()["isolation"]["state"] == "enabled"
    # ALW-11: the E1 exceptions follow the sandbox to its new address; the rest is blocked
    cells = reduced_cells(tier_b_cells()) + [
        c for c in tier_b_cells() if c.id in ("ALW-7", "NET-H2")
    ]
    report = project.matrix(cells, E1, lab, info=new)
    print(report.table())
    assert not report.failures(), report.explain()
    assert not unexpected(report), "\n".join(unexpected(report))

    # the squatter sits on the project's bridge, so the project's rules govern it too
    squat = run_matrix(
        engine_exec(name, squatter),
        cells,
        E1,
        lab=lab,
        counter=project.counter(),
        counter_keys=project.counter_keys,
        parallel=64,
    )
    check_lab(lab)
    print(f"[{name}] the squatter (a plain container on the project network, old IP):")
    print(squat.table())
    assert not squat.failures(), squat.explain()
    assert not unexpected(squat), "\n".join(unexpected(squat))


# --- FI-2: engine daemon restart (Docker) ------------------------------------------------


def test_docker_daemon_restart_leaves_the_sandbox_stopped_until_up(
    engine: CliRuntime, lab: Lab, ws: Workspace
) -> None:
    """The engine never restarts a sandbox by itself (restart policy `no`, decision 0010).

    A dockerd restart would otherwise re-resolve the workspace's sources and start the
    container without the layer inside: it stays stopped, `alca run` refuses without
    running the command, and `alca up` checks the sources and brings it back isolated.
    """
    if engine.executable != "docker":
        pytest.skip("a daemon restart applies to Docker only (Podman has no daemon)")
    skip_unless_dockerd_restart_opted_in()
    positive_control("docker", lab)
    project = ws.project("docker", "ddd")
    project.up(ALCA_TEST_HOST_LAYER_ONLY="")  # both layers, as a user gets them
    marker = project.root / "marker-created-by-the-command"
    restart_dockerd([project.container_name])
    came_back = wait_for(lambda: project.container_state() == "running", 10, step=0.5)
    assert not came_back, "the engine started the sandbox by itself after its restart"
    run = project.alca("run", "sh", "-c", f"touch {marker.name}")
    assert run.returncode == REFUSED, str(run)
    assert "restarted without alcatraz (or is stopped)" in run.stderr, str(run)
    assert not marker.exists(), "the command ran in a sandbox that alcatraz did not start"
    assert project.up().returncode == 0  # the host's table alone, for the matrix below
    assert project.container_state() == "running"
    isolated(project, lab, via="engine")
    ok, detail = project.rules_verified()
    assert ok, detail


# --- FI-4: the rules deleted by hand ------------------------------------------------------


def test_rules_deleted_by_hand_run_refuses_status_missing_up_repairs(
    engine: CliRuntime, lab: Lab, ws: Workspace
) -> None:
    name = engine.executable
    project = sandbox(ws, name, "tbl", lab)
    marker = project.root / "marker-created-by-the-command"
    everything_blocked = {c.key: Expect.BLOCK for c in reduced_cells(tier_b_cells())}

    # A: this project's chains and dispatch gone: its bridge/pool fails closed (backstop),
    # the internet included
    remove_rules(project.key)
    assert not project.chains_loaded()
    handles = backstop_handles()
    closed = project.matrix(
        reduced_cells(tier_b_cells()),
        everything_blocked,
        lab,
        via="engine",
        counter=backstop_counter(),
        counter_keys=lambda cell: list(backstop_counter()()),
    )
    print(f"\n[{name}] project rules deleted, sandbox processes (not alca run):")
    print(closed.table())
    rewritten = backstop_handles() != handles
    for result in closed.results:
        fine = [Verdict.BLOCK_OK] + ([Verdict.BLOCK_UNEXPLAINED] if rewritten else [])
        assert result.verdict in fine, result.describe()
    if rewritten:
        print("NOTE: another session's `up` rewrote the base chains meanwhile (counters reset)")
    refused_and_missing(project, marker)

    # B: the whole table deleted (only when no other session's projects are in it)
    wait_for(lambda: not foreign_keys([project.key]), 5, step=0.5)
    others = foreign_keys([project.key])
    if others:
        print(f"[{name}] table not deleted: other projects are loaded ({sorted(others)})")
    else:
        assert sh(["nft", "delete", "table", "inet", "alcatraz"]).returncode == 0
        assert nft_table() is None
        window = project.matrix(reduced_cells(tier_b_cells()), DEFAULT, lab, via="engine")
        leaks = [r for r in window.results if r.verdict == Verdict.LEAK]
        print(f"[{name}] `nft delete table inet alcatraz`: what processes already running in")
        print(f"the sandbox reach until the next `alca up` ({len(leaks)} leaks, not asserted):")
        print(window.table())
        if nft_table() is not None:
            print("NOTE: another session's `up` recreated the table meanwhile (fail-closed)")
        refused_and_missing(project, marker)

    up = ok_up(project)
    assert "Applying network isolation rules" in up.stdout, up.stdout
    ok, detail = project.rules_verified()
    assert ok, detail
    assert "Network isolation: Enabled on" in project.ok("status").stdout
    isolated(project, lab)
    project.ok("run", "sh", "-c", f"touch {marker.name}")
    assert marker.exists()


def guard_counter(project: Project) -> Callable[[], dict[str, int]]:
    """Drops counted by the guard table in the sandbox's own network namespace."""

    def read() -> dict[str, int]:
        inspect = [project.engine, "inspect", "-f", "{{.State.Pid}}", project.container_name]
        pid = sh(inspect).stdout.strip()
        done = sh(["nsenter", f"--target={pid}", "--net", "nft", "-j", "list", "table", "inet",
                   "alcatraz_guard"])  # fmt: skip
        dropped = 0
        for item in json.loads(done.stdout or "{}").get("nftables", []):
            expr = item.get("rule", {}).get("expr", [])
            if any(isinstance(e, dict) and "drop" in e for e in expr):
                dropped += sum(
                    int(e["counter"]["packets"])
                    for e in expr
                    if isinstance(e, dict) and isinstance(e.get("counter"), dict)
                )
        return {"guard": dropped}

    return read


def test_the_guard_in_the_sandbox_keeps_blocking_when_the_host_table_is_deleted(
    engine: CliRuntime, lab: Lab, ws: Workspace
) -> None:
    """T22: `nft flush ruleset` or a deleted table under a running sandbox. The second layer,
    loaded by `up` into the sandbox's own network namespace, still blocks every private and
    host destination (its own counters explain each block) and lets the internet through."""
    name = engine.executable
    positive_control(name, lab)
    project = ws.project(name, f"{name[0]}grd")
    project.up(ALCA_TEST_HOST_LAYER_ONLY="")
    wait_for(lambda: not foreign_keys([project.key]), 5, step=0.5)
    if foreign_keys([project.key]):
        pytest.skip("other projects' rules are loaded: the shared table cannot be deleted")
    assert sh(["nft", "delete", "table", "inet", "alcatraz"]).returncode == 0
    window = project.matrix(
        reduced_cells(tier_b_cells()),
        DEFAULT,
        lab,
        via="engine",
        counter=guard_counter(project),
        counter_keys=lambda cell: ["guard"],
    )
    print(f"\n[{name}] host table deleted, only the sandbox's own guard left:")
    print(window.table())
    assert not window.failures(), window.explain()
    assert not unexpected(window), "\n".join(unexpected(window))
    # `net log` reads the layer in the sandbox's namespace too.
    log = json.loads(project.ok("net", "log", "--json").stdout)
    assert log["state"] == "missing" and log["blocked"] > 0, log
    assert "192.168.250.2" in [d["address"] for d in log["destinations"]], log
    # The next `up` restores the host's table (the guard is already current).
    ok_up(project, ALCA_TEST_HOST_LAYER_ONLY="")
    ok, detail = project.rules_verified()
    assert ok, detail


def ok_up(project: Project, **env: str) -> Outcome:
    done = project.up_once(**env)
    assert done.returncode == 0, str(done)
    return done


def refused_and_missing(project: Project, marker: Path) -> None:
    """`alca run` refuses (77) without starting the command; status says MISSING."""
    run = project.alca("run", "sh", "-c", f"touch {marker.name}")
    assert run.returncode == REFUSED, str(run)
    assert "network isolation rules are not loaded" in run.stderr, str(run)
    assert not marker.exists(), "the command ran although the rules were missing"
    status = project.ok("status").stdout
    assert "Network isolation: MISSING" in status, status
    assert project.status_json()["isolation"]["state"] == "missing"


def test_project_chains_flushed_by_hand_fail_closed_and_run_refuses(
    engine: CliRuntime, lab: Lab, ws: Workspace
) -> None:
    if engine.executable != "docker":
        pytest.skip("engine-independent; reproduced with Docker")
    project = sandbox(ws, "docker", "flush", lab)
    marker = project.root / "marker-created-by-the-command"
    for chain in (f"p_{project.key}_fwd", f"p_{project.key}_in"):
        assert sh(["nft", "flush", "chain", "inet", "alcatraz", chain]).returncode == 0
    window = project.matrix(reduced_cells(tier_b_cells()), DEFAULT, lab, via="engine")
    print(f"\n[docker] the project's chains flushed (dispatch left):\n{window.table()}")
    run = project.alca("run", "sh", "-c", f"touch {marker.name}")
    status = project.status_json()["isolation"]["state"]
    print(f"{run}\nstatus: {status}")
    assert not [r for r in window.results if r.verdict == Verdict.LEAK], window.explain()
    assert run.returncode == REFUSED and not marker.exists(), str(run)
    assert status == "missing"


# --- FI-7: `alca up` killed at every step -------------------------------------------------


@dataclass
class KillRow:
    n: int
    command: str
    container: str
    rules: str
    holds: bool
    converged: bool
    clean: bool
    detail: str = ""
    known_bug: bool = False  # test_up_after_an_interrupted_up_following_a_down

    def line(self) -> str:
        return (
            f"{self.n:>2} {self.command[:76]:<76} {self.container:<8} {self.rules:<8} "
            f"{'OK' if self.holds else 'BROKEN':<9} {'OK' if self.converged else 'NO':<4} "
            f"{'OK' if self.clean else 'NO'}"
        )


KILL_HEADER = (
    f"{'N':>2} {'SIGKILL when it printed its Nth external command':<76} {'ctr':<8} "
    f"{'rules':<8} {'invariant':<9} {'up':<4} down"
)


KNOWN_UP_CRASH = "AttributeError: 'NoneType' object has no attribute 'get'"


def invariant(project: Project) -> tuple[bool, str, str, str]:
    """(holds, container state, rules state, detail): a running sandbox has its rules."""
    container = project.container_state() or "none"
    ok, detail = project.rules_verified()
    rules = "verified" if ok else ("partial" if project.chains_loaded() else "none")
    return container != "running" or ok, container, rules, detail


def fingerprint(project: Project) -> tuple[object, ...]:
    """Everything a killed `up` may have changed."""
    return (
        project.container_state(),
        network_info(project.engine, project.network) is not None,
        tuple(project.chains_loaded()),
        json.dumps(project.state(), sort_keys=True),
    )


def kill_and_recover(project: Project, n: int, seen: dict[tuple[object, ...], int]) -> KillRow:
    """Kill `up` at step n, check the invariant, then `up` to completion and `down` (done
    once per distinct post-kill state: a kill that changed nothing leaves the same state as
    an earlier one, whose recovery is not repeated)."""
    killed = run_up_killed_at(project, n)
    holds, container, rules, detail = invariant(project)
    command = killed.command if killed.killed else f"(up ended first, exit {killed.returncode})"
    notes = [] if holds else [f"invariant: {detail}"]
    if not killed.killed:
        notes.append(f"up ended before step {n}: {killed.tail.strip()[-300:]}")
    state = fingerprint(project)
    if state in seen:
        earlier = f"N={seen[state]}" if seen[state] else "before the sweep"
        note = f"same state as {earlier}: recovery not repeated"
        return KillRow(n, command, container, rules, holds, True, True, note)
    seen[state] = n
    up = project.up_once()
    verified, why = project.rules_verified()
    converged = up.returncode == 0 and project.container_state() == "running" and verified
    down = project.alca("down")
    clean = (
        down.returncode == 0
        and project.container_state() is None
        and not project.chains_loaded()
        and network_info(project.engine, project.network) is None
    )
    if not converged:
        first = (up.stderr.strip().splitlines() or [""])[-1]
        notes.append(f"up exit {up.returncode}: {first} ({why})")
    if not clean:
        notes.append(f"down: {down}")
    known = KNOWN_UP_CRASH in up.stderr
    return KillRow(n, command, container, rules, holds, converged, clean, "; ".join(notes), known)


def test_up_killed_at_every_step_never_runs_unprotected(
    engine: CliRuntime, lab: Lab, ws: Workspace, record_property: pytest.RecordProperty
) -> None:
    """Invariant at every kill point: if the sandbox container runs, its rules are loaded
    and verified. After each kill `alca down` must clean up everything. Whether the next
    `up` converges is reported too; the one known failure (an interrupted `up` after a
    `down`, see test_up_after_an_interrupted_up_following_a_down) is tolerated here."""
    name = engine.executable
    positive_control(name, lab)
    project = ws.project(name, f"{name[0]}kill")
    project.ok("trust", "--yes")
    reference = project.up_once(ALCA_DEBUG="1")
    assert reference.returncode == 0, str(reference)
    steps = count_steps(reference)
    project.ok("down")
    assert steps and project.container_state() is None and not project.chains_loaded()

    seen: dict[tuple[object, ...], int] = {fingerprint(project): 0}
    rows = [kill_and_recover(project, n, seen) for n in range(1, len(steps) + 1)]
    table = "\n".join([KILL_HEADER, *(r.line() for r in rows)])
    print(f"\n[{name}] alca up SIGKILLed at each of its {len(steps)} steps:\n{table}")
    record_property(f"{name}.kill-table", table)
    for row in rows:
        if row.detail:
            print(f"  N={row.n}: {row.detail}")
    assert all(r.holds for r in rows), "invariant broken:\n" + "\n".join(
        f"N={r.n}: {r.detail}" for r in rows if not r.holds
    )
    assert all(r.clean for r in rows), "down left something:\n" + "\n".join(
        f"N={r.n}: {r.detail}" for r in rows if not r.clean
    )
    unexplained = [r for r in rows if not r.converged and not r.known_bug]
    assert not unexplained, "up did not converge:\n" + "\n".join(
        f"N={r.n}: {r.detail}" for r in unexplained
    )


def test_up_after_an_interrupted_up_following_a_down(engine: CliRuntime, ws: Workspace) -> None:
    if engine.executable != "docker":
        pytest.skip("engine-independent; reproduced with Docker")
    project = ws.project("docker", "dint")
    project.ok("trust", "--yes")
    # The steps of an `up` after a `down`, as the killed one below: the first `up` of a home
    # also asks the engine's facts, which later ones find cached (runtime.engine_facts).
    ok_up(project)
    project.ok("down")
    steps = count_steps(ok_up(project, ALCA_DEBUG="1"))
    project.ok("down")
    start = next(i for i, s in enumerate(steps, 1) if s.startswith("docker start "))
    killed = run_up_killed_at(project, start)  # the container exists, not yet started
    assert killed.killed and project.container_state() in ("created", "running")
    up = project.up_once()
    assert up.returncode == 0, str(up)


def test_down_after_an_interrupted_up_removes_network_and_rules(
    engine: CliRuntime, ws: Workspace
) -> None:
    if engine.executable != "docker":
        pytest.skip("engine-independent; reproduced with Docker")
    project = ws.project("docker", "ddown")
    project.ok("trust", "--yes")
    steps = count_steps(ok_up(project, ALCA_DEBUG="1"))
    project.ok("down")
    loaded = steps.index("nft -f -") + 2  # killed right after the rules were loaded
    killed = run_up_killed_at(project, loaded)
    assert killed.killed and project.chains_loaded(), killed
    assert network_info("docker", project.network) is not None
    down = project.ok("down")
    print(f"\n{down}")
    left = (project.chains_loaded(), network_info("docker", project.network))
    remove_rules(project.key)  # the leftovers, so the workspace's cleanup finds none
    sh(["docker", "network", "rm", project.network])
    assert not left[0], "the rules were left behind"
    assert left[1] is None, "the network was left behind"


# --- the helper container -----------------------------------------------------------------


def helper_env() -> dict[str, str]:
    pids = dockerd_pids()
    assert len(pids) == 1, f"expected one dockerd, found {pids}"
    return {**HELPER_ENV, "ALCA_HELPER_TARGET_PID": str(pids[0])}


@pytest.fixture
def helper_ws(engine: CliRuntime) -> Iterator[Workspace]:
    """A workspace for the helper mechanism. The helper container's name is machine-wide:
    only run when nobody else has one; it is removed (by name) after the projects."""
    if engine.executable != "docker":
        pytest.skip("the helper container mechanism is tested with Docker")
    if sh(["docker", "container", "inspect", HELPER_NAME]).returncode == 0:
        pytest.skip(f"{HELPER_NAME} already exists (another session uses the helper)")
    workspace = Workspace("h")
    workspace.install_helper()
    try:
        yield workspace
    finally:
        problems = workspace.cleanup()  # `alca down` still reaches nft through the helper
        remove_container("docker", HELPER_NAME)
    assert not problems, "\n".join(problems)


def project_rules(key: str) -> dict[str, list[object]]:
    return {suffix: chain_rules(f"p_{key}_{suffix}") for suffix in ("fwd", "in", "nat")}


def _without_dns_mark(rules: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """Chains as `project_rules` reads them, minus the comments and the `socket mark` match."""

    def rule(item: dict[str, Any]) -> dict[str, Any]:
        kept = [e for e in item.get("expr", []) if "socket" not in json.dumps(e)]
        return {**{k: v for k, v in item.items() if k != "comment"}, "expr": kept}

    return {chain: [rule(item) for item in items] for chain, items in rules.items()}


def test_helper_container_applies_the_same_rules_as_native(lab: Lab, helper_ws: Workspace) -> None:
    ws = helper_ws
    positive_control("docker", lab)
    project = ws.project("docker", "dhelp", lan_access=E1_LAN_ACCESS, proxy="${alca:HOST_IP}:18888")
    project.ok("trust", "--yes")
    ok_up(project)  # native nft first
    native = project_rules(project.key)
    project.ok("down")
    assert not project.chains_loaded()

    env = helper_env()
    install = ws.alca("network-helper", "install", "--yes", **env)
    assert install.returncode == 0, str(install)
    running = sh(["docker", "inspect", "--format", "{{.State.Running}}", HELPER_NAME])
    assert running.stdout.strip() == "true", running

    up = ok_up(project, **env)  # the same project and config, through the helper
    assert "Network isolation enabled" in up.stdout, up.stdout
    record = project.state()["isolation"]
    assert record["nft"][:4] == ["docker", "exec", "-i", HELPER_NAME], record
    ok, detail = project.rules_verified()  # read from the kernel by the test, natively
    assert ok, detail
    helper = project_rules(project.key)
    # Natively, alcatraz's own daemon serves the gateway's DNS port and the rules accept it
    # only for the daemon's marked sockets; through the helper the engine's resolver does,
    # unmarked (and the digest in the comments differs accordingly). Nothing else may.
    assert _without_dns_mark(helper) == _without_dns_mark(native), (
        "the helper loaded other rules than native nft"
    )
    assert "socket" in json.dumps(native["in"]) and "socket" not in json.dumps(helper["in"])
    saved = (ws.alca_home / "nft" / "alcatraz.nft").read_text()
    assert f"chain p_{project.key}_fwd" in saved

    # `alca run` checks the rules through the helper; internet TCP goes to the (absent)
    # proxy, so it is refused there: never direct
    def expected(cell: Cell) -> Expect:
        proxied = cell.dest == "203.0.113.10" and cell.proto == "tcp"
        return Expect.BLOCK if proxied else cell.expected(E1)

    report = project.matrix(reduced_cells(tier_b_cells()), expected, lab)
    print(report.table())
    assert not report.failures(), report.explain()
    assert not unexpected(report), "\n".join(unexpected(report))
    status = project.ok("network-helper", "status", **env).stdout
    print(f"\n$ alca network-helper status  (ALCA_FIREWALL=helper)\n{status}")
    assert "Installed: Yes" in status and "Rules applied: Yes" in status
    assert f"helper container {HELPER_NAME}" in status
    assert f"- {project.key}: bridge {project.interface()}" in status

    project.ok("down", **env)
    assert not project.chains_loaded()


def test_helper_uninstall_removes_the_container_and_the_rules(helper_ws: Workspace) -> None:
    ws = helper_ws
    skip_unless_table_is_ours([], "`network-helper uninstall` (it deletes the whole table)")
    env = helper_env()
    install = ws.alca("network-helper", "install", "--yes", **env)
    assert install.returncode == 0, str(install)
    assert sh(["docker", "container", "inspect", HELPER_NAME]).returncode == 0
    skip_unless_table_is_ours([], "`network-helper uninstall` (it deletes the whole table)")
    done = ws.alca("network-helper", "uninstall", "--yes", **env)
    print(f"\n{done}")
    assert done.returncode == 0, str(done)
    assert sh(["docker", "container", "inspect", HELPER_NAME]).returncode != 0
    assert nft_table() is None
    status = ws.alca("network-helper", "status", **env)
    assert "Installed: No" in status.stdout and "Rules applied: No" in status.stdout


# --- persistence and concurrency ------------------------------------------------------------


def test_persisted_rules_restore_the_dispatch_at_boot(
    engine: CliRuntime, lab: Lab, ws: Workspace
) -> None:
    """Boot simulated in a scratch network namespace (nothing on the host is touched):
    `nft -f` of the nftables.conf alcatraz wrote, as nftables.service does at boot."""
    if engine.executable != "docker":
        pytest.skip("engine-independent; checked with Docker")
    project = sandbox(ws, "docker", "boot", lab)
    interface = project.interface()
    assert ws.nft_conf.exists() and (ws.nft_dir / "alcatraz.nft").exists()
    netns = f"aiso-boot-{os.getpid()}"
    assert sh(["ip", "netns", "add", netns]).returncode == 0
    try:
        loaded = sh(["ip", "netns", "exec", netns, "nft", "-f", str(ws.nft_conf)])
        assert loaded.returncode == 0, loaded.stderr
        maps = sh(["ip", "netns", "exec", netns, "nft", "list", "maps", "inet"]).stdout
        chain_name = f"p_{project.key}_fwd"
        chain = sh(
            ["ip", "netns", "exec", netns, "nft", "list", "chain", "inet", "alcatraz", chain_name]
        )
    finally:
        sh(["ip", "netns", "del", netns])
    assert chain.returncode == 0, "the project's chain was not restored"
    assert f'"{interface}" : jump p_{project.key}_fwd' in maps, maps


def test_up_tolerates_a_network_removed_while_it_lists_networks(
    engine: CliRuntime, ws: Workspace, tmp_path: Path
) -> None:
    """A network listed by `network ls` is gone when `network inspect` runs (another
    project's `down` in between): `up` must carry on (found by this module, fixed in
    69fe0ef)."""
    if engine.executable != "docker":
        pytest.skip("engine-independent; checked with Docker")
    real = shutil.which("docker")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(
        "#!/bin/sh\n"
        'if [ "$1 $2 $3 $4" = "network ls --format {{.Name}}" ]; then\n'
        f'  {real} "$@" && echo aiso-removed-meanwhile; exit\n'
        "fi\n"
        f'exec {real} "$@"\n'
    )
    (bin_dir / "docker").chmod(0o755)
    project = ws.project("docker", "dnet")
    project.ok("trust", "--yes")
    # The CLI's listing is what is under test (the API lists networks in one request).
    up = project.alca("up", PATH=f"{bin_dir}:{os.environ['PATH']}", ALCA_ENGINE_API="cli")
    print(f"\n{up}")
    assert up.returncode == 0, str(up)


def test_dockerd_is_running_at_the_end() -> None:
    """Whatever happened above, leave the machine with its Docker daemon answering."""
    if not dockerd_pids() and not docker_answers():
        pytest.skip("no Docker on this machine")
    ensure_dockerd()
    assert docker_answers()
