"""The name checker behind a real nft redirect, between two network namespaces.

Namespace "client" (the sandbox's stand-in) reaches 203.0.113.250:443 through namespace
"host", whose own nft table (in that namespace only: the machine's ruleset is untouched)
redirects it to the checker; the checker reads the original destination from conntrack
and relays to the echo server on 203.0.113.250. Only TEST-NET addresses inside the two
namespaces, /30 and /32 routes; nothing leaves them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.network.egress.hellos import client_hello

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
LINK_HOST, LINK_CLIENT, UPSTREAM = "203.0.113.241", "203.0.113.242", "203.0.113.250"
LINK6_HOST, LINK6_CLIENT, UPSTREAM6 = "2001:db8:e9c::1", "2001:db8:e9c::2", "2001:db8:e9c:1::250"
CHECKER_PORT = 15443


def run(*argv: str, stdin: str | None = None) -> None:
    subprocess.run(argv, input=stdin, text=True, check=True, capture_output=True)


def in_namespace(namespace: str, *argv: str) -> list[str]:
    return ["ip", "netns", "exec", namespace, *argv]


@pytest.fixture
def namespaces() -> Iterator[tuple[str, str]]:
    if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("nft"):
        pytest.skip("needs root, iproute2 and nft")
    host, client = f"egc-h-{os.getpid()}", f"egc-c-{os.getpid()}"
    run("ip", "netns", "add", host)
    try:
        run("ip", "netns", "add", client)
        try:
            _wire(host, client)
            yield host, client
        finally:
            run("ip", "netns", "del", client)
    finally:
        run("ip", "netns", "del", host)


def _wire(host: str, client: str) -> None:
    run("ip", "link", "add", "egc0", "netns", host, "type", "veth", "peer", "egc1", "netns", client)
    ends = ((host, "egc0", LINK_HOST, LINK6_HOST), (client, "egc1", LINK_CLIENT, LINK6_CLIENT))
    for namespace, device, address, address6 in ends:
        ip = in_namespace(namespace, "ip")
        run(*ip, "link", "set", "lo", "up")
        run(*ip, "addr", "add", f"{address}/30", "dev", device)
        run(*ip, "-6", "addr", "add", f"{address6}/126", "dev", device, "nodad")
        run(*ip, "link", "set", device, "up")
    run(*in_namespace(host, "ip", "addr", "add", f"{UPSTREAM}/32", "dev", "lo"))
    run(*in_namespace(host, "ip", "-6", "addr", "add", f"{UPSTREAM6}/128", "dev", "lo"))
    run(*in_namespace(client, "ip", "route", "add", f"{UPSTREAM}/32", "via", LINK_HOST))
    run(*in_namespace(client, "ip", "-6", "route", "add", f"{UPSTREAM6}/128", "via", LINK6_HOST))
    rules = f"""table inet egctest {{
        chain prerouting {{
            type nat hook prerouting priority dstnat;
            iifname "egc0" ip daddr {UPSTREAM} tcp dport 443 redirect to :{CHECKER_PORT}
            iifname "egc0" ip6 daddr {UPSTREAM6} tcp dport 443 redirect to :{CHECKER_PORT}
        }}
    }}"""
    run(*in_namespace(host, "nft", "-f", "-"), stdin=rules)


@pytest.fixture
def checker(namespaces: tuple[str, str]) -> Iterator[subprocess.Popen[str]]:
    host, _ = namespaces
    serve = in_namespace(
        host, sys.executable, "-m", "tests.integration.egress_checker_ns", "serve",
        LINK_HOST, str(CHECKER_PORT), UPSTREAM, LINK6_HOST, UPSTREAM6,
    )  # fmt: skip
    process = subprocess.Popen(serve, cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    yield process
    process.terminate()
    process.wait(10)


def connect(client: str, address: str, port: int, first: bytes) -> str:
    argv = in_namespace(
        client, sys.executable, "-m", "tests.integration.egress_checker_ns", "client",
        address, str(port), first.hex(),
    )  # fmt: skip
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=30, check=True)
    return done.stdout.strip()


def events(process: subprocess.Popen[str], count: int) -> list[dict[str, object]]:
    assert process.stdout is not None
    return [json.loads(process.stdout.readline()) for _ in range(count)]


def test_names_are_checked_behind_a_real_redirect(
    namespaces: tuple[str, str], checker: subprocess.Popen[str]
) -> None:
    _, client = namespaces
    allowed = b"GET / HTTP/1.1\r\nHost: allowed.test\r\n\r\n"
    hello = client_hello("allowed.test")
    started = time.monotonic()
    assert connect(client, UPSTREAM, 443, allowed) == f"echo {allowed.hex()}"
    assert connect(client, UPSTREAM, 443, hello) == f"echo {hello.hex()}"
    assert connect(client, UPSTREAM, 443, client_hello("evil.test")) == "reset"
    assert connect(client, LINK_HOST, CHECKER_PORT, allowed) == "reset"
    refused = events(checker, 2)
    assert (refused[0]["name"], refused[0]["address"], refused[0]["port"]) == (
        "evil.test",
        UPSTREAM,
        443,
    )
    assert refused[1]["why"] == "connection to the checker itself"
    assert time.monotonic() - started < 20


def test_names_are_checked_behind_a_real_ipv6_redirect(
    namespaces: tuple[str, str], checker: subprocess.Popen[str]
) -> None:
    _, client = namespaces
    hello = client_hello("allowed.test")
    assert connect(client, UPSTREAM6, 443, hello) == f"echo {hello.hex()}"
    assert connect(client, UPSTREAM6, 443, client_hello("evil.test")) == "reset"
    (refused,) = events(checker, 1)
    assert (refused["name"], refused["address"], refused["port"]) == ("evil.test", UPSTREAM6, 443)
