"""A small lab for names and certificates: DNS servers where hosts keep their resolvers, and
an HTTPS site signed by a CA that only the host (through SSL_CERT_FILE) trusts.

    root netns                                  alab-dns
      alab-dns0 10.79.53.1/24 fd00:53::1/64 ─veth─ alab-dns1 10.79.53.53/24 fd00:53::53/64
      route 169.254.53.53/32  dev alab-dns0        lo: 169.254.53.53 (a cloud-style resolver)
      route 203.0.113.242/32 via 10.79.53.53       lo: 203.0.113.242 (web.alca.test, :443)
      lo: 127.0.0.153 (a stub resolver on the host, like systemd-resolved's 127.0.0.53)

The lab DNS server answers `web.alca.test` (A 203.0.113.242, AAAA 2001:db8:53::242),
`lan.alca.test` (A 10.79.53.53) and NXDOMAIN for the rest, and logs every query it
receives with the address it arrived at. Nothing leaves the machine: every prefix is
checked against the host's routes and addresses first, and everything is removed by name
(`alab-dns` namespace, its veth, the /32 routes, the loopback address) and by pid.

The egress hosts (issue 15) live on more loopback addresses of `alab-dns`, each a /32 route
via 10.79.53.53 (`EGRESS_HOSTS`): a shared "CDN" address for `allowed.alca.test` and
`blocked.alca.test` (one HTTPS server whose certificate names both, HTTP answering per Host,
`egressweb.py`), `other.alca.test`, `deep.wild.alca.test` (`*.wild.alca.test`) and the apex
`wild.alca.test` on their own addresses, `short.alca.test` (TTL 2 s) and `long.alca.test`
(TTL 600 s), `proto.alca.test`, an address no name points at, one an egress CIDR entry
lists, and a public
resolver (the lab DNS server again). Every address has HTTP on port 80 and TCP and UDP echo
on `ECHO_PORTS`, and a server-first banner on `BANNER_PORT`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.lab.topology import LabError, ip_batch, overlaps, pid_cmdline, run

NS = "alab-dns"
VETH_HOST, VETH_NS = "alab-dns0", "alab-dns1"
HOST4, DNS4, NET4 = "10.79.53.1", "10.79.53.53", "10.79.53.0/24"
HOST6, DNS6, NET6 = "fd00:53::1", "fd00:53::53", "fd00:53::/64"
LINK_LOCAL_DNS = "169.254.53.53"
LOOPBACK_DNS = "127.0.0.153"
WEB4 = "203.0.113.242"  # a /32 only: the registries sit elsewhere in this /24
WEB_NAME = "web.alca.test"
WEB6 = "2001:db8:53::242"
# --- the egress hosts (only /32 routes: other lab hosts sit elsewhere in this /24) ---
CDN4 = "203.0.113.243"  # allowed.alca.test and blocked.alca.test: one shared address
OTHER4 = "203.0.113.244"  # other.alca.test
WILD4 = "203.0.113.245"  # *.wild.alca.test (deep.wild.alca.test)
APEX4 = "203.0.113.246"  # wild.alca.test, the apex a `*.` entry does not allow
SHORT4 = "203.0.113.247"  # short.alca.test, TTL SHORT_TTL
LONG4 = "203.0.113.248"  # long.alca.test, TTL LONG_TTL
UNLISTED4 = "203.0.113.249"  # no name points here
CIDR4 = "203.0.113.250"  # listed by address in the tests' egress
PROTO4 = "203.0.113.251"  # proto.alca.test (the tests list it for UDP and two ports only)
PUBLIC_DNS4 = "203.0.113.53"  # a resolver on a public address (the lab DNS server)
ALLOWED_NAME, BLOCKED_NAME = "allowed.alca.test", "blocked.alca.test"
OTHER_NAME, DEEP_NAME, APEX_NAME = "other.alca.test", "deep.wild.alca.test", "wild.alca.test"
SHORT_NAME, LONG_NAME = "short.alca.test", "long.alca.test"
PROTO_NAME = "proto.alca.test"
SHORT_TTL, LONG_TTL = 2, 600
ECHO_PORTS = (7001, 7002)
BANNER_PORT = 7003  # the server speaks first
EGRESS_HOSTS = (CDN4, OTHER4, WILD4, APEX4, SHORT4, LONG4, UNLISTED4, CIDR4, PROTO4, PUBLIC_DNS4)
#: (name, address, TTL) the lab answers for the egress hosts
EGRESS_NAMES = (
    (ALLOWED_NAME, CDN4, 5),
    (BLOCKED_NAME, CDN4, 5),
    (OTHER_NAME, OTHER4, 5),
    (DEEP_NAME, WILD4, 5),
    (APEX_NAME, APEX4, 5),
    (SHORT_NAME, SHORT4, SHORT_TTL),
    (LONG_NAME, LONG4, LONG_TTL),
    (PROTO_NAME, PROTO4, 5),
)
RECORDS = (
    f"{WEB_NAME}={WEB4}",
    f"{WEB_NAME}={WEB6}",
    f"*.{WEB_NAME}={WEB4}",  # probe-<case>.web.alca.test: a name no cache has seen
    f"*.{WEB_NAME}={WEB6}",
    f"lan.alca.test={DNS4}",
    f"{ALLOWED_NAME}={CDN4}",
    f"{BLOCKED_NAME}={CDN4}",
    f"{OTHER_NAME}={OTHER4}",
    f"*.{APEX_NAME}={WILD4}",
    f"{APEX_NAME}={APEX4}",
    f"{SHORT_NAME}={SHORT4}@{SHORT_TTL}",
    f"{LONG_NAME}={LONG4}@{LONG_TTL}",
    f"{PROTO_NAME}={PROTO4}",
)
HERE = Path(__file__).parent
Answer = tuple[str, int]  # (address, ttl)


def _run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)


def _openssl(*args: str, cwd: Path) -> None:
    done = _run(["openssl", *args], cwd=cwd)
    if done.returncode != 0:
        raise LabError(f"openssl {' '.join(args)} failed: {done.stderr}")


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A lab CA and a certificate for web.alca.test signed by it: (ca, cert, key)."""
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", "/CN=alcatraz lab CA", "-keyout", "ca.key", "-out", "ca.pem",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=directory,
    )  # fmt: skip
    cert, key = sign_certificate(directory, "web", [WEB_NAME])
    return directory / "ca.pem", cert, key


def sign_certificate(directory: Path, stem: str, names: list[str]) -> tuple[Path, Path]:
    """A server certificate for `names` (subjectAltName) signed by the lab CA in
    `directory`: (cert, key)."""
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={names[0]}",
        "-keyout", f"{stem}.key", "-out", f"{stem}.csr", cwd=directory,
    )  # fmt: skip
    alt = ",".join(f"DNS:{name}" for name in names)
    (directory / f"{stem}.ext").write_text(
        f"subjectAltName={alt}\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n"
    )
    _openssl(
        "x509", "-req", "-in", f"{stem}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", f"{stem}.ext", "-out", f"{stem}.pem",
        cwd=directory,
    )  # fmt: skip
    return directory / f"{stem}.pem", directory / f"{stem}.key"


def make_site(directory: Path) -> Path:
    """What web.alca.test serves: hello.txt and a git repository over dumb HTTP."""
    root = directory / "site"
    root.mkdir()
    (root / "hello.txt").write_text("hello from the lab\n")
    work = directory / "work"
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(directory)}
    for argv in (
        ["git", "init", "-q", "-b", "main", str(work)],
        ["git", "-C", str(work), "-c", "user.name=lab", "-c", "user.email=lab@alca.test",
         "commit", "-q", "--allow-empty", "-m", "lab"],
        ["git", "clone", "-q", "--bare", str(work), str(root / "repo.git")],
        ["git", "-C", str(root / "repo.git"), "update-server-info"],
    ):  # fmt: skip
        done = _run(argv, env=env)
        if done.returncode != 0:
            raise LabError(f"{' '.join(argv)} failed: {done.stderr}")
    return root


def _skip_name(message: bytes, offset: int) -> int:
    while message[offset]:
        if message[offset] & 0xC0 == 0xC0:
            return offset + 2
        offset += message[offset] + 1
    return offset + 1


def ask(server: str, name: str, qtype: int = 1, timeout: float = 3) -> tuple[int, list[Answer]]:
    """One UDP query from the host: (rcode, [(address, ttl)] of the A/AAAA answers).
    The host-side control that the lab DNS server answers before a sandbox is judged."""
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split("."))
    query = struct.pack("!HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0) + labels + b"\0"
    query += struct.pack("!HH", qtype, 1)
    family = socket.AF_INET6 if ":" in server else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(query, (server, 53))
        reply = sock.recv(4096)
    rcode, count = reply[3] & 0x0F, struct.unpack_from("!H", reply, 6)[0]
    offset, answers = _skip_name(reply, 12) + 4, []
    for _ in range(count):
        offset = _skip_name(reply, offset)
        rtype, _class, ttl, length = struct.unpack_from("!HHIH", reply, offset)
        offset += 10
        if rtype in (1, 28):
            answers.append((str(ipaddress.ip_address(reply[offset : offset + length])), ttl))
        offset += length
    return rcode, answers


@dataclass
class NamesLab:
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="alab-dns-")))
    procs: list[subprocess.Popen[str]] = field(default_factory=list)
    ca: Path | None = None

    @property
    def dns_log(self) -> Path:
        return self.workdir / "dns.jsonl"

    def setup(self) -> NamesLab:
        self.teardown()
        hosts = (LINK_LOCAL_DNS, WEB4, *EGRESS_HOSTS)
        clash = overlaps([ipaddress.ip_network(n) for n in (NET4, NET6, *hosts)])
        if clash:
            raise LabError("the names lab overlaps this host's networks: " + "; ".join(clash))
        try:
            self._build()
            self.ca, cert, key = make_certificates(self.workdir)
            cdn_cert, cdn_key = sign_certificate(self.workdir, "cdn", [ALLOWED_NAME, BLOCKED_NAME])
            site = make_site(self.workdir)
            records = [a for r in RECORDS for a in ("--record", r)]
            self._start(
                ["ip", "netns", "exec", NS, sys.executable, str(HERE / "dnsserver.py"),
                 "--listen", DNS4, "--listen", DNS6, "--listen", LINK_LOCAL_DNS,
                 "--listen", PUBLIC_DNS4, "--log", str(self.dns_log), *records]
            )  # fmt: skip
            ports = [a for port in ECHO_PORTS for a in ("--echo-port", str(port))]
            ports += [a for host in EGRESS_HOSTS for a in ("--udp-on", host)]
            ports += ["--banner-port", str(BANNER_PORT)]
            self._start(
                ["ip", "netns", "exec", NS, sys.executable, str(HERE / "egressweb.py"),
                 "--tls", CDN4, "--cert", str(cdn_cert), "--key", str(cdn_key), *ports]
            )  # fmt: skip
            self._start(
                [sys.executable, str(HERE / "dnsserver.py"), "--listen", LOOPBACK_DNS,
                 "--log", str(self.dns_log), *records]
            )  # fmt: skip
            self._start(
                ["ip", "netns", "exec", NS, sys.executable, str(HERE / "tlsweb.py"),
                 "--listen", WEB4, "--cert", str(cert), "--key", str(key), "--root", str(site)]
            )  # fmt: skip
        except BaseException:
            self.teardown()
            raise
        return self

    def _build(self) -> None:
        run(["ip", "netns", "add", NS])
        ip_batch([f"link add {VETH_HOST} type veth peer name {VETH_NS} netns {NS}"])
        ip_batch(
            [
                f"addr add {HOST4}/24 dev {VETH_HOST}",
                f"addr add {HOST6}/64 dev {VETH_HOST} nodad",
                f"link set {VETH_HOST} up",
                f"addr add {LOOPBACK_DNS}/32 dev lo",
            ]
        )
        ip_batch(
            [
                f"addr add {DNS4}/24 dev {VETH_NS}",
                f"addr add {DNS6}/64 dev {VETH_NS} nodad",
                f"addr add {LINK_LOCAL_DNS}/32 dev lo",
                f"addr add {WEB4}/32 dev lo",
                *[f"addr add {host}/32 dev lo" for host in EGRESS_HOSTS],
                "link set lo up",
                f"link set {VETH_NS} up",
            ],
            NS,
        )
        ip_batch(
            [
                f"route add {LINK_LOCAL_DNS}/32 dev {VETH_HOST} src {HOST4}",
                f"route add {WEB4}/32 via {DNS4} dev {VETH_HOST}",
                *[f"route add {host}/32 via {DNS4} dev {VETH_HOST}" for host in EGRESS_HOSTS],
            ]
        )

    def _start(self, argv: list[str]) -> None:
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        self.procs.append(proc)
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 15)
        line = proc.stdout.readline() if ready else ""
        if not line.startswith("READY"):
            proc.kill()
            raise LabError(
                f"{argv[-1]} did not start: {line!r} {proc.stderr.read() if proc.stderr else ''}"
            )

    def queries(self) -> list[dict[str, Any]]:
        if not self.dns_log.exists():
            return []
        out = []
        for line in self.dns_log.read_text().splitlines():
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
        return out

    def teardown(self) -> None:
        for proc in self.procs:
            command = pid_cmdline(proc.pid)
            ours = ("dnsserver.py", "tlsweb.py", "egressweb.py")
            if proc.poll() is None and any(script in command for script in ours):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(5)
        self.procs.clear()
        for argv in (
            ["ip", "route", "del", f"{LINK_LOCAL_DNS}/32", "dev", VETH_HOST],
            ["ip", "route", "del", f"{WEB4}/32"],
            *[
                ["ip", "route", "del", f"{host}/32", "via", DNS4, "dev", VETH_HOST]
                for host in EGRESS_HOSTS
            ],
            ["ip", "addr", "del", f"{LOOPBACK_DNS}/32", "dev", "lo"],
            ["ip", "link", "del", VETH_HOST],
            ["ip", "netns", "del", NS],
        ):
            _run(argv)

    def leftovers(self) -> list[str]:
        """What of this lab still exists on the host (empty after a clean teardown)."""
        found = [f"netns {NS}"] if NS in _run(["ip", "netns", "list"]).stdout.split() else []
        if _run(["ip", "link", "show", VETH_HOST]).returncode == 0:
            found.append(f"link {VETH_HOST}")
        for host in (LINK_LOCAL_DNS, WEB4, *EGRESS_HOSTS):
            route = _run(["ip", "route", "show", f"{host}/32"]).stdout.strip()
            if route:
                found.append(f"route {route}")
        if f"{LOOPBACK_DNS}/32" in _run(["ip", "addr", "show", "dev", "lo"]).stdout:
            found.append(f"address {LOOPBACK_DNS} on lo")
        found += [
            f"process {proc.pid}"
            for proc in self.procs
            if pid_cmdline(proc.pid) and proc.poll() is None
        ]
        return found
