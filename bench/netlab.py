"""The throughput lab: a "remote host" in a network namespace, and 199 dummy projects' rules.

Safety first, because this runs on a developer's machine:

- the lab host lives in namespace `alcabench-lab`, reached through the veth pair
  `abench-h`/`abench-n` (10.97.232.0/30, private: the veth's subnet is directly connected
  to the host, which sandboxes may not reach), its service address 203.0.113.234 (TEST-NET-3,
  RFC 5737) on the namespace's loopback, routed as a /32 through the veth so that it is the
  "internet" to a sandbox. Before anything is created both prefixes are checked against
  every route and address of the host;
  a blackhole route with a high metric keeps lab traffic on this machine even if the veth
  disappears mid-run, and every packet path is verified with `ip route get` first;
- the dummy projects are loaded into the live `inet alcatraz` table with alcatraz's own
  renderer (`nft.apply_script`), keyed `bench00001`... with bridges `alcabench-001`... that
  do not exist; removal (`nft.removal_script`) deletes exactly those keys and interfaces,
  so real projects' rules are never touched and the ruleset is never flushed;
- the lab server is the only process started here, and is stopped by its pid.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from alcatraz.config.netgrammar import parse_lan_access
from alcatraz.network import nft as render
from alcatraz.network.firewall import TableState, parse_table
from alcatraz.network.plan import Policy, ProjectNetwork

NAMESPACE = "alcabench-lab"
VETH_HOST, VETH_NS = "abench-h", "abench-n"
PREFIX = ipaddress.IPv4Network("203.0.113.232/30")  # kept to the blackhole safety route
LINK = ipaddress.IPv4Network("10.97.232.0/30")
HOST_ADDR, PEER_ADDR, LAB_ADDR = "10.97.232.1", "10.97.232.2", "203.0.113.234"
BLACKHOLE_METRIC = 4000
PORT = 18700  # echo; +1 bulk; +2 control
SERVER = Path(__file__).with_name("labserver.py")

DUMMY_KEY = "bench{:05d}"
DUMMY_IFNAME = "alcabench-{:03d}"
DUMMY_OBJECT_RE = re.compile(r"^p_(bench\d{5})_(?:fwd|in|nat|seen4|seen6)$")
DUMMY_IFNAME_RE = re.compile(r"^alcabench-\d{3}$")


class LabError(RuntimeError):
    """The lab cannot be built safely, or did not come down cleanly."""


def sh(argv: list[str], *, check: bool = True, stdin: str | None = None) -> str:
    proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=60)
    if check and proc.returncode != 0:
        raise LabError(f"`{' '.join(argv)}` failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def _host_prefixes() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    found: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for route in json.loads(sh(["ip", "-j", "-4", "route", "show", "table", "all"]) or "[]"):
        dst = route.get("dst", "")
        if dst and dst != "default" and route.get("dev") != VETH_HOST:
            if route.get("type") == "blackhole" and dst == str(PREFIX):
                continue  # our own safety net from an earlier run
            found.append(ipaddress.ip_network(dst, strict=False))
    for link in json.loads(sh(["ip", "-j", "-4", "addr"]) or "[]"):
        if link.get("ifname") == VETH_HOST:
            continue
        for info in link.get("addr_info", []):
            found.append(ipaddress.ip_network(f"{info['local']}/{info['prefixlen']}", strict=False))
    return found


@dataclass
class Lab:
    """Namespace, veth pair, routes and the server process; `close()` undoes all of it."""

    python: str = sys.executable
    #: The lab host also answers DNS (bench/egress.py: names for `network.egress`).
    dns: bool = False
    server: subprocess.Popen[str] | None = None
    created: list[str] = field(default_factory=list)

    def open(self) -> None:
        self.sweep()
        clash = [str(p) for p in _host_prefixes() if p.overlaps(PREFIX) or p.overlaps(LINK)]
        if clash:
            raise LabError(
                f"{PREFIX} or {LINK} overlaps this host's routes/addresses {clash}: not used"
            )
        sh(["ip", "netns", "add", NAMESPACE])
        self.created.append("netns")
        sh(["ip", "link", "add", VETH_HOST, "type", "veth", "peer", "name", VETH_NS])
        self.created.append("veth")
        sh(["ip", "route", "add", "blackhole", str(PREFIX), "metric", str(BLACKHOLE_METRIC)])
        self.created.append("blackhole")
        sh(["ip", "link", "set", VETH_NS, "netns", NAMESPACE])
        sh(["ip", "addr", "add", f"{HOST_ADDR}/{LINK.prefixlen}", "dev", VETH_HOST])
        sh(["ip", "link", "set", VETH_HOST, "up"])
        ns = ["ip", "-n", NAMESPACE]
        sh([*ns, "addr", "add", f"{PEER_ADDR}/{LINK.prefixlen}", "dev", VETH_NS])
        sh([*ns, "addr", "add", f"{LAB_ADDR}/32", "dev", "lo"])
        sh([*ns, "link", "set", VETH_NS, "up"])
        sh([*ns, "link", "set", "lo", "up"])
        sh(["ip", "route", "add", f"{LAB_ADDR}/32", "via", PEER_ADDR, "dev", VETH_HOST])
        # Un-NATed sources (none expected: both engines masquerade) still find their way back.
        sh([*ns, "route", "add", "10.0.0.0/8", "via", HOST_ADDR])
        self.check_path()
        self.server = subprocess.Popen(
            [
                "ip", "netns", "exec", NAMESPACE, self.python, str(SERVER),
                "--bind", LAB_ADDR, "--port", str(PORT), *(["--dns"] if self.dns else []),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )  # fmt: skip
        assert self.server.stdout is not None
        if self.server.stdout.readline().strip() != "ready":
            raise LabError("the lab server did not start")

    def check_path(self) -> None:
        """Refuse to send anything unless the lab address is routed into the veth."""
        route = sh(["ip", "-j", "route", "get", LAB_ADDR])
        devices = {r.get("dev") for r in json.loads(route)}
        if devices != {VETH_HOST}:
            raise LabError(f"{LAB_ADDR} is not routed through {VETH_HOST} ({route.strip()})")

    def control(self, command: str) -> dict[str, list[object]]:
        self.check_path()
        with socket.create_connection((LAB_ADDR, PORT + 2), timeout=10) as conn:
            conn.sendall(command.encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = conn.recv(1 << 20)
                if not chunk:
                    break
                data += chunk
        result: dict[str, list[object]] = json.loads(data or b"{}")
        return result

    def close(self) -> list[str]:
        """Stop the server (by pid) and remove what `open` created; returns problems."""
        problems: list[str] = []
        if self.server is not None and self.server.poll() is None:
            # `ip netns exec` execs the interpreter, so this pid is the server itself.
            os.kill(self.server.pid, signal.SIGTERM)
            try:
                self.server.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(self.server.pid, signal.SIGKILL)
                self.server.wait(timeout=5)
        self.server = None
        problems += self.sweep()
        self.created.clear()
        return problems

    @staticmethod
    def sweep() -> list[str]:
        """Remove this harness's lab objects, recognised by their fixed names."""
        problems: list[str] = []
        links = {link["ifname"] for link in json.loads(sh(["ip", "-j", "link"]) or "[]")}
        if VETH_HOST in links:
            sh(["ip", "link", "del", VETH_HOST], check=False)
        if NAMESPACE in sh(["ip", "netns", "list"]).split():
            sh(["ip", "netns", "del", NAMESPACE], check=False)
        routes = json.loads(sh(["ip", "-j", "-4", "route", "show", "table", "all"]) or "[]")
        for route in routes:
            if route.get("type") == "blackhole" and route.get("dst") == str(PREFIX):
                sh(["ip", "route", "del", "blackhole", str(PREFIX), "metric",
                    str(BLACKHOLE_METRIC)], check=False)  # fmt: skip
        links = {link["ifname"] for link in json.loads(sh(["ip", "-j", "link"]) or "[]")}
        if VETH_HOST in links:
            problems.append(f"veth {VETH_HOST} still exists")
        if NAMESPACE in sh(["ip", "netns", "list"]).split():
            problems.append(f"namespace {NAMESPACE} still exists")
        return problems


# --- 199 dummy projects in the live table ------------------------------------------------


def read_table(nft: list[str]) -> TableState:
    return parse_table(json.loads(sh([*nft, "-j", "list", "table", "inet", "alcatraz"])))


def dummy_policies(count: int) -> list[Policy]:
    """`count` synthetic projects, a quarter of them with a few lan-access exceptions."""
    _, rules = parse_lan_access(["192.168.1.10:8000-8100", "udp://10.77.0.2:17000", "10.1.0.0/16"])
    policies: list[Policy] = []
    for index in range(1, count + 1):
        name = DUMMY_IFNAME.format(index)
        subnet = ipaddress.IPv4Network(f"198.18.{index}.0/24")  # RFC 2544 range, inert
        network = ProjectNetwork(name, name, subnet, next(subnet.hosts()))
        extra = rules if index % 4 == 0 else ()
        policies.append(Policy(DUMMY_KEY.format(index), network, False, extra, None))
    return policies


def load_dummies(count: int, nft: list[str], chunk: int = 50) -> float:
    """Load `count` dummy projects with `nft.apply_script`; returns the seconds it took."""
    policies = dummy_policies(count)
    started = time.perf_counter()
    for first in range(0, len(policies), chunk):
        existing = read_table(nft).interfaces()
        script = "".join(render.apply_script(p, existing) for p in policies[first : first + chunk])
        sh([*nft, "-f", "-"], stdin=script)
    return time.perf_counter() - started


def _dummy_keys(table: TableState) -> list[str]:
    return sorted({m.group(1) for c in table.chains if (m := DUMMY_OBJECT_RE.match(c))})


def _dummy_interfaces(table: TableState) -> set[str]:
    return {i for names in table.interfaces().values() for i in names if DUMMY_IFNAME_RE.match(i)}


def remove_dummies(nft: list[str]) -> int:
    """Remove every dummy key and interface (and nothing else); returns how many keys."""
    table = read_table(nft)
    if not table.exists:
        return 0
    existing, chains = table.interfaces(), table.chains
    keys = _dummy_keys(table)
    interfaces = _dummy_interfaces(table)
    script = ""
    for key in keys:
        own = DUMMY_IFNAME.format(int(key[len("bench") :]))
        script += render.removal_script(key, [own] if own in interfaces else [], existing, chains)
        interfaces.discard(own)
    if interfaces:  # dispatch entries whose chains are already gone
        script += render.removal_script("bench-none", sorted(interfaces), existing, chains)
    if script:
        sh([*nft, "-f", "-"], stdin=script)
    after = read_table(nft)
    left = _dummy_keys(after) + sorted(_dummy_interfaces(after))
    if left:
        raise LabError(f"dummy rules left behind: {left[:5]}")
    return len(keys)


def dummy_count(nft: list[str]) -> int:
    return len(_dummy_keys(read_table(nft)))
