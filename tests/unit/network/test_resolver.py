"""The project's resolver: message checks, resolv.conf reading, and a live relay on loopback.

The live tests run the real forwarder against a fake upstream on 127.0.0.1 (an unprivileged
port), so what is checked is what the daemon does: relay unchanged, refuse mismatched
replies, answer SERVFAIL when no upstream answers, and follow resolv.conf as it changes.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from alcatraz.network import dnsproxy, resolver
from alcatraz.network.dnsproxy import (
    Forwarder,
    Upstreams,
    matches,
    parse_resolv_conf,
    question_end,
    servfail,
)


def query(name: str = "example.test", ident: int = 0x1234, qtype: int = 1) -> bytes:
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split("."))
    return (
        struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0)
        + labels
        + b"\0"
        + struct.pack("!HH", qtype, 1)
    )


#: One A record (203.0.113.1, TTL 5) pointing back at the question's name.
ANSWER_A = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x05\x00\x04\xcb\x00\x71\x01"


def reply_to(message: bytes, extra: bytes = ANSWER_A) -> bytes:
    end = question_end(message)
    assert end is not None
    header = message[:2] + b"\x81\x80" + struct.pack("!HHHH", 1, 1, 0, 0)
    return header + message[12:end] + extra


def test_resolv_conf_nameservers_in_order_without_junk() -> None:
    text = (
        "# comment\nsearch lan\nnameserver 10.0.0.53\nnameserver 127.0.0.53 # stub\n"
        "nameserver fe80::1%eth0\nnameserver not-an-address\nnameserver 10.0.0.53\n"
        "options edns0\n"
    )
    assert parse_resolv_conf(text) == ["10.0.0.53", "127.0.0.53", "fe80::1%eth0"]


def test_servfail_keeps_id_question_and_rd() -> None:
    q = query(ident=0xBEEF)
    answer = servfail(q)
    assert answer is not None
    ident, flags, qd, an, ns, ar = struct.unpack_from("!HHHHHH", answer)
    assert (ident, qd, an, ns, ar) == (0xBEEF, 1, 0, 0, 0)
    assert flags & 0x8000 and flags & 0x0100 and flags & 0x000F == 2
    assert answer[12:] == q[12:]


@pytest.mark.parametrize(
    "message",
    [b"", b"\x00" * 11, query()[:-3], query()[:12] + b"\x3f" + b"a" * 5, reply_to(query())],
)
def test_malformed_or_response_gets_no_servfail(message: bytes) -> None:
    assert servfail(message) is None


def test_a_reply_must_match_id_and_question() -> None:
    q = query("a.test")
    assert matches(q, reply_to(q))
    assert not matches(q, reply_to(query("b.test")))
    assert not matches(q, reply_to(query("a.test", ident=0x9999)))
    assert not matches(q, q)  # not a response


class FakeUpstream:
    """A UDP+TCP DNS responder on 127.0.0.1:port that answers every query."""

    def __init__(self, port: int) -> None:
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", port))
        self.seen: list[bytes] = []

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        self.udp.setblocking(False)
        while True:
            data, peer = await loop.sock_recvfrom(self.udp, 4096)
            self.seen.append(data)
            await loop.sock_sendto(self.udp, reply_to(data), peer)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_forwarder_relays_and_answers_servfail_when_no_upstream(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    port = free_port()
    monkeypatch.setattr(dnsproxy, "DNS_PORT", port)
    monkeypatch.setattr(dnsproxy, "UPSTREAM_TIMEOUT", 0.3)
    monkeypatch.setattr(dnsproxy, "RESOLV_RECHECK", 0.0)
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 127.0.0.1\n")

    async def scenario() -> tuple[bytes | None, bytes | None]:
        upstream = FakeUpstream(port)
        task = asyncio.create_task(upstream.serve())
        forwarder = Forwarder(Upstreams(resolv_conf=str(conf)))
        q = query("relay.test")
        first = await forwarder.resolve(q, tcp=False)
        assert upstream.seen == [q]  # relayed unchanged
        task.cancel()
        upstream.udp.close()
        os.utime(conf, ns=(time.time_ns(), time.time_ns() + 10**9))
        conf.write_text("nameserver 127.0.0.2\n")  # nobody there
        second = await forwarder.resolve(query("gone.test"), tcp=False)
        return first, second

    first, second = asyncio.run(scenario())
    assert first is not None and matches(query("relay.test"), first)
    assert second is not None and second[3] & 0x0F == 2  # SERVFAIL


def test_daemon_starts_says_ready_and_stops_by_pid(tmp_path: Path) -> None:
    """`spawn` waits for "ready"; `stop` ends only the process whose command line matches."""
    if os.geteuid() != 0:
        pytest.skip("binds port 53")
    entry = resolver.record("127.0.0.154", str(tmp_path), str(tmp_path / "resolv.conf"))
    (tmp_path / "resolv.conf").write_text("nameserver 127.0.0.1\n")
    assert resolver.spawn(entry) is None
    pid = resolver.running(entry)
    assert pid is not None
    # Someone else's pid in the pid file is never signalled.
    Path(entry.pidfile).write_text(f"{os.getpid()}\n")
    assert resolver.running(entry) is None
    assert resolver.stop(entry) is False
    Path(entry.pidfile).write_text(f"{pid}\n")
    assert resolver.stop(entry) is True
    assert resolver.running(entry) is None


def test_a_second_resolver_on_the_same_address_reports_why(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("binds port 53")
    first = resolver.record("127.0.0.155", str(tmp_path / "a"), "/dev/null")
    second = resolver.record("127.0.0.155", str(tmp_path / "b"), "/dev/null")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert resolver.spawn(first) is None
    try:
        problem = resolver.spawn(second)
        assert problem is not None and "Address already in use" in problem
    finally:
        resolver.stop(first)


def test_module_runs_standalone() -> None:
    done = subprocess.run(
        [sys.executable, "-m", dnsproxy.__name__, "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0 and "--listen" in done.stdout


def test_daemon_keeps_none_of_its_starters_descriptors(tmp_path: Path) -> None:
    """A lock or pipe the starter holds (e.g. `flock … alca up`) must not live on in it."""
    if os.geteuid() != 0:
        pytest.skip("binds port 53")
    entry = resolver.record("127.0.0.156", str(tmp_path), "/dev/null")
    held = os.open(tmp_path / "lock", os.O_CREAT | os.O_RDWR)
    os.set_inheritable(held, True)
    try:
        assert resolver.spawn(entry) is None
        pid = resolver.running(entry)
        assert pid is not None
        targets = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
        assert str(tmp_path / "lock") not in targets, targets
    finally:
        os.close(held)
        resolver.stop(entry)


def test_ipv6_upstream(monkeypatch: pytest.MonkeyPatch) -> None:
    """An IPv6 upstream (here ::1) is asked over UDP like an IPv4 one."""
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
        probe.bind(("::1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setattr(dnsproxy, "DNS_PORT", port)

    async def scenario() -> bytes:
        server = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        server.bind(("::1", port))
        server.setblocking(False)
        loop = asyncio.get_running_loop()

        async def answer_once() -> None:
            data, peer = await loop.sock_recvfrom(server, 4096)
            await loop.sock_sendto(server, reply_to(data), peer)

        task = asyncio.create_task(answer_once())
        try:
            return await dnsproxy.ask_udp("::1", query("six.test"))
        finally:
            await task
            server.close()

    assert matches(query("six.test"), asyncio.run(scenario()))


@pytest.mark.parametrize(
    ("flags", "qtype", "counts", "rcode"),
    [
        (0x2800, 6, (1, 0, 0, 0), 4),  # UPDATE: NOTIMP
        (0x2000, 6, (1, 0, 0, 0), 4),  # NOTIFY
        (0x0100, 252, (1, 0, 0, 0), 5),  # AXFR: REFUSED
        (0x0100, 251, (1, 0, 0, 0), 5),  # IXFR
        (0x0100, 1, (1, 1, 0, 0), 4),  # answers in a query
        (0x0100, 1, (2, 0, 0, 0), 4),  # two questions
    ],
)
def test_only_standard_queries_are_relayed(
    flags: int, qtype: int, counts: tuple[int, int, int, int], rcode: int
) -> None:
    """No UPDATE, NOTIFY or zone transfer reaches a resolver that may trust the host."""
    q = query(qtype=qtype)
    q = struct.pack("!HHHHHH", 0x4242, flags, *counts) + q[12:]
    answer = dnsproxy.refusal(q)
    assert answer is not None and answer[:2] == b"\x42\x42" and answer[3] & 0x0F == rcode
    assert answer[2] & 0x80  # a response
    assert dnsproxy.refusal(query()) is None
    assert dnsproxy.refusal(query(qtype=28)) is None


def test_policy_file_reaches_the_daemon_and_old_records_write_back_identically() -> None:
    from alcatraz.statefile import IsolationRecord, ResolverEntry

    plain = resolver.record("10.213.7.1", "/state", "/etc/resolv.conf")
    assert "--policy" not in resolver.argv(plain)
    assert "policy" not in plain.to_json()
    assert ResolverEntry.from_json(plain.to_json()) == plain
    with_policy = plain._replace(policy="/state/daemon-policy.json")
    argv = resolver.argv(with_policy)
    assert argv[argv.index("--policy") + 1] == "/state/daemon-policy.json"
    assert ResolverEntry.from_json(with_policy.to_json()) == with_policy
    record = IsolationRecord(key="k", resolver=with_policy, egress=True)
    assert IsolationRecord.from_json(record.to_json()) == record
    assert "egress" not in IsolationRecord(key="k").to_json()


def test_run_refuses_while_the_egress_daemon_is_down(tmp_path: Path) -> None:
    """With egress, `alca run` never restarts the daemon behind `up`'s back: it refuses."""
    from alcatraz.errors import RefusedError
    from alcatraz.sandbox.enter import ensure_resolver
    from alcatraz.statefile import IsolationRecord

    entry = resolver.record("127.0.0.156", str(tmp_path), "/dev/null")._replace(
        policy=str(tmp_path / "daemon-policy.json")
    )
    with pytest.raises(RefusedError, match="egress daemon"):
        ensure_resolver(IsolationRecord(key="k", resolver=entry, egress=True))
    assert not Path(entry.pidfile).exists()  # nothing was started
