"""Names resolve in every isolated sandbox, and the host's CAs reach it when asked (issue 12).

Real Docker and Podman, both isolation layers on, the Debian test image (glibc's resolver,
apt, curl, Python, Node.js, git). The host's resolver is a lab DNS server reached the way a
host reaches its own: on a private address, a link-local one (a cloud's 169.254.x), a
loopback stub (systemd-resolved's 127.0.0.53) and an IPv6 one; the project's resolver reads
the lab's resolv.conf (ALCA_HOST_RESOLV_CONF) again whenever it changes. Each case asks a
name no cache has seen and checks that the lab server got it at the address under test.
Positive controls first: the lab server answers the host directly, and the sandbox
resolves through the resolver path, before any "refused" verdict counts.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from alcatraz.network.resolver import RESOLV_CONF_ENV
from alcatraz.statefile import ResolverEntry
from tests.integration.isolation_helpers import Project, Workspace, helper_workspace
from tests.lab.names import (
    DNS4,
    DNS6,
    LINK_LOCAL_DNS,
    LOOPBACK_DNS,
    WEB4,
    WEB6,
    WEB_NAME,
    NamesLab,
)

pytestmark = pytest.mark.integration

DEBIAN = "localhost/alca-test/debian:trixie"
RESOLVER_KINDS = {
    "private": DNS4,
    "link-local": LINK_LOCAL_DNS,
    "loopback": LOOPBACK_DNS,
    "ipv6": DNS6,
}
#: A DNS query over UDP, printed as ANSWERED or NOANSWER (python3 in the Debian image).
RAW_QUERY = """
import socket, struct, sys
server, name = sys.argv[1], sys.argv[2]
labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split("."))
query = struct.pack("!HHHHHH", 0x5151, 0x0100, 1, 0, 0, 0) + labels + b"\\0\\0\\1\\0\\1"
family = socket.AF_INET6 if ":" in server else socket.AF_INET
kind = socket.SOCK_STREAM if sys.argv[3] == "tcp" else socket.SOCK_DGRAM
sock = socket.socket(family, kind)
sock.settimeout(3)
try:
    sock.connect((server, 53))
    if kind == socket.SOCK_STREAM:
        sock.sendall(struct.pack("!H", len(query)) + query)
    else:
        sock.send(query)
    sock.recv(512)
    print("ANSWERED")
except OSError as error:
    print("NOANSWER", error)
"""


def image_ready(engine: str) -> None:
    done = subprocess.run(
        [engine, "image", "inspect", DEBIAN], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, (
        f"{engine} has no {DEBIAN}: run scripts/setup-test-env.sh (it builds the image)"
    )


@pytest.fixture(scope="module")
def names_lab() -> Iterator[NamesLab]:
    lab = NamesLab().setup()
    try:
        yield lab
    finally:
        lab.teardown()
        shutil.rmtree(lab.workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def workspace(names_lab: NamesLab) -> Iterator[Workspace]:
    resolv_conf = names_lab.workdir / "resolv.conf"
    resolv_conf.write_text(f"nameserver {DNS4}\n")
    # Both layers on (the host table and the one in the sandbox's namespace).
    with helper_workspace(
        "names", ALCA_TEST_HOST_LAYER_ONLY="", **{RESOLV_CONF_ENV: str(resolv_conf)}
    ) as ws:
        yield ws


def write_config(project: Project, *, host_ca: bool) -> None:
    lines = [f'image = "{DEBIAN}"', f'runtime = "{project.engine}"', "", "[network]"]
    if host_ca:
        lines.append("host-ca = true")
    (project.root / ".alca.toml").write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def sandbox(engine_name: str, workspace: Workspace) -> Iterator[Project]:
    image_ready(engine_name)
    project = workspace.project(engine_name, f"names-{engine_name}")
    write_config(project, host_ca=False)
    project.up()
    yield project
    project.ok("down")


@pytest.fixture(scope="module")
def engine_name(engine: object) -> str:
    return str(getattr(engine, "executable", engine))


def inside(project: Project, script: str) -> subprocess.CompletedProcess[str]:
    """`alca run sh -c SCRIPT`: what the agent does."""
    return project.exec_alca(["sh", "-c", script])


def use_resolver(lab: NamesLab, address: str) -> None:
    """Point the host's (lab) resolv.conf at `address`; the resolver rereads it within 1 s."""
    (lab.workdir / "resolv.conf").write_text(f"# lab\nnameserver {address}\n")
    time.sleep(1.2)


def probe_name(case: str) -> str:
    return f"probe-{case}-{uuid.uuid4().hex[:8]}.{WEB_NAME}"


@pytest.mark.parametrize("kind", list(RESOLVER_KINDS))
def test_names_resolve_whatever_address_the_host_resolver_has(
    kind: str, names_lab: NamesLab, sandbox: Project
) -> None:
    address = RESOLVER_KINDS[kind]
    use_resolver(names_lab, address)
    name = probe_name(kind)
    # getaddrinfo without AI_ADDRCONFIG: the AAAA question is asked although the sandbox's
    # network has no IPv6 address (glibc's `getent ahostsv6` would skip it).
    lookup = (
        "import socket, sys; print(sorted({a[4][0] for f in (socket.AF_INET, socket.AF_INET6)"
        " for a in socket.getaddrinfo(sys.argv[1], 443, f)}))"
    )
    done = inside(sandbox, f"getent ahostsv4 {name}; python3 -c '{lookup}' {name}; exit 0")
    print(f"[{sandbox.engine}] resolver {kind} {address}: {done.stdout.split()[:1]}")
    assert WEB4 in done.stdout, f"{name} did not resolve (A):\n{done.stdout}{done.stderr}"
    assert WEB6 in done.stdout, f"{name} did not resolve (AAAA):\n{done.stdout}{done.stderr}"
    arrived = [q for q in names_lab.queries() if q["name"] == name]
    assert arrived, f"the lab resolver never saw {name}"
    assert {q["local"] for q in arrived} == {address}, arrived


def test_dns_to_any_other_lan_address_is_refused(names_lab: NamesLab, sandbox: Project) -> None:
    use_resolver(names_lab, DNS4)
    # Positive controls: the lab server answers directly, and the sandbox resolves by name.
    control = subprocess.run(
        ["python3", "-c", RAW_QUERY, DNS4, probe_name("control"), "udp"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "ANSWERED" in control.stdout, control
    name = probe_name("path")
    assert WEB4 in inside(sandbox, f"getent ahostsv4 {name}").stdout
    verdicts = {}
    for server in (DNS4, LINK_LOCAL_DNS, DNS6, "10.79.53.1"):
        for proto in ("udp", "tcp"):
            direct = probe_name("direct")
            done = inside(sandbox, f"python3 -c '{RAW_QUERY}' {server} {direct} {proto}")
            verdicts[f"{server}/{proto}"] = done.stdout.strip()
            assert "NOANSWER" in done.stdout, f"{server} {proto}: {done.stdout}{done.stderr}"
            assert not [q for q in names_lab.queries() if q["name"] == direct]
    print(f"[{sandbox.engine}] direct DNS from inside: {verdicts}")


def test_https_to_a_site_only_the_host_trusts_needs_host_ca(
    names_lab: NamesLab, sandbox: Project
) -> None:
    use_resolver(names_lab, DNS4)
    assert names_lab.ca is not None
    url = f"https://{WEB_NAME}"
    clients = {
        "curl": f"curl -sSf {url}/hello.txt",
        "python": f"python3 -c 'import urllib.request as u; "
        f'print(u.urlopen("{url}/hello.txt").read().decode())\'',
        "node": f'node -e \'require("https").get("{url}/hello.txt", r => '
        '{ r.pipe(process.stdout) }).on("error", e => { console.error(e.message); '
        "process.exit(1) })'",
        "git": f"git ls-remote {url}/repo.git && echo 'hello from the lab'",
    }
    # Without host-ca: the image's own store does not know the lab CA.
    for client, script in clients.items():
        done = inside(sandbox, script)
        assert done.returncode != 0 and "hello from the lab" not in done.stdout, (
            f"{client} trusted the lab CA without host-ca: {done.stdout}{done.stderr}"
        )
    # With host-ca: the host trusts the lab CA (its SSL_CERT_FILE names it).
    write_config(sandbox, host_ca=True)
    sandbox.ok("trust", "--yes")
    sandbox.ok("up", "-f", SSL_CERT_FILE=str(names_lab.ca))
    try:
        for client, script in clients.items():
            done = inside(sandbox, script)
            assert done.returncode == 0 and "hello from the lab" in done.stdout, (
                f"{client} failed with host-ca: {done.stdout}{done.stderr}"
            )
        env = inside(sandbox, "echo $SSL_CERT_FILE $NODE_EXTRA_CA_CERTS $GIT_SSL_CAINFO").stdout
        assert env.split() == ["/etc/alcatraz/ca-certificates.crt"] * 3, env
        # Read-only inside, and the image's own store is untouched.
        tamper = inside(sandbox, "echo x >> /etc/alcatraz/ca-certificates.crt")
        assert tamper.returncode != 0, tamper
        store = inside(sandbox, "grep -c 'BEGIN CERT' /etc/ssl/certs/ca-certificates.crt")
        assert int(store.stdout.strip() or 0) > 0
    finally:
        write_config(sandbox, host_ca=False)
        sandbox.ok("trust", "--yes")
        sandbox.ok("up", "-f")


def test_apt_get_update_through_the_hosts_real_resolver(
    names_lab: NamesLab, sandbox: Project
) -> None:
    """What a user does first in a Debian sandbox: the machine's own resolver and mirror."""
    (names_lab.workdir / "resolv.conf").write_text(Path("/etc/resolv.conf").read_text())
    time.sleep(1.2)
    try:
        done = inside(sandbox, "apt-get update 2>&1")
        assert done.returncode == 0, done.stdout
        assert "Temporary failure resolving" not in done.stdout, done.stdout
    finally:
        use_resolver(names_lab, DNS4)


def resolver_entry(project: Project) -> ResolverEntry:
    entry = project.state()["isolation"]["resolver"]
    assert isinstance(entry, dict) and entry["listen"], project.state()["isolation"]
    return ResolverEntry.from_json(entry)


def test_a_killed_resolver_is_back_before_the_next_command(
    names_lab: NamesLab, sandbox: Project
) -> None:
    """A reboot or a kill: `run` starts the resolver again; status and doctor tell."""
    import os
    import signal

    from alcatraz.network import resolver

    use_resolver(names_lab, DNS4)
    entry = resolver_entry(sandbox)
    pid = resolver.running(entry)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while resolver.running(entry) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    status = sandbox.status_json()
    assert status["names"]["state"] == "stopped", status.get("names")
    doctor = sandbox.alca("doctor")
    assert "not running" in doctor.stdout, doctor.stdout
    name = probe_name("restarted")
    done = inside(sandbox, f"getent ahostsv4 {name}")
    assert WEB4 in done.stdout, f"{done.stdout}{done.stderr}"
    assert resolver.running(entry) not in (None, pid)
    assert "Names: the project's resolver on" in sandbox.ok("status").stdout


def test_down_stops_the_resolver_and_up_brings_it_back(
    names_lab: NamesLab, sandbox: Project
) -> None:
    from alcatraz.network import resolver

    use_resolver(names_lab, DNS4)
    entry = resolver_entry(sandbox)
    assert resolver.running(entry) is not None
    sandbox.ok("down")
    assert resolver.running(entry) is None
    assert not Path(entry.pidfile).exists()
    sandbox.ok("up")
    assert resolver.running(resolver_entry(sandbox)) is not None
    assert WEB4 in inside(sandbox, f"getent ahostsv4 {probe_name('again')}").stdout
