"""The guard daemon on real loopback sockets, with a fake upstream and a recording nft.

What is checked is the daemon's promise to the sandbox: a name not allowed is answered
NXDOMAIN (with why) and never reaches the upstream; an allowed name is forwarded and its
addresses are in the nft sets (TTL clamped) BEFORE the reply leaves.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import dns.edns
import dns.message
import dns.rcode
import dns.rrset
import pytest

from alcatraz.network import dnsproxy
from alcatraz.network.egress import daemon as guard
from alcatraz.network.egress import hostlan
from alcatraz.network.egress.events import read_events
from alcatraz.proc import Result
from tests.fakes import FakeRunner
from tests.unit.network.egress.test_policy import policy


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (the daemon binds both; with tests
    running in parallel, a port free for one may be a live connection's for the other)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port: int = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port


class Upstream:
    """Answers every A query with 203.0.113.5 (TTL 5) and records the names it was asked."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.seen: list[str] = []

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        self.sock.setblocking(False)
        while True:
            data, peer = await loop.sock_recvfrom(self.sock, 4096)
            query = dns.message.from_wire(data)
            name = query.question[0].name
            self.seen.append(name.to_text(omit_final_dot=True))
            reply = dns.message.make_response(query)
            reply.answer.append(dns.rrset.from_text(name, 5, "IN", "A", "203.0.113.5"))
            await loop.sock_sendto(self.sock, reply.to_wire(), peer)


def write_policy(tmp_path: Path, upstream_port: int, **changes: object) -> Path:
    path = tmp_path / "policy.json"
    fields: dict[str, object] = {
        "egress": ("*.allowed.test:443", "exact.test"),
        "upstreams": (f"127.0.0.1:{upstream_port}",),
        "events": str(tmp_path / "events.jsonl"),
        "mark": 0,
    }
    fields.update(changes)
    path.write_text(policy(**fields).to_json())
    return path


async def ask(port: int, name: str, *, tcp: bool = False) -> tuple[dns.message.Message, float]:
    """A query to the daemon on 127.0.0.1:port; the reply and when it arrived."""
    loop = asyncio.get_running_loop()
    wire = dns.message.make_query(name, "A", use_edns=0).to_wire()
    if tcp:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(struct.pack("!H", len(wire)) + wire)
        (length,) = struct.unpack("!H", await reader.readexactly(2))
        data = await reader.readexactly(length)
        writer.close()
    else:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            await loop.sock_connect(sock, ("127.0.0.1", port))
            await loop.sock_sendall(sock, wire)
            data = await asyncio.wait_for(loop.sock_recv(sock, 4096), 5)
    return dns.message.from_wire(data), time.monotonic()


def test_refused_names_stay_local_and_allowed_ones_are_let_in_before_the_reply(
    tmp_path: Path,
) -> None:
    upstream = Upstream()
    applied: list[tuple[str, float]] = []

    def nft(argv: tuple[str, ...]) -> Result:
        script = runner.inputs[-1] or ""
        if "p_0123456789_ep4" in script:
            time.sleep(0.2)  # a slow nft: the reply must still wait for it
        applied.append((script, time.monotonic()))
        return Result(argv, 0, "", "")

    runner = FakeRunner(nft)
    daemon = guard.load(str(write_policy(tmp_path, upstream.port)), runner=runner)
    port = free_port()
    udp, tcp = dnsproxy.bind_sockets("127.0.0.1", port)
    upstreams = dnsproxy.Upstreams(fixed=daemon.policy.upstreams)

    async def scenario() -> dict[str, tuple[dns.message.Message, float]]:
        serving = asyncio.create_task(upstream.serve())
        daemon.prepare()
        server = asyncio.create_task(dnsproxy.serve(udp, tcp, upstreams, daemon))
        await asyncio.sleep(0.05)
        replies = {
            "evil.test": await ask(port, "evil.test"),
            "tcp": await ask(port, "other.evil.test", tcp=True),
            "allowed.test": await ask(port, "allowed.test"),  # the apex of a *. entry
            "www.allowed.test": await ask(port, "www.allowed.test"),
        }
        server.cancel()
        serving.cancel()
        return replies

    replies = asyncio.run(scenario())
    upstream.sock.close()
    for name in ("evil.test", "tcp", "allowed.test"):
        message = replies[name][0]
        assert message.rcode() == dns.rcode.NXDOMAIN
        (option,) = message.options
        assert isinstance(option, dns.edns.EDEOption) and option.code == 15
    assert replies["evil.test"][0].options[0].text == (
        "alcatraz: evil.test is not in [network] egress"
    )
    assert upstream.seen == ["www.allowed.test"]  # refused names never left
    allowed, arrived = replies["www.allowed.test"]
    assert allowed.rcode() == dns.rcode.NOERROR and "203.0.113.5" in allowed.to_text()
    scripts = [script for script, _ in applied]
    assert scripts[0].startswith("flush set inet alcatraz p_0123456789_ea4\n")
    assert "p_0123456789_live" in scripts[1]
    (element, when), *_ = [(s, t) for s, t in applied if "ep4" in s and "add" in s]
    assert "203.0.113.5 . tcp . 443 timeout 30s" in element  # TTL 5 clamped to ttl_min
    assert "203.0.113.5 . udp . 443 timeout 30s" in element
    assert when < arrived  # in the set before the reply arrived
    kinds = [(e.kind, e.name) for e in read_events(daemon.policy.events)]
    assert ("dns-refused", "evil.test") in kinds and ("dns-allowed", "www.allowed.test") in kinds


def test_no_policy_rules_relay_everything_and_still_keep_the_gate(tmp_path: Path) -> None:
    upstream = Upstream()
    runner = FakeRunner().on("nft")
    daemon = guard.load(str(write_policy(tmp_path, upstream.port, egress=None)), runner=runner)
    port = free_port()
    udp, tcp = dnsproxy.bind_sockets("127.0.0.1", port)

    async def scenario() -> dns.message.Message:
        serving = asyncio.create_task(upstream.serve())
        daemon.prepare()
        upstreams = dnsproxy.Upstreams(fixed=daemon.policy.upstreams)
        server = asyncio.create_task(dnsproxy.serve(udp, tcp, upstreams, daemon))
        await asyncio.sleep(0.05)
        reply, _ = await ask(port, "anything.test")
        server.cancel()
        serving.cancel()
        return reply

    assert asyncio.run(scenario()).rcode() == dns.rcode.NOERROR
    upstream.sock.close()
    assert upstream.seen == ["anything.test"]
    flushed = [
        line for script in runner.inputs for line in (script or "").splitlines() if "flush" in line
    ]
    assert all(line.endswith(("_lan4", "_lan6")) for line in flushed)  # no address set
    assert any("p_0123456789_live" in (script or "") for script in runner.inputs)


def test_an_unreadable_query_gets_formerr_and_is_not_forwarded(tmp_path: Path) -> None:
    daemon = guard.load(str(write_policy(tmp_path, 9)), runner=FakeRunner().on("nft"))
    query = dns.message.make_query("a.test", "A").to_wire() + b"\x00"  # trailing junk

    async def forward() -> bytes | None:
        raise AssertionError("forwarded")

    reply = asyncio.run(daemon.answer(query, forward))
    assert reply is not None and reply[3] & 0x0F == dns.rcode.FORMERR


def test_an_allowed_question_with_a_record_beside_it_is_not_forwarded(tmp_path: Path) -> None:
    daemon = guard.load(str(write_policy(tmp_path, 9)), runner=FakeRunner().on("nft"))
    query = dns.message.make_query("exact.test", "A")
    query.additional.append(dns.rrset.from_text("data.blocked.test.", 60, "IN", "A", "203.0.113.1"))

    async def forward() -> bytes | None:
        raise AssertionError("forwarded")

    reply = asyncio.run(daemon.answer(query.to_wire(), forward))
    assert reply is not None and reply[3] & 0x0F == dns.rcode.FORMERR


def test_servfail_when_no_address_could_be_let_in(tmp_path: Path) -> None:
    daemon = guard.load(str(write_policy(tmp_path, 9)), runner=FakeRunner().on("nft", rc=1))
    query = dns.message.make_query("exact.test", "A")
    answer = dns.message.make_response(query)
    answer.answer.append(dns.rrset.from_text("exact.test.", 60, "IN", "A", "203.0.113.5"))

    async def forward() -> bytes | None:
        return answer.to_wire()

    reply = asyncio.run(daemon.answer(query.to_wire(), forward))
    assert reply is not None and dns.message.from_wire(reply).rcode() == dns.rcode.SERVFAIL


@pytest.mark.skipif(os.geteuid() != 0, reason="SO_MARK needs CAP_NET_ADMIN")
def test_listening_sockets_carry_the_policys_mark() -> None:
    udp, tcp = dnsproxy.bind_sockets("127.0.0.1", free_port(), 0xA1B2)
    for sock in (udp, tcp):
        assert sock.getsockopt(socket.SOL_SOCKET, dnsproxy.SO_MARK) == 0xA1B2
        sock.close()


RECORDER = """
import sys
with open(sys.argv[1], "a") as out:
    out.write(" ".join(sys.argv[2:]) + "\\n" + sys.stdin.read() + "--\\n")
"""


def test_main_with_a_policy_serves_as_the_guard_daemon(tmp_path: Path) -> None:
    recorder = tmp_path / "nft.py"
    recorder.write_text(RECORDER)
    record = tmp_path / "nft.log"
    nft = (sys.executable, str(recorder), str(record))
    mark = 0xA1B2 if os.geteuid() == 0 else 0
    path = write_policy(tmp_path, 9, nft=nft, mark=mark)
    port = free_port()
    argv = [sys.executable, "-m", dnsproxy.__name__, "--listen", "127.0.0.1", "--port"]
    argv += [str(port), "--pidfile", str(tmp_path / "pid"), "--policy", str(path)]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and process.stdout.readline() == "ready\n"
        reply, _ = asyncio.run(ask(port, "evil.test"))
        assert reply.rcode() == dns.rcode.NXDOMAIN
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(10)
    assert process.returncode == 0
    text = record.read_text()
    assert text.startswith("-f -\nflush set inet alcatraz p_0123456789_ea4\n")
    assert 'add element inet alcatraz p_0123456789_live { "alca-0123456789" timeout 15s }' in text
    assert [e.name for e in read_events(str(tmp_path / "events.jsonl"))] == ["evil.test"]


def test_main_refuses_a_bad_policy_and_says_why(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    data = json.loads(policy().to_json())
    data["mark"] = "0xA1B2"
    path.write_text(json.dumps(data))
    argv = [sys.executable, "-m", dnsproxy.__name__, "--listen", "127.0.0.1", "--port", "9"]
    done = subprocess.run(
        [*argv, "--pidfile", str(tmp_path / "pid"), "--policy", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1
    assert done.stdout.startswith(f"error: policy {path}: policy field 'mark' must be")


def test_a_failing_extra_is_logged_and_ends_the_extras(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    daemon = guard.load(str(write_policy(tmp_path, 9, egress=None)), runner=FakeRunner())
    logged: list[str] = []
    daemon.log = logged.append

    def broken() -> str | None:
        raise RuntimeError("boom")

    monkeypatch.setattr(daemon.writer, "refresh_live", broken)
    with pytest.raises(ExceptionGroup):
        asyncio.run(daemon.run_extras())
    assert len(logged) == 1 and "the guard daemon stops" in logged[0] and "boom" in logged[0]


def test_the_checker_never_connects_to_the_hosts_lans(tmp_path: Path) -> None:
    daemon = guard.load(str(write_policy(tmp_path, 9)), runner=FakeRunner())
    assert daemon.destination_allowed("203.0.113.7")
    assert not daemon.destination_allowed("10.0.0.1")
    daemon.host_lan = hostlan.HostLan((ipaddress.IPv4Network("203.0.113.0/28"),), ())
    assert not daemon.destination_allowed("203.0.113.7")
    assert daemon.destination_allowed("203.0.113.77")


def test_the_relay_without_a_policy_never_loads_dnspython() -> None:
    probe = (
        "import sys, alcatraz.network.dnsproxy\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'dns'))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
