"""Client probes that run INSIDE a sandbox with nothing but busybox `sh`, `nc`, `nslookup`,
`ping` and `timeout` (the `alpine:3.21` / `localhost/alca-test/busybox` test image).

The in-container side only sends; the verdict comes from the lab's token logs
(`servers.py`). What the client saw is kept for the report and for the few cells with no
server of ours (DNS to the engine's resolver).

* TCP: `printf 'GET /<token>?cell=<id> HTTP/1.0\\r\\n\\r\\n' | timeout T nc -w T addr port`
* UDP: `timeout T nslookup <token> addr:port` (busybox nc has no UDP mode; nslookup sends
  the token as the DNS question name to any port, and the lab answers NXDOMAIN). It
  cannot send to a broadcast address (no SO_BROADCAST: "Permission denied").
* ICMP: `timeout T ping -c 1 -W T -s <size> -p <byte> addr`; the token is the payload
  (`icmp-<byte>-<size>`), logged by the lab's raw ICMP listeners.
* DNS: `timeout T nslookup <name> addr[:port]` against a resolver that is not ours
  (Podman's aardvark-dns on the gateway); "arrived" means a DNS answer came back.

Jobs run in the background in batches of `parallel`, so a matrix costs about
`ceil(cells / parallel) * T` seconds when everything is blocked.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

BEGIN = "@@ALAB-BEGIN"
END = "@@ALAB-END"
HOSTNAME = "$(hostname)"
"""A DNS cell's query name that the shell expands to the sandbox's own host name."""

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,200}$")
_TOKEN_RE = re.compile(r"^(alab-[0-9a-f]{8}-[0-9]{3}|icmp-[0-9a-f]{2}-[0-9]+)$")
_CELL_RE = re.compile(r"^[A-Za-z0-9-]+$")


@dataclass(frozen=True)
class Probe:
    """One packet-sending job: what to send where."""

    index: int
    proto: str  # tcp | udp | icmp | dns
    address: str
    port: int | None
    token: str
    cell: str = ""
    qname: str | None = None  # dns only
    icmp_size: int = 0
    icmp_pattern: int = 0


@dataclass(frozen=True)
class ClientResult:
    index: int
    returncode: int
    output: str
    status: str  # replied | refused | timeout | unreachable | eacces | error | missing


def _addr(address: str) -> str:
    return str(ipaddress.ip_address(address))  # validates; never a name or a flag


def command(probe: Probe, timeout: float) -> str:
    """The shell command for one probe (every interpolated value is validated)."""
    addr = _addr(probe.address)
    t = f"{timeout:g}"
    v6 = ":" in addr
    if probe.proto == "icmp":
        if not 16 <= probe.icmp_size <= 1400 or not 0 < probe.icmp_pattern < 256:
            raise ValueError(f"bad icmp token for {probe}")
        family = "-6 " if v6 else ""
        return (
            f"timeout {t} ping {family}-c 1 -W {t} -s {probe.icmp_size} "
            f"-p {probe.icmp_pattern:02x} {addr}"
        )
    if probe.port is None or not 0 < probe.port < 65536:
        raise ValueError(f"bad port for {probe}")
    hostport = f"[{addr}]:{probe.port}" if v6 else f"{addr}:{probe.port}"
    if probe.proto == "dns":
        qname = probe.qname or HOSTNAME
        if qname == HOSTNAME:
            name = '"$(hostname)"'
        elif _NAME_RE.match(qname):
            name = qname
        else:
            raise ValueError(f"bad query name {qname!r}")
        return f"timeout {t} nslookup {name} {hostport}"
    if not _TOKEN_RE.match(probe.token) or not _CELL_RE.match(probe.cell or "x"):
        raise ValueError(f"bad token or cell id in {probe}")
    if probe.proto == "udp":
        return f"timeout {t} nslookup {probe.token} {hostport}"
    if probe.proto == "tcp":
        request = f"GET /{probe.token}?cell={probe.cell} HTTP/1.0\\r\\n\\r\\n"
        return f"printf '{request}' | timeout {t} nc -w {t} {addr} {probe.port}"
    raise ValueError(f"unknown protocol {probe.proto!r}")


def script(probes: list[Probe], *, timeout: float = 2.0, parallel: int = 16) -> str:
    """One `sh -c` script: background jobs in batches, one delimited block per probe."""
    if not 0 < timeout <= 2.0:
        raise ValueError("probe timeouts are at most 2 s")
    lines = ["exec 2>&1"]
    for start in range(0, len(probes), parallel):
        for probe in probes[start : start + parallel]:
            i = probe.index
            lines.append(
                f"( o=$({command(probe, timeout)} 2>&1); rc=$?; "
                f'printf \'{BEGIN} {i} %s\\n%s\\n{END} {i}\\n\' "$rc" "$o" ) &'
            )
        lines.append("wait")
    return "\n".join(lines) + "\n"


def parse(stdout: str, probes: list[Probe]) -> dict[int, ClientResult]:
    """Client results by probe index; a probe without a block is `missing`."""
    by_index = {p.index: p for p in probes}
    results: dict[int, ClientResult] = {}
    block = re.compile(rf"^{BEGIN} (\d+) (-?\d+)\n(.*?)\n?{END} \1$", re.S | re.M)
    for match in block.finditer(stdout):
        index, rc, output = int(match[1]), int(match[2]), match[3]
        probe = by_index.get(index)
        if probe is not None:
            results[index] = ClientResult(index, rc, output, classify(probe, rc, output))
    for index in by_index:
        results.setdefault(index, ClientResult(index, -1, "", "missing"))
    return results


def classify(probe: Probe, rc: int, output: str) -> str:
    """What the client saw, from busybox's exit code and messages."""
    text = output.lower()
    if "permission denied" in text or "are you root" in text:
        return "eacces"  # could not even send: broadcast without SO_BROADCAST, no NET_RAW
    if "operation not permitted" in text:
        return "eperm"  # a local firewall (OUTPUT) refused the packet
    if (
        "network is unreachable" in text
        or "no route to host" in text
        or "cannot assign requested address" in text
        or "address family not supported" in text
    ):
        return "unreachable"
    if probe.proto == "tcp":
        if "alab-" in text or "http/1.0 200" in text:
            return "replied"
        if "refused" in text:
            return "refused"
    elif probe.proto in ("udp", "dns"):
        if "nxdomain" in text or (rc == 0 and re.search(r"^address( \d+)?:\s", text, re.M)):
            return "replied"
        if "timed out" in text or "no servers could be reached" in text:
            return "timeout"
        if "refused" in text:
            return "refused"
    elif probe.proto == "icmp" and re.search(r"\b[1-9]\d* packets received", text):
        return "replied"
    if rc in (124, 143, 137) or "100% packet loss" in text or "timed out" in text:
        return "timeout"
    return "error"


def discovery_script() -> str:
    """Prints the sandbox's gateways, global addresses and host name."""
    return "\n".join(
        [
            "echo \"@@GW4 $(ip -4 route show default 2>/dev/null | awk '{print $3; exit}')\"",
            "echo \"@@GW6 $(ip -6 route show default 2>/dev/null | awk '{print $3; exit}')\"",
            'echo "@@ADDR4 $(ip -4 -o addr show scope global 2>/dev/null'
            " | awk '{print $4}' | tr '\\n' ' ')\"",
            'echo "@@ADDR6 $(ip -6 -o addr show scope global 2>/dev/null'
            " | awk '{print $4}' | tr '\\n' ' ')\"",
            'echo "@@HOST $(hostname)"',
            'echo "@@UID $(id -u)"',
        ]
    )
