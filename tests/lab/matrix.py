"""Probe cells, verdicts and truth tables (security test plan §4.2-§4.4, Tier B).

    report = run_matrix(exec_in_sandbox, tier_b_cells(), DEFAULT, counter=nft_counters())
    print(report.table())
    assert not report.failures(), report.explain()

`exec_in_sandbox(argv)` runs `argv` inside the sandbox and returns anything with
`returncode`, `stdout` and `stderr` (a `subprocess.CompletedProcess` will do): for a plain
container `engine_exec("docker", name)`, for alca e.g.
`lambda argv: subprocess.run(["alca", "run", "--", *argv], cwd=project, ...)`.

Verdict per cell (the token logs are authoritative; the client's view is only a hint):

* LEAK: the cell's token (or a token-less connection/datagram to the cell's destination
  during the run) reached a lab server at any place that is not allowed; for an allowed
  cell, anywhere other than its own destination. Also when the metadata canary string
  shows up in the sandbox's output of a blocked cell.
* ALLOW-OK: allowed and received at its destination.
* FALSE-BLOCK: allowed and not received.
* BLOCK-OK / BLOCK-UNEXPLAINED: blocked, nothing arrived, and the caller's drop counters
  did / did not move. BLOCK when no counter reader was given.
* NO-ROUTE: an IPv6 cell from a sandbox without IPv6 (or a gateway cell without a
  gateway), nothing arrived: recorded, not a failure.
* UNSENDABLE: the client could not even send (EACCES: broadcast without SO_BROADCAST, ping
  without NET_RAW), nothing arrived: recorded, not a failure, proves nothing either way.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Protocol

from tests.lab import probe as probes
from tests.lab.topology import HOST_LISTEN, WAN4, WAN6, Lab, active_lab, wait_not_tentative


class Expect(StrEnum):
    ALLOW = "allow"
    BLOCK = "block"


class Verdict(StrEnum):
    ALLOW_OK = "ALLOW-OK"
    BLOCK_OK = "BLOCK-OK"
    BLOCK = "BLOCK"
    BLOCK_UNEXPLAINED = "BLOCK-UNEXPLAINED"
    LEAK = "LEAK"
    FALSE_BLOCK = "FALSE-BLOCK"
    NO_ROUTE = "NO-ROUTE"
    UNSENDABLE = "UNSENDABLE"


SYMBOL: Mapping[Verdict, str] = {
    Verdict.ALLOW_OK: ".",
    Verdict.BLOCK_OK: "X",
    Verdict.BLOCK: "X",
    Verdict.BLOCK_UNEXPLAINED: "u",
    Verdict.LEAK: "!",
    Verdict.FALSE_BLOCK: "?",
    Verdict.NO_ROUTE: "~",
    Verdict.UNSENDABLE: "-",
}
LEGEND = (
    ". allowed+arrived   X blocked   ! LEAK   ? FALSE-BLOCK   u blocked, no alca counter moved"
    "   ~ no route (no IPv6/gateway)   - unsendable by the probe tool"
)
FAILING = frozenset({Verdict.LEAK, Verdict.FALSE_BLOCK, Verdict.BLOCK_UNEXPLAINED})

#: destination placeholders resolved from the sandbox (its default gateways)
GATEWAY = "{gateway}"
GATEWAY6 = "{gateway6}"

#: configurations the cells carry expectations for
DEFAULT = "default"  # lan-access = [], no proxy (§4.3)
E1 = "E1"  # §4.4 config E1
OPEN = "open"  # positive control: a plain container must reach every cell

E1_LAN_ACCESS = [
    "192.168.250.2:18080",
    "udp://10.77.0.2:17000",
    "*://[fd00:250::2]:18080",
    "tcp://10.77.0.0/24:18081",
    "${alca:HOST_IP}:19001",
]
"""The `lan-access` of config E1 (§4.4), for the isolation tests' .alca.toml."""


@dataclass(frozen=True)
class Cell:
    """One probe: destination, protocol/port, and the expected result per config."""

    id: str  # plan row, e.g. "NET-L1"
    dest: str  # literal address, or GATEWAY / GATEWAY6
    proto: str  # tcp | udp | icmp | dns
    port: int | None = None
    expect: Mapping[str, Expect] = field(default_factory=lambda: {DEFAULT: Expect.BLOCK})
    refs: tuple[str, ...] = ()  # other plan rows this cell also covers (e.g. ALW-1)
    qname: str | None = None  # dns cells: the name to ask for (probe.HOSTNAME by default)
    canary: bool = False  # the destination answers with the lab's metadata canary
    note: str = ""

    @property
    def column(self) -> str:
        return self.proto if self.port is None else f"{self.proto}/{self.port}"

    @property
    def key(self) -> str:
        return f"{self.id} {self.dest} {self.column}"

    def expected(self, config: str) -> Expect:
        if config == OPEN:
            return Expect.ALLOW
        return self.expect.get(config, self.expect[DEFAULT])


ExpectedSpec = str | Mapping[str, Expect] | Callable[[Cell], Expect]


def _cell(
    id_: str,
    dest: str,
    proto: str,
    port: int | None = None,
    *,
    default: Expect = Expect.BLOCK,
    e1: Expect | None = None,
    refs: tuple[str, ...] = (),
    **extra: Any,
) -> Cell:
    expect = {DEFAULT: default, E1: e1 or default}
    return Cell(id_, dest, proto, port, expect, refs, **extra)


def tier_b_cells(*, dns_gateway: bool = False) -> list[Cell]:
    """The §4.3 rows that apply to Tier B, plus the destinations §4.4 (E1) needs.

    `dns_gateway`: add DNS-5 (the engine's resolver on the gateway :53, i.e. a Podman
    network with dns_enabled), expected ALLOW in every config.
    """
    a = Expect.ALLOW
    lan, v1, host, wan, wan6 = (
        "192.168.250.2",
        "fd00:250::2",
        "192.168.250.1",
        "203.0.113.10",
        "2001:db8:100::10",
    )
    cells = [
        _cell("NET-L1", lan, "tcp", 18080, e1=a, refs=("ALW-1",)),
        _cell("NET-L1", lan, "tcp", 18081, refs=("ALW-2",)),
        _cell("NET-L1", lan, "udp", 17000),
        _cell("NET-L1", lan, "udp", 18080, refs=("ALW-2",)),
        _cell("NET-L1", lan, "icmp", refs=("ALW-2",)),
        _cell("NET-L2", "10.77.0.2", "tcp", 18080),
        _cell("NET-L2", "10.77.0.2", "udp", 17000, e1=a, refs=("ALW-3",)),
        _cell("ALW-4", "10.77.0.2", "tcp", 17000),
        _cell("ALW-7", "10.77.0.2", "tcp", 18081, e1=a),
        _cell("ALW-7", "10.77.1.2", "tcp", 18081, note="CIDR edge of 10.77.0.0/24"),
        _cell("NET-L2", "172.31.250.2", "tcp", 18080),
        _cell("NET-L2", "172.31.250.2", "udp", 17000),
        _cell("NET-V1", v1, "tcp", 18080, e1=a, refs=("ALW-5",)),
        _cell("NET-V1", v1, "udp", 18080, e1=a, refs=("ALW-5",)),
        _cell("ALW-6", v1, "tcp", 18081),
        _cell("NET-V1", v1, "udp", 17000),
        _cell("NET-V1", "fc00::2", "tcp", 18080),
        _cell("NET-V1", "fc00::2", "udp", 17000),
        _cell("NET-V2", "fd7a:115c:a1e0::53", "udp", 53),
        _cell("NET-M1", "169.254.169.254", "tcp", 80, canary=True),
        _cell("NET-M2", "169.254.250.2", "tcp", 18080),
        _cell("NET-M2", "169.254.250.2", "udp", 17000),
        _cell("NET-M4", "100.100.100.200", "tcp", 80, canary=True),
        _cell("NET-C1", "100.64.0.2", "tcp", 18080),
        _cell("NET-C1", "100.64.0.2", "udp", 53),
        _cell("NET-C1", "100.100.100.100", "tcp", 18080),
        _cell("NET-C1", "100.100.100.100", "udp", 53),
        _cell("NET-R1", "198.18.0.2", "tcp", 18080, note="policy: alca blocks 198.18.0.0/15"),
        _cell("NET-R1", "192.0.0.170", "tcp", 18080, note="policy: alca blocks 192.0.0.0/24"),
        _cell("NET-H1", GATEWAY, "tcp", 19000, refs=("ALW-8",)),
        _cell("NET-H2", GATEWAY, "tcp", 19001, e1=a, refs=("ALW-8",)),
        _cell("NET-H3", GATEWAY, "udp", 19004),
        _cell("NET-H5", host, "tcp", 19000),
        _cell("ALW-8", host, "tcp", 19001, note="host LAN IP, the port E1 opens on the gateway"),
        _cell("NET-H5", host, "tcp", 19002),
        _cell("NET-H6", "198.51.100.1", "tcp", 19000),
        _cell("NET-H6", "198.51.100.1", "tcp", 19005),
        *_directly_connected_lan_cells(),
        _cell("NET-B1", "255.255.255.255", "udp", 19004, note="busybox cannot send: EACCES"),
        _cell("NET-B1", "255.255.255.255", "icmp"),
        _cell("NET-W1", wan, "tcp", 80, default=a),
        _cell("NET-W1", wan, "tcp", 443, default=a),
        _cell("NET-W1", wan, "tcp", 18080, default=a),
        _cell("NET-W1", wan, "udp", 443, default=a),
        _cell("NET-W1", wan, "udp", 17000, default=a),
        _cell("NET-W1", wan, "icmp", default=a),
        _cell("NET-W2", wan6, "tcp", 18080, default=a),
        _cell("NET-W2", wan6, "udp", 17000, default=a),
        _cell("NET-W2", wan6, "icmp", default=a),
    ]
    if dns_gateway:
        cells.append(_cell("DNS-5", GATEWAY, "dns", 53, default=a, qname=probes.HOSTNAME))
    return cells


#: the lab's directly connected LAN on non-private space (`alab-wan0`, 198.51.100.0/24 and
#: 2001:db8:ff::/64): the host reaches its neighbours there without a gateway, so it is LAN
#: whatever its range (issue 15), while the "internet" routed behind it stays reachable
LAN5_NOTE = "NET-L5 directly connected non-private LAN"


def _directly_connected_lan_cells() -> list[Cell]:
    """NET-L5: the WAN router's own addresses (`WAN4`/`WAN6`, services on every address of
    `alab-wan`, see WAN_LISTEN), BLOCK unless lan-access allows "*" (the OPEN config)."""
    return [
        _cell("NET-L5", dest, proto, port, note=LAN5_NOTE)
        for dest, proto, port in (
            (WAN4, "tcp", 18080),
            (WAN4, "udp", 17000),
            (WAN4, "icmp", None),
            (WAN6, "tcp", 18080),
            (WAN6, "udp", 17000),
        )
    ]


# --- the sandbox side -------------------------------------------------------------------


class Result(Protocol):
    returncode: int
    stdout: str
    stderr: str


ExecInSandbox = Callable[[list[str]], Result]
CounterReader = Callable[[], Mapping[str, int]]


def engine_exec(engine: str, container: str, timeout: float = 120) -> ExecInSandbox:
    """`exec_in_sandbox` for a plain container: `<engine> exec <container> argv...`."""

    def run(argv: list[str]) -> Result:
        return subprocess.run(
            [engine, "exec", container, *argv], capture_output=True, text=True, timeout=timeout
        )

    return run


@dataclass(frozen=True)
class SandboxInfo:
    gateway4: str | None
    gateway6: str | None
    addrs4: tuple[str, ...]
    addrs6: tuple[str, ...]
    hostname: str
    uid: str

    @property
    def has_v6(self) -> bool:
        return bool(self.addrs6)

    def describe(self) -> str:
        addrs = " ".join([*self.addrs4, *self.addrs6]) or "no address"
        gateways = " / ".join(g for g in (self.gateway4, self.gateway6) if g) or "-"
        return f"sandbox {addrs}, gw {gateways}, IPv6: {'yes' if self.has_v6 else 'no'}"


def discover(exec_in_sandbox: ExecInSandbox) -> SandboxInfo:
    """The sandbox's gateways, addresses and host name (one exec)."""
    result = exec_in_sandbox(["sh", "-c", probes.discovery_script()])
    values: dict[str, str] = {}
    for line in result.stdout.splitlines():
        if line.startswith("@@"):
            key, _, value = line[2:].partition(" ")
            values[key] = value.strip()
    if "GW4" not in values:
        raise RuntimeError(f"sandbox discovery failed ({result.returncode}): {result.stderr}")

    def addrs(key: str) -> tuple[str, ...]:
        return tuple(a.split("/")[0] for a in values.get(key, "").split())

    return SandboxInfo(
        gateway4=values.get("GW4") or None,
        gateway6=values.get("GW6") or None,
        addrs4=addrs("ADDR4"),
        addrs6=addrs("ADDR6"),
        hostname=values.get("HOST", ""),
        uid=values.get("UID", ""),
    )


# --- results ----------------------------------------------------------------------------


@dataclass
class CellResult:
    cell: Cell
    address: str | None  # the resolved destination
    expect: Expect
    verdict: Verdict
    token: str
    client: probes.ClientResult | None
    arrivals: list[dict[str, Any]]  # log records at the cell's own destination
    leaks: list[dict[str, Any]]  # log records where the token should not have been
    detail: str = ""

    def describe(self) -> str:
        client = self.client
        seen = f"client {client.status} (rc {client.returncode})" if client else "not probed"
        where = ", ".join(f"{r['server']}:{r['local']}:{r['lport']}" for r in self.leaks)
        return (
            f"{self.cell.key} -> {self.address}: {self.verdict} (expected {self.expect}); "
            f"{seen}; arrivals {len(self.arrivals)}"
            + (f"; LEAKED TO {where}" if where else "")
            + (f"; {self.detail}" if self.detail else "")
        )


@dataclass
class Report:
    config: str
    info: SandboxInfo
    results: list[CellResult]
    run_id: str
    probe_seconds: float
    total_seconds: float
    counter_delta: dict[str, int] | None
    exec_returncode: int
    exec_stderr: str
    evidence: Evidence | None = None

    def rejudge(
        self,
        expected: ExpectedSpec,
        counter_keys: Callable[[Cell], Iterable[str]] | None = None,
    ) -> Report:
        """The same observations judged against other expectations (no new probes)."""
        assert self.evidence is not None
        return replace(
            self,
            config=expected if isinstance(expected, str) else "custom",
            results=judge(self.evidence, expected, counter_keys),
        )

    def failures(self) -> list[CellResult]:
        return [r for r in self.results if r.verdict in FAILING]

    def by_verdict(self) -> dict[Verdict, int]:
        counts: dict[Verdict, int] = {}
        for r in self.results:
            counts[r.verdict] = counts.get(r.verdict, 0) + 1
        return counts

    def explain(self) -> str:
        """Every cell that failed, one per line (for assertion messages)."""
        return "\n".join(r.describe() for r in self.failures()) or "no failures"

    def table(self) -> str:
        """The truth table: rows are destinations, columns proto/port (see LEGEND)."""
        counts = " ".join(f"{v}={n}" for v, n in sorted(self.by_verdict().items()))
        lines = [
            f"alab matrix: config={self.config}, {self.info.describe()}, "
            f"{len(self.results)} cells, probes {self.probe_seconds:.1f} s "
            f"(total {self.total_seconds:.1f} s); {counts}"
        ]
        lines += grid([(r.address or r.cell.dest, r.cell, SYMBOL[r.verdict]) for r in self.results])
        lines.append("legend: " + LEGEND)
        notable = [r for r in self.results if r.verdict not in (Verdict.ALLOW_OK, Verdict.BLOCK_OK)]
        if notable:
            lines.append("cells that are not plain ALLOW-OK/BLOCK-OK:")
            lines += [f"  {r.describe()}" for r in notable]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "run_id": self.run_id,
            "sandbox": self.info.__dict__,
            "probe_seconds": self.probe_seconds,
            "counter_delta": self.counter_delta,
            "cells": [
                {
                    "id": r.cell.id,
                    "refs": list(r.cell.refs),
                    "dest": r.address,
                    "column": r.cell.column,
                    "expect": str(r.expect),
                    "verdict": str(r.verdict),
                    "client": r.client.status if r.client else None,
                    "arrivals": r.arrivals,
                    "leaks": r.leaks,
                }
                for r in self.results
            ],
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True)


def grid(entries: Sequence[tuple[str, Cell, str]]) -> list[str]:
    """Rows of (destination, cell, mark) laid out as destination x proto/port."""
    rows: dict[str, list[tuple[Cell, str]]] = {}
    for dest, cell, mark in entries:
        rows.setdefault(dest, []).append((cell, mark))
    order = {"tcp": 0, "udp": 1, "icmp": 2, "dns": 3}
    columns = sorted(
        {cell.column for _, cell, _ in entries},
        key=lambda c: (order.get(c.split("/")[0], 9), int(c.split("/")[1]) if "/" in c else 0),
    )
    labels = {
        dest: " ".join(dict.fromkeys(x for cell, _ in cs for x in (cell.id, *cell.refs)))
        for dest, cs in rows.items()
    }
    width = max(len(d) + 1 + len(labels[d]) for d in rows) + 2
    widths = [len(c) + 1 for c in columns]
    lines = [
        "destination".ljust(width)
        + "".join(c.rjust(w) for c, w in zip(columns, widths, strict=True))
    ]
    for dest, cs in rows.items():
        marks = {cell.column: mark for cell, mark in cs}
        cells = "".join(marks.get(c, "").rjust(w) for c, w in zip(columns, widths, strict=True))
        lines.append(f"{dest} {labels[dest]}".ljust(width) + cells)
    return lines


def expectation_table(cells: Sequence[Cell], config: str) -> str:
    """What `config` expects of each cell (`.` ALLOW, `X` BLOCK), as a grid."""
    marks = [(c.dest, c, "." if c.expected(config) == Expect.ALLOW else "X") for c in cells]
    return "\n".join([f"expected for config={config}:", *grid(marks)])


# --- running ----------------------------------------------------------------------------


def _expectation(expected: ExpectedSpec, cell: Cell) -> Expect:
    if isinstance(expected, str):
        return cell.expected(expected)
    if callable(expected):
        return expected(cell)
    return expected.get(cell.key, cell.expected(DEFAULT))


def _resolve(cell: Cell, info: SandboxInfo) -> str | None:
    if cell.dest == GATEWAY:
        return info.gateway4
    if cell.dest == GATEWAY6:
        return info.gateway6
    return str(ipaddress.ip_address(cell.dest))


def _same_address(a: str, b: str) -> bool:
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return False


def _at(record: Mapping[str, Any], proto: str, address: str, port: int | None) -> bool:
    return (
        record.get("proto") == proto
        and _same_address(str(record.get("local")), address)
        and int(record.get("lport", 0)) == (port or 0)
    )


def _gateway_listeners(lab: Lab, cells: Iterable[tuple[Cell, str | None]]) -> None:
    """Bind lab listeners for gateway cells that no wildcard host service covers."""
    wildcard = {(p, n) for p, a, n, _ in HOST_LISTEN if a in ("0.0.0.0", "::")}  # noqa: S104
    for cell, address in cells:
        gateway = cell.dest in (GATEWAY, GATEWAY6) and address is not None
        ours = cell.proto in ("tcp", "udp") and cell.port is not None
        if gateway and ours and (cell.proto, cell.port) not in wildcard:
            lab.bind_on(str(address), int(cell.port or 0), cell.proto)


@dataclass
class Evidence:
    """Everything a run observed; `judge` turns it into verdicts for any expectation."""

    cells: list[tuple[Cell, str | None]]  # with the resolved destination
    tokens: dict[int, str]
    clients: dict[int, probes.ClientResult]
    by_token: dict[str, list[dict[str, Any]]]
    tokenless: list[dict[str, Any]]  # arrivals without a token during the run
    counter_delta: dict[str, int] | None
    canary: str
    info: SandboxInfo


def judge(
    evidence: Evidence,
    expected: ExpectedSpec,
    counter_keys: Callable[[Cell], Iterable[str]] | None = None,
) -> list[CellResult]:
    """The verdict of every cell (see the module docstring)."""
    results: list[CellResult] = []
    delta = evidence.counter_delta
    for index, (cell, address) in enumerate(evidence.cells):
        expect = _expectation(expected, cell)
        client = evidence.clients.get(index)
        token = evidence.tokens[index]
        if address is None:
            results.append(
                CellResult(cell, None, expect, Verdict.NO_ROUTE, token, None, [], [], "no gateway")
            )
            continue
        seen = list(evidence.by_token.get(token, []))
        seen += [r for r in evidence.tokenless if _at(r, cell.proto, address, cell.port)]
        at_dest = [r for r in seen if _at(r, cell.proto, address, cell.port)]
        elsewhere = [r for r in seen if r not in at_dest]
        arrived = bool(at_dest)
        detail = ""
        if cell.proto == "dns":  # a resolver that is not ours: the client's answer decides
            arrived = client is not None and client.status == "replied"
        if cell.canary and client is not None and evidence.canary in client.output:
            detail = "metadata canary in the sandbox's output"
            arrived = True
        leaks = elsewhere if expect == Expect.ALLOW else seen
        if expect == Expect.BLOCK and arrived and not leaks:
            leaks = [{"server": "client", "local": address, "lport": cell.port or 0}]
        if leaks:
            verdict = Verdict.LEAK
        elif expect == Expect.ALLOW and arrived:
            verdict = Verdict.ALLOW_OK
        elif client is not None and client.status == "eacces":
            verdict = Verdict.UNSENDABLE
        elif ":" in address and not evidence.info.has_v6:
            verdict = Verdict.NO_ROUTE
        elif expect == Expect.ALLOW:
            verdict = Verdict.FALSE_BLOCK
        elif delta is None:
            verdict = Verdict.BLOCK
        else:
            keys = list(counter_keys(cell)) if counter_keys else list(delta)
            moved = any(delta.get(k, 0) > 0 for k in keys)
            verdict = Verdict.BLOCK_OK if moved else Verdict.BLOCK_UNEXPLAINED
        results.append(
            CellResult(cell, address, expect, verdict, token, client, at_dest, leaks, detail)
        )
    return results


def run_matrix(
    exec_in_sandbox: ExecInSandbox,
    cells: Sequence[Cell],
    expected: ExpectedSpec,
    *,
    lab: Lab | None = None,
    info: SandboxInfo | None = None,
    counter: CounterReader | None = None,
    counter_keys: Callable[[Cell], Iterable[str]] | None = None,
    timeout: float = 2.0,
    parallel: int = 16,
    grace: float = 0.4,
) -> Report:
    """Probe every cell from inside the sandbox and decide its verdict from the lab logs.

    expected: a config name (DEFAULT, E1, OPEN), a mapping `Cell.key -> Expect`, or a
        function of the cell.
    info: the sandbox's addresses (`discover(exec_in_sandbox)` when not given).
    counter: optional drop-counter reader (name -> packets), read before and after the
        probes; a blocked cell is BLOCK-OK only if a counter moved: any counter, or, when
        `counter_keys(cell)` is given, one of the names it returns. Probes run in parallel,
        so the attribution is per run, not per packet (use one cell per call to be exact).
    Gateway cells on ports no wildcard host service covers (NET-H2 :19001) get a listener
    bound to the sandbox's gateway (`Lab.bind_on`) automatically.
    """
    lab = lab or active_lab()
    started = time.monotonic()
    info = info or discover(exec_in_sandbox)
    run_id = secrets.token_hex(4)
    pattern = secrets.choice(range(0x11, 0xEF))
    resolved = [(cell, _resolve(cell, info)) for cell in cells]
    _gateway_listeners(lab, resolved)
    if info.gateway6:  # a fresh IPv6 bridge: wait for its gateway address to pass DAD
        wait_not_tentative([info.gateway6])

    jobs: list[probes.Probe] = []
    tokens: dict[int, str] = {}
    for index, (cell, address) in enumerate(resolved):
        size = 100 + index if cell.proto == "icmp" else 0
        tokens[index] = f"icmp-{pattern:02x}-{size}" if size else f"alab-{run_id}-{index:03d}"
        if address is not None:
            jobs.append(
                probes.Probe(
                    index=index,
                    proto=cell.proto,
                    address=address,
                    port=cell.port,
                    token=tokens[index],
                    cell=cell.id,
                    qname=cell.qname,
                    icmp_size=size,
                    icmp_pattern=pattern,
                )
            )

    before = dict(counter()) if counter else None
    window_start = time.time()
    probe_started = time.monotonic()
    result = exec_in_sandbox(["sh", "-c", probes.script(jobs, timeout=timeout, parallel=parallel)])
    probe_seconds = time.monotonic() - probe_started
    time.sleep(grace)
    window_end = time.time()
    records = lab.records()
    after = dict(counter()) if counter else None
    delta = None
    if before is not None and after is not None:
        delta = {k: after.get(k, 0) - before.get(k, 0) for k in sorted(set(before) | set(after))}

    by_token: dict[str, list[dict[str, Any]]] = {}
    tokenless: list[dict[str, Any]] = []
    for record in records:
        if not window_start - 1 <= float(record.get("t", 0)) <= window_end:
            continue
        found = record.get("tokens") or []
        for token in found:
            by_token.setdefault(token, []).append(record)
        if not found and record.get("proto") in ("tcp", "udp"):
            tokenless.append(record)
    evidence = Evidence(
        cells=resolved,
        tokens=tokens,
        clients=probes.parse(result.stdout, jobs),
        by_token=by_token,
        tokenless=tokenless,
        counter_delta=delta,
        canary=lab.canary,
        info=info,
    )
    return Report(
        config=expected if isinstance(expected, str) else "custom",
        info=info,
        results=judge(evidence, expected, counter_keys),
        run_id=run_id,
        probe_seconds=probe_seconds,
        total_seconds=time.monotonic() - started,
        counter_delta=delta,
        exec_returncode=result.returncode,
        exec_stderr=result.stderr,
        evidence=evidence,
    )


# --- nft counters -----------------------------------------------------------------------


def nft_counters(
    table: str = "alcatraz", family: str = "inet", netns: str | None = None
) -> CounterReader:
    """A counter reader for `run_matrix`: packets per counted rule of one nft table.

    Names are `<chain>:<comment>` (or `<chain>:#<handle>` for rules without a comment),
    plus `counter:<name>` for named counter objects. A missing table reads as {}.
    """

    def read() -> dict[str, int]:
        argv = (["ip", "netns", "exec", netns] if netns else []) + [
            "nft",
            "-j",
            "list",
            "table",
            family,
            table,
        ]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        if proc.returncode != 0:
            return {}
        counts: dict[str, int] = {}
        for item in json.loads(proc.stdout).get("nftables", []):
            if "rule" in item:
                rule = item["rule"]
                packets = sum(
                    int(expr["counter"].get("packets", 0))
                    for expr in rule.get("expr", [])
                    if isinstance(expr, dict) and isinstance(expr.get("counter"), dict)
                )
                name = rule.get("comment") or f"#{rule.get('handle')}"
                key = f"{rule.get('chain')}:{name}"
                counts[key] = counts.get(key, 0) + packets
            elif "counter" in item:
                counts[f"counter:{item['counter']['name']}"] = int(item["counter"]["packets"])
        return counts

    return read
