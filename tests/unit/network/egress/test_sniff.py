"""The first-bytes sniffer: real ClientHellos, HTTP/1 requests, and hostile input."""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time

import pytest

from alcatraz.network.egress.sniff import SNIFF_LIMIT, Sniffed, Verdict, normalize_name, sniff
from tests.unit.network.egress.hellos import client_hello, refragment


def tls(name: str | None) -> Sniffed:
    return Sniffed(Verdict.TLS, name)


def http(name: str | None) -> Sniffed:
    return Sniffed(Verdict.HTTP, name)


def record(body: bytes, kind: int = 0x16, version: bytes = b"\x03\x01") -> bytes:
    return bytes([kind]) + version + len(body).to_bytes(2, "big") + body


def vector(size: int, body: bytes) -> bytes:
    return len(body).to_bytes(size, "big") + body


def sni_extension(*names: bytes, name_type: int = 0) -> bytes:
    entries = b"".join(bytes([name_type]) + vector(2, name) for name in names)
    return b"\x00\x00" + vector(2, vector(2, entries))


def hand_hello(extensions: bytes | None, *, session: bytes = b"") -> bytes:
    """A ClientHello put together by hand, to make each field lie in turn."""
    body = b"\x03\x03" + bytes(32) + vector(1, session) + vector(2, b"\x13\x01") + b"\x01\x00"
    if extensions is not None:
        body += vector(2, extensions)
    return record(b"\x01" + vector(3, body))


# --- TLS, real ClientHellos -----------------------------------------------------------


def test_a_real_client_hello_gives_its_sni() -> None:
    assert sniff(client_hello("example.com")) == tls("example.com")


def test_a_client_hello_without_sni_gives_no_name() -> None:
    assert sniff(client_hello(None)) == tls(None)


def test_the_sni_is_lower_cased() -> None:
    assert sniff(client_hello("WWW.Example.COM")) == tls("www.example.com")


def test_every_prefix_of_a_client_hello_needs_more() -> None:
    hello = client_hello("example.com")
    for end in range(len(hello)):
        assert sniff(hello[:end]).verdict is Verdict.NEED_MORE, end


def test_a_client_hello_larger_than_a_segment_over_many_records() -> None:
    hello = client_hello("big.example.com", alpn_padding=20)
    assert len(hello) > 4000
    for size in (200, 1400, 16384):
        carried = refragment(hello, size)
        assert sniff(carried) == tls("big.example.com"), size
        assert sniff(carried[: len(carried) // 2]).verdict is Verdict.NEED_MORE


def test_bytes_after_the_client_hello_do_not_matter() -> None:
    hello = client_hello("example.com")
    assert sniff(hello + record(b"\x01", kind=0x14) + b"early data") == tls("example.com")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")
def test_an_openssl_s_client_hello() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        client = subprocess.Popen(
            [
                "openssl",
                "s_client",
                "-connect",
                f"127.0.0.1:{port}",
                "-servername",
                "s.example.org",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            server.settimeout(10)
            connection, _ = server.accept()
            with connection:
                connection.settimeout(10)
                received = b""
                while sniff(received).verdict is Verdict.NEED_MORE:
                    chunk = connection.recv(65536)
                    assert chunk
                    received += chunk
        finally:
            client.kill()
            client.wait()
    assert sniff(received) == tls("s.example.org")


# --- TLS, hostile ---------------------------------------------------------------------


def test_a_hand_made_hello_parses_like_a_real_one() -> None:
    assert sniff(hand_hello(sni_extension(b"a.example"))) == tls("a.example")
    assert sniff(hand_hello(None)) == tls(None)
    assert sniff(hand_hello(b"")) == tls(None)


@pytest.mark.parametrize(
    "hello",
    [
        hand_hello(sni_extension(b"a.example") + sni_extension(b"b.example")),
        hand_hello(sni_extension(b"a.example", b"b.example")),
        hand_hello(sni_extension(b"a.example\x00.evil")),
        hand_hello(sni_extension(b"a .example")),
        hand_hello(sni_extension(b"")),
        hand_hello(sni_extension(b"a..example")),
        hand_hello(sni_extension(b"-a.example")),
        hand_hello(sni_extension(b"\xc3\xa9.example")),
        hand_hello(sni_extension(b"x" * 64 + b".example")),
        hand_hello(sni_extension(b"a.example", name_type=1)),
        hand_hello(b"\x00\x00" + vector(2, vector(2, b""))),
        hand_hello(b"\x00\x00" + vector(2, b"\x00\x50" + b"\x00\x00\x01a")),
        hand_hello(b"\x00\x00\x00\x05\x00"),
        hand_hello(sni_extension(b"a.example"), session=bytes(33)),
        record(b"\x02" + vector(3, b"x")),
        record(b"\x01" + (SNIFF_LIMIT + 1).to_bytes(3, "big")),
        record(b"", version=b"\x03\x01"),
        b"\x16\x03\x01\x40\x01" + bytes(100),
        b"\x16\x02\x00",
        record(b"\x01\x00\x00\x08") + record(b"xx", kind=0x17),
    ],
)
def test_hostile_client_hellos_are_malformed(hello: bytes) -> None:
    assert sniff(hello).verdict is Verdict.MALFORMED


def test_with_encrypted_client_hello_the_outer_name_is_the_name() -> None:
    ech = b"\xfe\x0d" + vector(2, b"\x00" + bytes(200))  # outer ECH extension, opaque here
    hello = hand_hello(sni_extension(b"public.example") + ech)
    assert sniff(hello) == tls("public.example")


def test_a_hostile_name_type_next_to_a_host_name_is_skipped() -> None:
    names = b"\x01" + vector(2, b"other") + b"\x00" + vector(2, b"a.example")
    hello = hand_hello(b"\x00\x00" + vector(2, vector(2, names)))
    assert sniff(hello) == tls("a.example")


def test_lying_lengths_inside_the_hello_are_malformed_not_a_crash() -> None:
    rng = random.Random(15)
    hello = client_hello("example.com")
    for _ in range(3000):
        damaged = bytearray(hello)
        for _ in range(rng.randint(1, 4)):
            damaged[rng.randrange(5, len(damaged))] = rng.randrange(256)
        result = sniff(bytes(damaged))
        assert result.verdict in (Verdict.TLS, Verdict.MALFORMED, Verdict.NEED_MORE)


@pytest.mark.parametrize(
    "first",
    [
        record(b"\x01\x5a", kind=0x15),  # a warning alert: Go's server skips it
        record(b"\x01", kind=0x14),  # change_cipher_spec
        record(b"\x00" * 8, kind=0x17),  # application data
        record(b"\x01\x00\x10", kind=0x18),  # heartbeat
    ],
)
def test_another_record_before_the_client_hello_is_malformed(first: bytes) -> None:
    assert sniff(first + client_hello("evil.example")).verdict is Verdict.MALFORMED
    assert sniff(first[:1]).verdict is Verdict.NEED_MORE


def test_binary_protocols_that_start_like_a_record_type_have_no_name() -> None:
    assert sniff(b"\x15\x00\x00\x01rest").verdict is Verdict.NO_NAME


def test_a_hello_in_many_tiny_records_is_refused() -> None:
    assert sniff(refragment(client_hello("allowed.test"), 4)).verdict is Verdict.MALFORMED


def test_a_hello_that_never_ends_is_refused_at_the_limit() -> None:
    endless = record(b"\x01\x00\x3f\xf0" + bytes(16380)) + record(bytes(100))
    assert sniff(endless).verdict is Verdict.MALFORMED


# --- HTTP/1 ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_bytes", "name"),
    [
        (b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", "example.com"),
        (b"GET / HTTP/1.1\r\nhost:Example.COM:8080\r\nAccept: */*\r\n\r\n", "example.com"),
        (b"GET / HTTP/1.1\nHOST: example.com.\n\n", "example.com"),
        (b"\r\nPOST /x HTTP/1.0\r\nHost: a.example\r\n\r\nbody", "a.example"),
        (b"GET / HTTP/1.0\r\n\r\n", None),
        (b"GET / HTTP/1.1\r\nHost:\r\n\r\n", None),
        (b"GET / HTTP/1.1\r\nHost: [2001:db8::1]:80\r\n\r\n", "2001:db8::1"),
        (b"GET / HTTP/1.1\r\nHost: 203.0.113.9\r\n\r\n", "203.0.113.9"),
        (b"GET http://a.example/p HTTP/1.1\r\nHost: a.example\r\n\r\n", "a.example"),
        (b"GET HTTP://A.example:81 HTTP/1.1\r\n\r\n", "a.example"),
        (b"CONNECT b.example:443 HTTP/1.1\r\nHost: b.example:443\r\n\r\n", "b.example"),
        (b"OPTIONS * HTTP/1.1\r\nHost: c.example\r\n\r\n", "c.example"),
        (b"GET /?u=http://evil.example/ HTTP/1.1\r\nHost: c.example\r\n\r\n", "c.example"),
    ],
)
def test_http_requests_give_their_host(request_bytes: bytes, name: str | None) -> None:
    assert sniff(request_bytes) == http(name)


def test_every_prefix_of_a_request_needs_more() -> None:
    request = b"GET /index.html HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\n\r\n"
    for end in range(len(request)):
        assert sniff(request[:end]).verdict is Verdict.NEED_MORE, request[:end]


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost : b.example\r\n\r\n",
        b"GET / HTTP/1.1\r\nX: 1\r\n Host: b.example\r\n\r\n",
        b"GET / HTTP/1.1\r\nno colon here\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a.example/evil\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a.example:80x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a.example, b.example\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: user@a.example\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n",
        b"GET http://evil.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n",
        b"GET http://u@evil.example/ HTTP/1.1\r\n\r\n",
        b"GET ftp://evil.example/ HTTP/1.1\r\n\r\n",
        b"GET evil.example HTTP/1.1\r\n\r\n",
        b"GET /a b HTTP/1.1\r\nHost: evil.example\r\n\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        b"GET / HTTP/1.2\r\nHost: a.example\r\n\r\n",
        b"GET / http/1.1\r\nHost: a.example\r\n\r\n",
        b"G(T / HTTP/1.1\r\nHost: a.example\r\n\r\n",
        # blanks around the request line: lenient servers read the request and its Host
        b"GET / HTTP/1.1 \r\nHost: evil.example\r\n\r\n",
        b"GET / HTTP/1.1\t\r\nHost: evil.example\r\n\r\n",
        b"GET / HTTP/1.1 \nHost: evil.example\n\n",
        b" GET / HTTP/1.1\r\nHost: evil.example\r\n\r\n",
        b"\tGET / HTTP/1.1 \r\nHost: evil.example\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + b"X-Pad: " + b"p" * SNIFF_LIMIT,
        b"\r\n" * (SNIFF_LIMIT // 2),
    ],
)
def test_hostile_requests_are_malformed(request_bytes: bytes) -> None:
    assert sniff(request_bytes).verdict is Verdict.MALFORMED


@pytest.mark.parametrize(
    "first_bytes",
    [
        b"SSH-2.0-OpenSSH_9.6 Debian\r\n",
        b"\x00\x00\x00\x08\x04\xd2\x16\x2f",  # PostgreSQL SSLRequest
        b"0032git-upload-pack /project.git\x00host=a.example\x00",
        b"EHLO client.example\r\n",
        b"GET /\r\n",  # HTTP/0.9: no headers, no name
        b"\x80\x2e\x01\x00\x02",  # SSLv2-style hello: no SNI possible
        b"hello\x01",
    ],
)
def test_other_protocols_have_no_name(first_bytes: bytes) -> None:
    assert sniff(first_bytes).verdict is Verdict.NO_NAME


def test_random_garbage_never_crashes() -> None:
    rng = random.Random(1515)
    for _ in range(3000):
        garbage = rng.randbytes(rng.randint(1, 300))
        if rng.random() < 0.3:
            garbage = b"\x16\x03" + garbage
        elif rng.random() < 0.3:
            garbage = b"GET / HTTP/1.1\r\nHost: " + garbage
        assert isinstance(sniff(garbage), Sniffed)


def test_sniffing_every_byte_of_a_large_head_stays_cheap() -> None:
    head = b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 2700
    started = time.perf_counter()
    for end in range(0, len(head), 16):
        assert sniff(head[:end]).verdict is Verdict.NEED_MORE
    assert time.perf_counter() - started < 2.0


def test_only_the_first_sixteen_kib_count() -> None:
    assert sniff(b"A" * (SNIFF_LIMIT * 4)).verdict is Verdict.MALFORMED
    assert sniff(b"A" * (SNIFF_LIMIT - 1)).verdict is Verdict.NEED_MORE


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        (b"Example.com", "example.com"),
        (b"example.com.", "example.com"),
        (b"_dmarc.example.com", "_dmarc.example.com"),
        (b"127.0.0.1", "127.0.0.1"),
        (b"[2001:DB8::1]", "2001:db8::1"),
        (b"xn--bcher-kva.example", "xn--bcher-kva.example"),
        (b"", None),
        (b".", None),
        (b"a..b", None),
        (b"a b", None),
        (b"[127.0.0.1]", None),
        (b"a" * 254, None),
    ],
)
def test_normalize_name(raw: bytes, name: str | None) -> None:
    assert normalize_name(raw) == name
