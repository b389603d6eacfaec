"""The Tier B test lab: "LAN", "internet" and "metadata" hosts as network namespaces.

Everything the lab's hosts receive was routed by this machine and never leaves it:

    root netns (the engines, the "laptop")             alab-lan (LAN host + metadata)
      alab-lan0 192.168.250.1/24 fd00:250::1/64 ─veth─ alab-lan1 192.168.250.2/24 fd00:250::2/64
                                                         lo: 10.77.0.2 10.77.1.2 172.31.250.2
                                                             100.64.0.2 100.100.100.100
                                                             100.100.100.200 169.254.169.254
                                                             169.254.250.2 198.18.0.2
                                                             192.0.0.170 fc00::2
                                                             fd7a:115c:a1e0::53
      alab-wan0 198.51.100.1/24 2001:db8:ff::1/64 ─veth─ alab-wan1 198.51.100.254/24
                                                         2001:db8:ff::254/64 (the "internet")
                                                         lo: 203.0.113.10 2001:db8:100::10

The host gets one /32 or /128 route per extra address, via the namespace's veth address.
Link-local destinations (169.254.0.0/16) are routed through a policy table that only
applies to forwarded packets (`ip rule ... iif lo lookup main` first), so the machine's
own metadata traffic, if any, keeps its usual path. The namespaces have NO default route:
replies to masqueraded container traffic go to the host-side veth address (directly
connected); un-NATed sources (Docker IPv6 networks) need `Lab.add_return_route(prefix)`.

Services: see `LAN_LISTEN`, `WAN_LISTEN` and `HOST_LISTEN`; `Lab.bind_on(address, port)`
adds a listener bound only to one address (e.g. a project network's gateway).

Safety: before anything is created, every lab prefix is checked against every route (all
tables) and address of the host; an overlap raises `LabError` (a test ERROR, never a
skip). Leftovers of a crashed run are recognised by name (`alab-` namespaces, the four
veth names, rule preference `RULE_PREF`, table `TABLE`) and by the pid file in
`STATE_DIR`; processes are only ever killed by pid after checking their command line.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import secrets
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

PREFIX = "alab-"
NS_LAN = "alab-lan"
NS_WAN = "alab-wan"
LAN_VETH_HOST, LAN_VETH_NS = "alab-lan0", "alab-lan1"
WAN_VETH_HOST, WAN_VETH_NS = "alab-wan0", "alab-wan1"
VETHS = (LAN_VETH_HOST, LAN_VETH_NS, WAN_VETH_HOST, WAN_VETH_NS)
NAMESPACES = (NS_LAN, NS_WAN)
#: the only nft table the lab itself ever loads (a stand-in firewall for harness self-tests)
NFT_TABLE = "alab-fw"

STATE_DIR = Path("/run/alab-lab")
STATE_FILE = STATE_DIR / "state.json"
SERVERS_PY = Path(__file__).with_name("servers.py")

#: policy routing for link-local lab destinations (forwarded traffic only)
RULE_PREF = 25077
TABLE = 25077
LINK_LOCAL = ipaddress.ip_network("169.254.0.0/16")

# --- address plan -----------------------------------------------------------------------

LAN_HOST4, LAN4, LAN_NET4 = "192.168.250.1", "192.168.250.2", "192.168.250.0/24"
LAN_HOST6, LAN6, LAN_NET6 = "fd00:250::1", "fd00:250::2", "fd00:250::/64"
LAN_EXTRA4 = (
    "10.77.0.2",
    "10.77.1.2",
    "172.31.250.2",
    "100.64.0.2",
    "100.100.100.100",  # Tailscale MagicDNS
    "100.100.100.200",  # Alibaba metadata
    "169.254.169.254",  # metadata canary (HTTP :80)
    "169.254.250.2",
    "198.18.0.2",
    "192.0.0.170",
)
LAN_EXTRA6 = ("fc00::2", "fd7a:115c:a1e0::53")
WAN_HOST4, WAN4, WAN_NET4 = "198.51.100.1", "198.51.100.254", "198.51.100.0/24"
WAN_HOST6, WAN6, WAN_NET6 = "2001:db8:ff::1", "2001:db8:ff::254", "2001:db8:ff::/64"
WAN_EXTRA4 = ("203.0.113.10",)
WAN_EXTRA6 = ("2001:db8:100::10",)


def lab_prefixes() -> list[IPNetwork]:
    """Every prefix the lab puts on the host (checked for overlaps before use)."""
    nets = [LAN_NET4, LAN_NET6, WAN_NET4, WAN_NET6]
    hosts = [*LAN_EXTRA4, *LAN_EXTRA6, *WAN_EXTRA4, *WAN_EXTRA6]
    return [ipaddress.ip_network(n) for n in nets] + [ipaddress.ip_network(h) for h in hosts]


# --- services ---------------------------------------------------------------------------

Listen = tuple[str, str, int, str]  # proto, address, port, mode

HOST_PORTS = range(19000, 19011)


def _dual(proto: str, port: int, mode: str = "echo") -> list[Listen]:
    return [(proto, "0.0.0.0", port, mode), (proto, "::", port, mode)]  # noqa: S104


LAN_LISTEN: list[Listen] = [
    *_dual("tcp", 18080),
    *_dual("tcp", 18081),
    *_dual("tcp", 17000),
    *_dual("tcp", 80, "http"),
    *_dual("udp", 17000),
    *_dual("udp", 18080),
    *_dual("udp", 53),
]
WAN_LISTEN: list[Listen] = [
    *_dual("tcp", 80, "http"),
    *_dual("tcp", 443),
    *_dual("tcp", 18080),
    *_dual("udp", 443),
    *_dual("udp", 17000),
]
HOST_LISTEN: list[Listen] = [
    *_dual("tcp", 19000),
    ("tcp", LAN_HOST4, 19001, "echo"),  # the host's LAN IP, same port as the gateway service
    ("tcp", LAN_HOST4, 19002, "echo"),  # LAN-IP-only service (NET-H5)
    ("tcp", WAN_HOST4, 19005, "echo"),  # WAN-IP-only service (NET-H6)
    *_dual("udp", 19004),
]


class LabError(RuntimeError):
    """The lab cannot be built safely or torn down completely."""


# --- small helpers ----------------------------------------------------------------------


def run(argv: Sequence[str], *, check: bool = True, stdin: str | None = None) -> str:
    proc = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, timeout=30)
    if check and proc.returncode != 0:
        raise LabError(f"`{' '.join(argv)}` failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def ip_json(*args: str, netns: str | None = None) -> list[dict[str, Any]]:
    argv = ["ip", "-j"] + (["-n", netns] if netns else []) + list(args)
    out = run(argv).strip()
    data: list[dict[str, Any]] = json.loads(out) if out else []
    return data


def ip_batch(lines: Iterable[str], netns: str | None = None) -> None:
    argv = ["ip"] + (["-n", netns] if netns else []) + ["-batch", "-"]
    run(argv, stdin="\n".join(lines) + "\n")


def read_sysctl(name: str) -> str:
    return Path("/proc/sys", *name.split(".")).read_text().strip()


def write_sysctl(name: str, value: str) -> None:
    Path("/proc/sys", *name.split(".")).write_text(value + "\n")


def netns_list() -> list[str]:
    return [line.split()[0] for line in run(["ip", "netns", "list"]).splitlines() if line.strip()]


def host_networks() -> list[tuple[IPNetwork, str]]:
    """Every route destination (all tables, both families) and address prefix on the host,
    with a description; default routes are left out (they overlap everything)."""
    found: list[tuple[IPNetwork, str]] = []
    for family in ("-4", "-6"):
        for route in ip_json(family, "route", "show", "table", "all"):
            dst = route.get("dst", "")
            if dst in ("default", "") or route.get("type") == "multicast":
                continue
            with contextlib.suppress(ValueError):
                net = ipaddress.ip_network(dst, strict=False)
                where = (
                    f"route {dst} dev {route.get('dev', '?')} table {route.get('table', 'main')}"
                )
                found.append((net, where))
    for link in ip_json("addr"):
        for info in link.get("addr_info", []):
            with contextlib.suppress(ValueError, KeyError):
                iface = ipaddress.ip_interface(f"{info['local']}/{info['prefixlen']}")
                found.append((iface.network, f"address {iface} on {link['ifname']}"))
    return found


def overlaps(prefixes: Iterable[IPNetwork]) -> list[str]:
    """Descriptions of host routes/addresses that overlap any of `prefixes`."""
    problems: list[str] = []
    existing = host_networks()
    for prefix in prefixes:
        for net, where in existing:
            if net.version == prefix.version and net.overlaps(prefix):
                problems.append(f"{prefix} overlaps {where}")
    return problems


def ports_in_use(ports: Iterable[int]) -> list[str]:
    """Sockets of the root namespace already bound to any of `ports` (TCP or UDP, v4/v6)."""
    wanted = set(ports)
    busy: list[str] = []
    for table in ("tcp", "tcp6", "udp", "udp6"):
        path = Path("/proc/net") / table
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            port = int(fields[1].rsplit(":", 1)[1], 16)
            # TCP: listeners only (TIME_WAIT of a closed lab connection is harmless)
            if port in wanted and (table.startswith("udp") or fields[3] == "0A"):
                busy.append(f"{table} port {port}")
    return sorted(set(busy))


def pid_cmdline(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


def is_our_server(pid: int) -> bool:
    return str(SERVERS_PY) in pid_cmdline(pid)


def kill_pid(pid: int, proc: subprocess.Popen[str] | None = None) -> None:
    """SIGTERM one process we started, then SIGKILL it if it does not go in 3 s."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        if proc is not None:
            if proc.poll() is not None:
                return
        elif not Path(f"/proc/{pid}").exists() or _is_zombie(pid):
            return
        time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    if proc is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=3)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except (OSError, IndexError):
        return True


# --- servers ----------------------------------------------------------------------------


@dataclass
class Server:
    """One running `servers.py` process (a lab host's services)."""

    name: str
    netns: str | None
    log: Path
    listen: list[Listen]
    proc: subprocess.Popen[str] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            kill_pid(self.proc.pid, self.proc)
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()


@dataclass
class Lab:
    """The lab: build with `setup()`, remove with `teardown()` (both idempotent)."""

    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="alab-")))
    canary: str = field(default_factory=lambda: "ALAB-METADATA-CANARY-" + secrets.token_hex(8))
    servers: list[Server] = field(default_factory=list)
    extra: dict[tuple[str, str, int], Server] = field(default_factory=dict)
    return_routes: list[str] = field(default_factory=list)
    up: bool = False
    setup_seconds: float = 0.0
    _sysctl_saved: dict[str, str] = field(default_factory=dict)

    # -- lifecycle --

    def setup(self) -> None:
        if self.up:
            return
        started = time.monotonic()
        self.workdir.mkdir(parents=True, exist_ok=True)
        problems = cleanup_leftovers()
        if problems:
            raise LabError("cannot clean up a previous lab run:\n  " + "\n  ".join(problems))
        self.preflight()
        global _ACTIVE
        _ACTIVE = self
        try:
            self._save_state()
            self._build_network()
            self._enable_forwarding()
            self._start_services()
            self.up = True
            self._check_routes()
        except BaseException:
            errors = self.teardown()
            if errors:
                print("alab: teardown after failed set-up:\n  " + "\n  ".join(errors))
            raise
        self.setup_seconds = time.monotonic() - started

    def ensure_up(self) -> Lab:
        if not self.up:
            self.setup()
        return self

    def preflight(self) -> None:
        """Refuse to build the lab if it could touch anything that is not ours."""
        if os.geteuid() != 0:
            raise LabError("the lab needs root (network namespaces, routes, raw sockets)")
        problems = overlaps(lab_prefixes())
        if problems:
            raise LabError(
                "ABORT: the lab's test prefixes overlap this host's routes/addresses, so "
                "lab traffic could reach a real network:\n  " + "\n  ".join(problems)
            )
        busy = ports_in_use(HOST_PORTS)
        if busy:
            raise LabError("ABORT: lab host ports are already in use: " + ", ".join(busy))
        table = run(["ip", "route", "show", "table", str(TABLE)], check=False).strip()
        table6 = run(["ip", "-6", "route", "show", "table", str(TABLE)], check=False).strip()
        if table or table6:
            raise LabError(f"ABORT: routing table {TABLE} is not empty:\n{table}\n{table6}")
        rules = [r for r in ip_json("rule") if r.get("priority") in (RULE_PREF - 1, RULE_PREF)]
        if rules:
            raise LabError(f"ABORT: ip rules with preference {RULE_PREF - 1}/{RULE_PREF} exist")

    def teardown(self) -> list[str]:
        """Remove everything the lab created; returns the problems (empty when clean)."""
        errors: list[str] = []
        for server in [*self.extra.values(), *self.servers]:
            try:
                server.stop()
            except Exception as exc:
                errors.append(f"stop {server.name}: {exc}")
        self.extra.clear()
        self.servers.clear()
        errors += _remove_network()
        try:
            remove_firewall()
        except LabError as exc:
            errors.append(str(exc))
        errors += self._restore_sysctls()
        with contextlib.suppress(FileNotFoundError):
            STATE_FILE.unlink()
        with contextlib.suppress(OSError):
            STATE_DIR.rmdir()
        self.return_routes.clear()
        self.up = False
        global _ACTIVE
        if _ACTIVE is self:
            _ACTIVE = None
        return errors

    # -- building --

    def _build_network(self) -> None:
        for ns in NAMESPACES:
            run(["ip", "netns", "add", ns])
        host = [
            f"link add {LAN_VETH_HOST} type veth peer name {LAN_VETH_NS} netns {NS_LAN}",
            f"link add {WAN_VETH_HOST} type veth peer name {WAN_VETH_NS} netns {NS_WAN}",
            f"addr add {LAN_HOST4}/24 dev {LAN_VETH_HOST}",
            f"addr add {LAN_HOST6}/64 dev {LAN_VETH_HOST} nodad",
            f"addr add {WAN_HOST4}/24 dev {WAN_VETH_HOST}",
            f"addr add {WAN_HOST6}/64 dev {WAN_VETH_HOST} nodad",
            f"link set {LAN_VETH_HOST} up",
            f"link set {WAN_VETH_HOST} up",
        ]
        ip_batch(host)
        lan = [
            "link set lo up",
            f"addr add {LAN4}/24 dev {LAN_VETH_NS}",
            f"addr add {LAN6}/64 dev {LAN_VETH_NS} nodad",
            f"link set {LAN_VETH_NS} up",
            *(f"addr add {a}/32 dev lo" for a in LAN_EXTRA4),
            *(f"addr add {a}/128 dev lo" for a in LAN_EXTRA6),
        ]
        ip_batch(lan, NS_LAN)
        wan = [
            "link set lo up",
            f"addr add {WAN4}/24 dev {WAN_VETH_NS}",
            f"addr add {WAN6}/64 dev {WAN_VETH_NS} nodad",
            f"link set {WAN_VETH_NS} up",
            *(f"addr add {a}/32 dev lo" for a in WAN_EXTRA4),
            *(f"addr add {a}/128 dev lo" for a in WAN_EXTRA6),
        ]
        ip_batch(wan, NS_WAN)
        routes: list[str] = []
        for address in LAN_EXTRA4:
            if ipaddress.ip_address(address) in LINK_LOCAL:
                routes.append(
                    f"route add {address}/32 via {LAN4} dev {LAN_VETH_HOST} table {TABLE}"
                )
            else:
                routes.append(f"route add {address}/32 via {LAN4} dev {LAN_VETH_HOST}")
        routes += [f"route add {a}/128 via {LAN6} dev {LAN_VETH_HOST}" for a in LAN_EXTRA6]
        routes += [f"route add {a}/32 via {WAN4} dev {WAN_VETH_HOST}" for a in WAN_EXTRA4]
        routes += [f"route add {a}/128 via {WAN6} dev {WAN_VETH_HOST}" for a in WAN_EXTRA6]
        # forwarded packets to 169.254/16 use the lab table; the host's own keep `main`
        routes += [
            f"rule add pref {RULE_PREF - 1} iif lo to {LINK_LOCAL} lookup main",
            f"rule add pref {RULE_PREF} to {LINK_LOCAL} lookup {TABLE}",
        ]
        ip_batch(routes)

    def _enable_forwarding(self) -> None:
        for name in ("net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"):
            if read_sysctl(name) != "1":
                self._sysctl_saved[name] = read_sysctl(name)
                self._save_state()
                write_sysctl(name, "1")

    def _restore_sysctls(self) -> list[str]:
        errors: list[str] = []
        for name, value in self._sysctl_saved.items():
            try:
                if read_sysctl(name) != value:
                    write_sysctl(name, value)
            except OSError as exc:
                errors.append(f"restore {name}={value}: {exc}")
        self._sysctl_saved.clear()
        return errors

    def _start_services(self) -> None:
        specs = [
            Server("lan", NS_LAN, self.workdir / "lan.jsonl", LAN_LISTEN),
            Server("wan", NS_WAN, self.workdir / "wan.jsonl", WAN_LISTEN),
            Server("host", None, self.workdir / "host.jsonl", HOST_LISTEN),
        ]
        for server in specs:
            self._start(server, banner=self.canary if server.name == "lan" else "ALAB-WAN-HTTP")
            self.servers.append(server)
        for server in specs:
            self._wait_ready(server)

    def _start(self, server: Server, *, banner: str, freebind: bool = False) -> None:
        spec = {
            "name": server.name,
            "log": str(server.log),
            "listen": server.listen,
            "icmp": server.name in ("lan", "wan", "host"),
            "banner": banner,
            "freebind": freebind,
        }
        spec_path = self.workdir / f"{server.name}.spec.json"
        spec_path.write_text(json.dumps(spec))
        server.log.touch()
        prefix = ["ip", "netns", "exec", server.netns] if server.netns else []
        argv = [*prefix, sys.executable, str(SERVERS_PY), "--spec", str(spec_path)]
        err = (self.workdir / f"{server.name}.stderr").open("w")
        server.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=err, text=True, start_new_session=True
        )
        err.close()
        self._save_state()

    def _wait_ready(self, server: Server, timeout: float = 10.0) -> None:
        proc = server.proc
        assert proc is not None and proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        line = proc.stdout.readline() if ready else ""
        if not line.startswith("READY"):
            proc.poll()
            stderr = (self.workdir / f"{server.name}.stderr").read_text().strip()
            raise LabError(f"lab server {server.name} did not start: {stderr or line!r}")

    def _check_routes(self) -> None:
        """Every lab destination must be routed to a lab veth, never to eth0 or a default."""
        wrong: list[str] = []
        lan = [(a, LAN_VETH_HOST, WAN_VETH_HOST) for a in (LAN4, *LAN_EXTRA4)]
        lan += [(a, LAN_VETH_HOST, WAN_VETH_HOST) for a in (LAN6, *LAN_EXTRA6)]
        wan = [(a, WAN_VETH_HOST, LAN_VETH_HOST) for a in (WAN4, *WAN_EXTRA4)]
        wan += [(a, WAN_VETH_HOST, LAN_VETH_HOST) for a in (WAN6, *WAN_EXTRA6)]
        for address, dev, other in lan + wan:
            v6 = ":" in address
            peer = {LAN_VETH_HOST: LAN6 if v6 else LAN4, WAN_VETH_HOST: WAN6 if v6 else WAN4}
            # a forwarded packet (as if it came in on the other lab veth)
            got = ip_json("route", "get", address, "from", peer[other], "iif", other)
            if not got or got[0].get("dev") != dev:
                wrong.append(f"forwarded to {address}: {got}")
            # the host's own packets: lab route, except link-local (keeps its usual path)
            own = ip_json("route", "get", address)
            own_dev = own[0].get("dev") if own else None
            link_local = not v6 and ipaddress.ip_address(address) in LINK_LOCAL
            if (own_dev == dev) == link_local:
                wrong.append(f"host's own packets to {address}: {own}")
        for ns in NAMESPACES:
            for family in ("-4", "-6"):
                if any(r.get("dst") == "default" for r in ip_json(family, "route", netns=ns)):
                    wrong.append(f"{ns} has a default route")
        if wrong:
            raise LabError("lab routing is not as planned:\n  " + "\n  ".join(wrong))

    def _save_state(self) -> None:
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        pids = [s.pid for s in [*self.servers, *self.extra.values()] if s.proc is not None]
        state = {
            "owner": os.getpid(),
            "pids": pids,
            "sysctl": self._sysctl_saved,
            "workdir": str(self.workdir),
        }
        STATE_FILE.write_text(json.dumps(state))

    # -- API for tests --

    def bind_on(
        self, address: str, port: int, proto: str = "tcp", *, netns: str | None = None
    ) -> Server:
        """A token-logging listener bound ONLY to `address:port` (e.g. a network's gateway).

        Uses IP_FREEBIND, so it may be called before the address exists (Podman creates
        its bridge with the first container). Idempotent; stopped by `teardown()`.
        """
        ipaddress.ip_address(address)  # refuse anything that is not a literal address
        key = (proto, address, port)
        if key in self.extra and self.extra[key].alive():
            return self.extra[key]
        if netns is None:
            wildcard = "::" if ":" in address else "0.0.0.0"  # noqa: S104
            served = {(p, a, n) for p, a, n, _ in HOST_LISTEN}
            if key in served or (proto, wildcard, port) in served:
                raise LabError(f"{proto} {address}:{port} is already served by the lab")
        name = f"bind-{proto}-{address.replace(':', '_')}-{port}"
        server = Server(
            name, netns, self.workdir / f"{name}.jsonl", [(proto, address, port, "echo")]
        )
        self._start(server, banner="ALAB-BIND", freebind=True)
        self.extra[key] = server
        self._save_state()
        self._wait_ready(server)
        return server

    def add_return_route(self, prefix: str) -> None:
        """Route `prefix` (a container network that is not masqueraded, e.g. Docker IPv6)
        from the lab namespaces back to the host. Removed with the namespaces."""
        net = ipaddress.ip_network(prefix)
        if str(net) in self.return_routes:
            return
        lan_gw, wan_gw = (LAN_HOST6, WAN_HOST6) if net.version == 6 else (LAN_HOST4, WAN_HOST4)
        ip_batch([f"route replace {net} via {lan_gw}"], NS_LAN)
        ip_batch([f"route replace {net} via {wan_gw}"], NS_WAN)
        self.return_routes.append(str(net))

    def records(self) -> list[dict[str, Any]]:
        """Every arrival logged by every lab server so far."""
        out: list[dict[str, Any]] = []
        for path in sorted(self.workdir.glob("*.jsonl")):
            for line in path.read_text().splitlines():
                with contextlib.suppress(ValueError):
                    out.append(json.loads(line))
        return out

    def dead_servers(self) -> list[str]:
        return [s.name for s in [*self.servers, *self.extra.values()] if not s.alive()]


_ACTIVE: Lab | None = None


def active_lab() -> Lab:
    if _ACTIVE is None or not _ACTIVE.up:
        raise LabError("no lab is up (use the `lab` fixture)")
    return _ACTIVE


def wait_not_tentative(addresses: Iterable[str], timeout: float = 8.0) -> float:
    """Wait until none of `addresses` is a tentative (DAD pending) IPv6 address on the host.

    A fresh IPv6 bridge keeps its gateway address tentative for ~2-3 s after the first
    container starts; until then the host does not answer neighbour solicitations for it
    and the sandbox's first IPv6 packets time out. Returns the seconds waited.
    """
    wanted = {str(ipaddress.ip_address(a)) for a in addresses if a and ":" in a}
    started = time.monotonic()
    while wanted:
        tentative = {
            str(ipaddress.ip_address(info["local"]))
            for link in ip_json("-6", "addr", "show", "tentative")
            for info in link.get("addr_info", [])
            if "local" in info
        }
        if not wanted & tentative:
            break
        if time.monotonic() - started > timeout:
            raise LabError(
                f"IPv6 addresses still tentative after {timeout} s: {wanted & tentative}"
            )
        time.sleep(0.1)
    return time.monotonic() - started


# --- a stand-in firewall (harness self-test) -------------------------------------------


def stand_in_firewall(subnet4: str, subnet6: str) -> str:
    """nft rules for `inet alab-fw` that do what alca's default policy should, but only for
    traffic FROM one control network: drop it towards the lab's LAN/metadata/CGNAT
    addresses and the directly connected non-private LAN (forward; the "internet" routed
    behind that LAN stays open) and towards the host's lab ports and broadcast (input).
    Every rule matches the control subnet as source, so nothing else on the machine is
    affected.
    """
    s4, s6 = ipaddress.ip_network(subnet4), ipaddress.ip_network(subnet6)
    lan4 = "192.168.250.0/24, 10.77.0.0/16, 172.31.250.2, 100.64.0.0/10, 169.254.0.0/16, "
    lan4 += f"198.18.0.2, 192.0.0.170, {WAN_NET4}"
    lan6 = f"fd00:250::/64, fc00::2, fd7a:115c:a1e0::53, {WAN_NET6}"
    ports = f"{HOST_PORTS.start}-{HOST_PORTS.stop - 1}"
    return f"""table inet {NFT_TABLE} {{
  chain lab_forward {{
    type filter hook forward priority -10; policy accept;
    ip saddr {s4} ip daddr {{ {lan4} }} counter drop comment "lan4"
    ip6 saddr {s6} ip6 daddr {{ {lan6} }} counter drop comment "lan6"
  }}
  chain lab_input {{
    type filter hook input priority -10; policy accept;
    ip saddr {s4} meta l4proto {{ tcp, udp }} th dport {ports} counter drop comment "host4"
    ip saddr {s4} ip daddr 255.255.255.255 counter drop comment "bcast4"
  }}
}}
"""


def load_firewall(rules: str) -> None:
    """Load the lab's own table (replacing an older copy); never touches other tables."""
    if f"table inet {NFT_TABLE} " not in rules or rules.count("table ") != 1:
        raise LabError(f"the lab only ever loads its own table inet {NFT_TABLE}")
    remove_firewall()
    run(["nft", "-f", "-"], stdin=rules)


def remove_firewall() -> None:
    if subprocess.run(["nft", "list", "table", "inet", NFT_TABLE], capture_output=True).returncode:
        return
    run(["nft", "delete", "table", "inet", NFT_TABLE])


# --- teardown and leftovers -------------------------------------------------------------


def _remove_network() -> list[str]:
    """Delete the veths (before the namespaces), namespaces, rules and table. Idempotent."""
    errors: list[str] = []
    links = {link["ifname"] for link in ip_json("link")}
    for veth in VETHS:
        if veth in links:
            proc = subprocess.run(["ip", "link", "del", veth], capture_output=True, text=True)
            if proc.returncode != 0:
                errors.append(f"ip link del {veth}: {proc.stderr.strip()}")
    for ns in netns_list():
        if not ns.startswith(PREFIX):
            continue
        for pid_text in run(["ip", "netns", "pids", ns], check=False).split():
            pid = int(pid_text)
            if is_our_server(pid):
                kill_pid(pid)
            else:
                errors.append(f"process {pid} ({pid_cmdline(pid)!r}) runs in {ns}; not ours")
        proc = subprocess.run(["ip", "netns", "del", ns], capture_output=True, text=True)
        if proc.returncode != 0:
            errors.append(f"ip netns del {ns}: {proc.stderr.strip()}")
    for rule in ip_json("rule"):
        pref = rule.get("priority")
        ours = rule.get("dst") == str(LINK_LOCAL.network_address)
        if pref in (RULE_PREF - 1, RULE_PREF) and ours:
            proc = subprocess.run(
                ["ip", "rule", "del", "pref", str(pref), "to", str(LINK_LOCAL)],
                capture_output=True,
                text=True,
            )
            if proc.returncode != 0:
                errors.append(f"ip rule del pref {pref}: {proc.stderr.strip()}")
    for family in ("-4", "-6"):
        if run(["ip", family, "route", "show", "table", str(TABLE)], check=False).strip():
            run(["ip", family, "route", "flush", "table", str(TABLE)], check=False)
    return errors


def cleanup_leftovers() -> list[str]:
    """Remove what a crashed earlier run left behind (by our names and our pid file)."""
    errors: list[str] = []
    if STATE_FILE.exists():
        try:
            state = json.loads(STATE_FILE.read_text())
        except ValueError:
            state = {}
        owner = int(state.get("owner", 0))
        if owner and owner != os.getpid() and not _is_zombie(owner):  # gone counts as zombie
            return [f"the lab is in use by another live process (pid {owner}); not touching it"]
        for pid in state.get("pids", []):
            if Path(f"/proc/{pid}").exists() and is_our_server(pid):
                kill_pid(pid)
        for name, value in state.get("sysctl", {}).items():
            with contextlib.suppress(OSError):
                if read_sysctl(name) != value:
                    write_sysctl(name, value)
        STATE_FILE.unlink()
    errors += _remove_network()
    try:
        remove_firewall()
    except LabError as exc:
        errors.append(str(exc))
    return errors


def leftovers() -> list[str]:
    """Everything of the lab that still exists on the host (empty after a clean teardown)."""
    found: list[str] = []
    found += [f"netns {ns}" for ns in netns_list() if ns.startswith(PREFIX)]
    found += [f"link {link['ifname']}" for link in ip_json("link") if link["ifname"] in VETHS]
    ours = lab_prefixes()
    for family in ("-4", "-6"):
        for route in ip_json(family, "route", "show", "table", "all"):
            dst = route.get("dst", "")
            dev = route.get("dev", "")
            in_lab = False
            if dst not in ("default", ""):
                with contextlib.suppress(ValueError):
                    net = ipaddress.ip_network(dst, strict=False)
                    in_lab = any(net.version == p.version and net.overlaps(p) for p in ours)
            if dev in VETHS or in_lab or str(route.get("table")) == str(TABLE):
                found.append(f"route {route}")
    found += [
        f"rule {r}" for r in ip_json("rule") if r.get("priority") in (RULE_PREF - 1, RULE_PREF)
    ]
    for entry in Path("/proc").iterdir():
        pid = int(entry.name) if entry.name.isdigit() else 0
        if pid and str(SERVERS_PY) in pid_cmdline(pid) and not _is_zombie(pid):
            found.append(f"process {entry.name}: {pid_cmdline(int(entry.name))}")
    found += [f"socket {s}" for s in ports_in_use(HOST_PORTS)]
    if STATE_FILE.exists():
        found.append(f"state file {STATE_FILE}")
    if not subprocess.run(
        ["nft", "list", "table", "inet", NFT_TABLE], capture_output=True
    ).returncode:
        found.append(f"nft table inet {NFT_TABLE}")
    return found
