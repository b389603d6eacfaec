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
(`alab-dns` namespace, its veth, the two /32 routes, the loopback address) and by pid.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import select
import signal
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
RECORDS = (
    f"{WEB_NAME}={WEB4}",
    f"{WEB_NAME}={WEB6}",
    f"*.{WEB_NAME}={WEB4}",  # probe-<case>.web.alca.test: a name no cache has seen
    f"*.{WEB_NAME}={WEB6}",
    f"lan.alca.test={DNS4}",
)
HERE = Path(__file__).parent


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
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={WEB_NAME}",
        "-keyout", "web.key", "-out", "web.csr", cwd=directory,
    )  # fmt: skip
    (directory / "web.ext").write_text(
        f"subjectAltName=DNS:{WEB_NAME}\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n"
    )
    _openssl(
        "x509", "-req", "-in", "web.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "web.ext", "-out", "web.pem",
        cwd=directory,
    )  # fmt: skip
    return directory / "ca.pem", directory / "web.pem", directory / "web.key"


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
        clash = overlaps(
            [ipaddress.ip_network(n) for n in (NET4, NET6, f"{LINK_LOCAL_DNS}/32", f"{WEB4}/32")]
        )
        if clash:
            raise LabError("the names lab overlaps this host's networks: " + "; ".join(clash))
        try:
            self._build()
            self.ca, cert, key = make_certificates(self.workdir)
            site = make_site(self.workdir)
            records = [a for r in RECORDS for a in ("--record", r)]
            self._start(
                ["ip", "netns", "exec", NS, sys.executable, str(HERE / "dnsserver.py"),
                 "--listen", DNS4, "--listen", DNS6, "--listen", LINK_LOCAL_DNS,
                 "--log", str(self.dns_log), *records]
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
                "link set lo up",
                f"link set {VETH_NS} up",
            ],
            NS,
        )
        ip_batch(
            [
                f"route add {LINK_LOCAL_DNS}/32 dev {VETH_HOST} src {HOST4}",
                f"route add {WEB4}/32 via {DNS4} dev {VETH_HOST}",
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
            if proc.poll() is None and ("dnsserver.py" in command or "tlsweb.py" in command):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(5)
        self.procs.clear()
        for argv in (
            ["ip", "route", "del", f"{LINK_LOCAL_DNS}/32", "dev", VETH_HOST],
            ["ip", "route", "del", f"{WEB4}/32"],
            ["ip", "addr", "del", f"{LOOPBACK_DNS}/32", "dev", "lo"],
            ["ip", "link", "del", VETH_HOST],
            ["ip", "netns", "del", NS],
        ):
            _run(argv)
