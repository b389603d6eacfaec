"""The name checker over real sockets on 127.0.0.1 (the original destination injected)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import resource
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from alcatraz.network.egress.checker import (
    bind_checker,
    original_destination,
    public_destination,
)
from alcatraz.network.egress.relay import DESCRIPTORS_PER_RELAY
from tests.unit.network.egress.conftest import (
    RunningChecker,
    Upstream,
    name_rule,
    start_checker,
)
from tests.unit.network.egress.hellos import client_hello, refragment

BULK = 50 * 1024 * 1024


@pytest.fixture
def upstreams() -> Iterator[Callable[[Callable[[socket.socket], None]], Upstream]]:
    made: list[Upstream] = []

    def make(serve: Callable[[socket.socket], None]) -> Upstream:
        made.append(Upstream(serve))
        return made[-1]

    yield make
    for upstream in made:
        upstream.close()
        assert not upstream.errors


def receive_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def receive_exactly(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        assert chunk, f"EOF after {len(data)} of {count} bytes"
        data += chunk
    return data


def assert_reset(client: socket.socket) -> None:
    with pytest.raises(ConnectionResetError):
        while client.recv(65536):
            pass


def assert_reset_at_once(running: RunningChecker) -> None:
    """A connection the checker resets as soon as it accepts it (connect may see it)."""
    try:
        client = running.connect()
    except ConnectionResetError:
        return
    with client:
        assert_reset(client)


def echo(connection: socket.socket) -> None:
    while data := connection.recv(65536):
        connection.sendall(data)


class Recording:
    """An upstream that keeps every byte it receives (a refused client must send none)."""

    def __init__(self) -> None:
        self.received = bytearray()

    def __call__(self, connection: socket.socket) -> None:
        while data := connection.recv(65536):
            self.received += data


def pattern(size: int, seed: int) -> Iterator[bytes]:
    block = random.Random(seed).randbytes(1 << 20)
    for index in range(size // len(block)):
        yield struct.pack("!Q", index) + block[8:]


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition never became true"
        time.sleep(0.02)


# --- passing connections ------------------------------------------------------------


def test_an_allowed_sni_relays_fifty_megabytes_each_way_intact(
    checker: RunningChecker, upstreams: Callable[..., Upstream]
) -> None:
    hello = client_hello("allowed.test")
    seen: dict[str, str] = {}
    served = threading.Event()

    def serve(connection: socket.socket) -> None:
        assert receive_exactly(connection, len(hello)) == hello
        sender = threading.Thread(target=send_pattern, args=(connection, 2))
        sender.start()
        seen["upstream received"] = digest_until_eof(connection)
        sender.join()
        served.set()

    upstream = upstreams(serve)
    checker.destination[0] = upstream.address
    client = checker.connect(timeout=60)
    with client:
        client.sendall(hello)
        sender = threading.Thread(target=send_pattern, args=(client, 1))
        sender.start()
        received = digest_until_eof(client)
        sender.join()
    assert served.wait(60), upstream.errors
    assert seen["upstream received"] == expected_digest(1)
    assert received == expected_digest(2)
    assert checker.events == []


def send_pattern(sock: socket.socket, seed: int) -> None:
    for block in pattern(BULK, seed):
        sock.sendall(block)
    sock.shutdown(socket.SHUT_WR)


def digest_until_eof(sock: socket.socket) -> str:
    digest = hashlib.sha256()
    buffer = bytearray(1 << 20)
    while count := sock.recv_into(buffer):
        digest.update(memoryview(buffer)[:count])
    return digest.hexdigest()


def expected_digest(seed: int) -> str:
    digest = hashlib.sha256()
    for block in pattern(BULK, seed):
        digest.update(block)
    return digest.hexdigest()


def test_an_allowed_http_host_passes_the_request_unchanged(
    checker: RunningChecker, upstreams: Callable[..., Upstream]
) -> None:
    request = b"GET / HTTP/1.1\r\nHost: Allowed.test:8080\r\n\r\n"

    def serve(connection: socket.socket) -> None:
        assert receive_exactly(connection, len(request)) == request
        connection.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")

    checker.destination[0] = upstreams(serve).address
    with checker.connect() as client:
        client.sendall(request)
        assert receive_all(client) == b"HTTP/1.1 204 No Content\r\n\r\n"


def test_a_wildcard_entry_with_a_port_range(
    checker: RunningChecker, upstreams: Callable[..., Upstream]
) -> None:
    checker.destination[0] = upstreams(echo).address
    with checker.connect() as client:
        client.sendall(client_hello("deep.sub.wild.test") + b"tail")
        client.shutdown(socket.SHUT_WR)
        assert receive_all(client).endswith(b"tail")


def test_a_client_hello_sent_slowly_in_pieces_passes(
    checker: RunningChecker, upstreams: Callable[..., Upstream]
) -> None:
    hello = refragment(client_hello("allowed.test", alpn_padding=10), 700)
    checker.destination[0] = upstreams(echo).address
    with checker.connect() as client:
        for start in range(0, len(hello), 500):
            client.sendall(hello[start : start + 500])
            time.sleep(0.1)
        assert receive_exactly(client, len(hello)) == hello
    assert checker.events == []


def test_a_server_that_speaks_first_gets_its_banner_through(
    checker: RunningChecker, upstreams: Callable[..., Upstream]
) -> None:
    def serve(connection: socket.socket) -> None:
        connection.sendall(b"220 banner\r\n")
        assert receive_exactly(connection, 6) == b"QUIT\r\n"
        connection.sendall(b"221 bye\r\n")

    checker.destination[0] = upstreams(serve).address
    with checker.connect() as client:
        assert receive_exactly(client, 12) == b"220 banner\r\n"
        client.sendall(b"QUIT\r\n")
        assert receive_all(client) == b"221 bye\r\n"


def test_a_client_that_sends_nothing_and_closes_reaches_upstream_eof(
    checker: RunningChecker, upstreams: Callable[..., Upstream]
) -> None:
    checker.destination[0] = upstreams(echo).address
    with checker.connect() as client:
        client.shutdown(socket.SHUT_WR)
        assert receive_all(client) == b""


def test_a_hundred_relays_at_once_each_get_their_own_bytes_back(
    checker: RunningChecker, upstreams: Callable[..., Upstream]
) -> None:
    checker.destination[0] = upstreams(echo).address
    failures: list[BaseException] = []

    def one(index: int) -> None:
        try:
            payload = client_hello("allowed.test") + random.Random(index).randbytes(300_000)
            with checker.connect(timeout=60) as client:
                sender = threading.Thread(target=client.sendall, args=(payload,))
                sender.start()
                assert receive_exactly(client, len(payload)) == payload
                sender.join()
        except BaseException as error:
            failures.append(error)

    clients = [threading.Thread(target=one, args=(index,)) for index in range(100)]
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join(120)
    assert not failures


def test_over_ipv6_a_name_passes_or_is_refused() -> None:
    running, stop = start_checker([name_rule("allowed.test")], listen="::1")
    try:
        upstream = Upstream(echo, host="::1")
        running.destination[0] = upstream.address
        with running.connect() as client:
            client.sendall(b"GET / HTTP/1.1\r\nHost: allowed.test\r\n\r\n")
            client.shutdown(socket.SHUT_WR)
            assert receive_all(client).startswith(b"GET / ")
        with running.connect() as client:
            client.sendall(b"GET / HTTP/1.1\r\nHost: [::1]\r\n\r\n")  # its own address
            client.shutdown(socket.SHUT_WR)
            assert receive_all(client).startswith(b"GET / ")
        with running.connect() as client:
            client.sendall(client_hello("other.test"))
            assert_reset(client)
        assert running.events[0]["address"] == "::1"
        upstream.close()
    finally:
        stop()


# --- refusals -----------------------------------------------------------------------


def test_a_name_not_allowed_is_reset_and_recorded(
    checker: RunningChecker, upstreams: Callable[..., Upstream]
) -> None:
    recording = Recording()
    upstream = upstreams(recording)
    checker.destination[0] = upstream.address
    with checker.connect() as client:
        client.sendall(client_hello("other.test"))
        assert_reset(client)
    # Upstream may have seen the early handshake, never a byte of the refused hello.
    assert upstream.accepted <= 1 and recording.received == b""
    (event,) = checker.events
    assert event["kind"] == "check-refused"
    assert event["name"] == "other.test"
    assert (event["address"], event["port"]) == upstream.address
    assert event["why"] == "name not in [network] egress"


def test_the_wildcard_does_not_allow_its_apex(
    checker: RunningChecker, upstreams: Callable[..., Upstream]
) -> None:
    checker.destination[0] = upstreams(echo).address
    with checker.connect() as client:
        client.sendall(b"GET / HTTP/1.1\r\nHost: wild.test\r\n\r\n")
        assert_reset(client)
    assert checker.events[0]["name"] == "wild.test"


def test_an_http_host_not_allowed_is_reset(
    checker: RunningChecker, upstreams: Callable[..., Upstream]
) -> None:
    recording = Recording()
    upstream = upstreams(recording)
    checker.destination[0] = upstream.address
    with checker.connect() as client:
        client.sendall(b"GET / HTTP/1.1\r\nHost: evil.test\r\n\r\n")
        assert_reset(client)
    assert upstream.accepted <= 1 and recording.received == b""
    assert checker.events[0]["name"] == "evil.test"


def test_waiting_out_the_silence_does_not_skip_the_check(
    checker: RunningChecker, upstreams: Callable[..., Upstream]
) -> None:
    upstream = upstreams(echo)
    checker.destination[0] = upstream.address
    with checker.connect() as client:
        time.sleep(1.5)
        client.sendall(client_hello("other.test"))
        assert_reset(client)
    assert checker.events[0]["name"] == "other.test"
    wait_for(lambda: upstream.resets == 1)  # connected early for a banner; reset too


def test_a_client_hello_that_stalls_is_refused(
    checker: RunningChecker, upstreams: Callable[..., Upstream]
) -> None:
    hello = client_hello("allowed.test")
    checker.destination[0] = upstreams(Recording()).address
    with checker.connect() as client:
        client.sendall(hello[:100])
        started = time.monotonic()
        assert_reset(client)
        assert 1.5 < time.monotonic() - started < 5
    assert checker.events[0]["why"] == "incomplete first message"


def test_half_a_client_hello_then_eof_is_refused(checker: RunningChecker) -> None:
    with checker.connect() as client:
        client.sendall(client_hello("allowed.test")[:100])
        client.shutdown(socket.SHUT_WR)
        assert_reset(client)


def test_a_connection_to_the_checker_itself_is_refused(checker: RunningChecker) -> None:
    checker.destination[0] = ("127.0.0.1", checker.port)
    assert_reset_at_once(checker)
    assert checker.events[0]["why"] == "connection to the checker itself"


def test_a_loopback_or_private_destination_is_refused(upstreams: Callable[..., Upstream]) -> None:
    running, stop = start_checker([name_rule("allowed.test")], vet=None)
    try:
        upstream = upstreams(echo)
        running.destination[0] = upstream.address
        assert_reset_at_once(running)
        assert running.events[0]["why"].startswith("private or special destination")
        assert upstream.accepted == 0
    finally:
        stop()


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("203.0.113.7", True),
        ("198.51.100.53", True),
        ("2001:db8::7", True),
        ("127.0.0.1", False),
        ("10.213.7.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("::1", False),
        ("::ffff:10.0.0.1", False),
        ("fd00::1", False),
    ],
)
def test_public_destination(address: str, public: bool) -> None:
    assert public_destination(address) is public


def test_no_original_destination_is_refused(checker: RunningChecker) -> None:
    checker.destination[0] = ("fail", 0)
    assert_reset_at_once(checker)
    assert checker.events[0]["why"].startswith("no original destination")


def test_an_unreachable_destination_is_reset(checker: RunningChecker) -> None:
    with socket.create_server(("127.0.0.1", 0)) as closed:
        address = closed.getsockname()[:2]
    checker.destination[0] = address
    # Upstream is dialled at once: the reset may come before the request is sent, or even
    # before `connect` returns.
    try:
        client = checker.connect()
    except ConnectionResetError:
        assert checker.events == []
        return
    with client:
        try:
            client.sendall(b"GET / HTTP/1.1\r\nHost: allowed.test\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        else:
            assert_reset(client)
    assert checker.events == []


def test_hostile_garbage_is_reset_or_passed_and_the_checker_lives_on(
    checker: RunningChecker, upstreams: Callable[..., Upstream]
) -> None:
    checker.destination[0] = upstreams(echo).address
    rng = random.Random(15)
    for index in range(30):
        garbage = rng.randbytes(rng.randint(1, 4000))
        if index % 3 == 0:
            garbage = b"\x16\x03\x01" + garbage
        elif index % 3 == 1:
            garbage = b"GET / HTTP/1.1\r\nHost: " + garbage + b"\r\n\r\n"
        with checker.connect() as client:
            refused_before = len(checker.events)
            try:
                client.sendall(garbage)
                client.shutdown(socket.SHUT_WR)
                assert receive_all(client) == garbage
            except OSError:  # reset, at whichever call noticed it first
                wait_for(lambda: len(checker.events) > refused_before)  # noqa: B023
    with checker.connect() as client:
        client.sendall(b"GET / HTTP/1.1\r\nHost: allowed.test\r\n\r\n")
        client.shutdown(socket.SHUT_WR)
        assert receive_all(client).startswith(b"GET /")


def test_connections_beyond_the_limit_are_reset(
    upstreams: Callable[..., Upstream],
) -> None:
    running, stop = start_checker([], max_connections=2)
    try:
        running.destination[0] = upstreams(echo).address
        held = [running.connect(), running.connect()]
        time.sleep(0.2)
        assert_reset_at_once(running)
        for client in held:
            client.close()
        time.sleep(0.3)
        with running.connect() as again:
            again.sendall(b"\x00ping")  # no name: passes once there is room
            again.shutdown(socket.SHUT_WR)
            assert receive_all(again) == b"\x00ping"
    finally:
        stop()


# --- no leaks -----------------------------------------------------------------------


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_no_descriptor_outlives_its_connection(
    checker: RunningChecker, upstreams: Callable[..., Upstream]
) -> None:
    checker.destination[0] = upstreams(echo).address
    with checker.connect() as warm:
        warm.sendall(b"\x00ping")
        warm.shutdown(socket.SHUT_WR)
        receive_all(warm)
    time.sleep(0.2)
    before = open_descriptors()
    for index in range(40):
        name = "allowed.test" if index % 2 else "other.test"
        with checker.connect() as client, contextlib.suppress(OSError):
            client.sendall(b"GET / HTTP/1.1\r\nHost: " + name.encode() + b"\r\n\r\n")
            client.shutdown(socket.SHUT_WR)
            receive_all(client)
    wait_for(lambda: open_descriptors() <= before)


def test_an_upstream_reset_resets_the_client(
    checker: RunningChecker, upstreams: Callable[..., Upstream]
) -> None:
    def serve(connection: socket.socket) -> None:
        connection.recv(100)
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    checker.destination[0] = upstreams(serve).address
    before = open_descriptors()
    with checker.connect() as client:
        client.sendall(b"GET / HTTP/1.1\r\nHost: allowed.test\r\n\r\n")
        assert_reset(client)
    wait_for(lambda: open_descriptors() <= before)


# --- the pieces ---------------------------------------------------------------------


class FakeSocket:
    def __init__(self, family: socket.AddressFamily, raw: bytes) -> None:
        self.family = family
        self.raw = raw
        self.asked: tuple[int, int, int] | None = None

    def getsockopt(self, level: int, option: int, size: int) -> bytes:
        self.asked = (level, option, size)
        return self.raw


def test_original_destination_reads_conntrack_for_ipv4() -> None:
    raw = struct.pack("=H", socket.AF_INET) + struct.pack("!H", 443) + bytes([203, 0, 113, 7])
    fake = FakeSocket(socket.AF_INET, raw + bytes(8))
    assert original_destination(fake) == ("203.0.113.7", 443)
    assert fake.asked == (socket.SOL_IP, 80, 16)


def test_original_destination_reads_conntrack_for_ipv6() -> None:
    address = socket.inet_pton(socket.AF_INET6, "2001:db8::7")
    raw = struct.pack("=H", socket.AF_INET6) + struct.pack("!HI", 8443, 0) + address + bytes(4)
    fake = FakeSocket(socket.AF_INET6, raw)
    assert original_destination(fake) == ("2001:db8::7", 8443)
    assert fake.asked == (socket.IPPROTO_IPV6, 80, 28)


def test_original_destination_of_a_connection_not_redirected() -> None:
    with (
        socket.create_server(("127.0.0.1", 0)) as server,
        socket.create_connection(server.getsockname()[:2]),
    ):
        connection, _ = server.accept()
        with connection:
            try:
                destination = original_destination(connection)
            except OSError:
                return  # no conntrack entry at all
            assert destination == connection.getsockname()  # refused as the checker itself


def test_the_listener_is_marked_and_binds_an_address_not_yet_there() -> None:
    sock = bind_checker("10.213.254.1", 0, 0x1234)  # FREEBIND: no interface has it
    with sock:
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_MARK) == 0x1234
        assert sock.getsockname()[0] == "10.213.254.1"


def test_the_listener_binds_ipv6_too() -> None:
    with bind_checker("::1", 0, 0) as sock:
        assert sock.family == socket.AF_INET6


def test_the_descriptor_limit_is_raised_for_the_connection_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
        _running, stop = start_checker([], max_connections=100)
        stop()
        wanted = 100 * (DESCRIPTORS_PER_RELAY + 1)
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= min(hard, wanted)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
