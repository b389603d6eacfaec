"""Egress attacks from inside the sandbox (issue 15): the variants the acceptance tests do
not cover, each a truth-table row; positive controls first (the same bytes from the host
reach the lab and get the answer the row looks for, so a BLOCK inside comes from alcatraz).

Same lab as test_egress.py (tests/lab/names.py; `dns = ["10.79.53.53"]`, the Debian test
image). The hostile bytes are built here and sent by tests/lab/egressattack.py. Only lab
namespaces are ever addressed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import dns.message
import dns.name
import dns.rrset
import pytest

from tests.integration.egress_helpers import (
    DEBIAN,
    TruthTable,
    apply_config,
    parse_probe,
    rows,
    set_has,
    set_name,
)
from tests.integration.isolation_helpers import Project, Workspace, helper_workspace, sh
from tests.lab.names import ALLOWED_NAME, APEX_NAME, BLOCKED_NAME, CDN4, DNS4, NamesLab
from tests.lab.topology import Lab

pytestmark = pytest.mark.integration

ATTACK_FILE = Path(__file__).parents[1] / "lab" / "egressattack.py"
ATTACK = ATTACK_FILE.read_text()
LAN_NAME = "lan.alca.test"  # the lab answers it with 10.79.53.53: a private address
EGRESS = [ALLOWED_NAME, f"*.{APEX_NAME}", LAN_NAME]
CHECKER_PORT = 15353

Command = list[Any]


@pytest.fixture(scope="module")
def egress_lab(lab_session: Lab) -> Iterator[NamesLab]:
    lab_session.ensure_up()
    lab = NamesLab().setup()
    try:
        yield lab
    finally:
        lab.teardown()


@pytest.fixture(scope="module")
def workspace(egress_lab: NamesLab) -> Iterator[Workspace]:
    with helper_workspace("egattack", ALCA_TEST_HOST_LAYER_ONLY="") as ws:
        yield ws


@pytest.fixture(scope="module")
def guarded(engine: object, workspace: Workspace) -> Iterator[Project]:
    name = str(getattr(engine, "executable", engine))
    assert sh([name, "image", "inspect", DEBIAN]).returncode == 0, f"{name} has no {DEBIAN}"
    project = workspace.project(name, f"ea-{name}")
    apply_config(project, EGRESS)
    yield project
    project.alca("down")


# --- running the attack probe -------------------------------------------------------------


def attack_in_sandbox(project: Project, commands: Sequence[Command]) -> list[Any]:
    done = project.exec_alca(["python3", "-c", ATTACK, json.dumps(list(commands))])
    return parse_probe(done, commands)


def attack_on_host(commands: Sequence[Command]) -> list[Any]:
    done = subprocess.run(
        [sys.executable, str(ATTACK_FILE), json.dumps(list(commands))],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return parse_probe(done, commands)


def attack_rows(
    table: TruthTable, project: Project, cases: Sequence[tuple[str, Command, str]]
) -> list[Any]:
    """(label, command, expected) rows run in the sandbox, in order."""
    results = attack_in_sandbox(project, [command for _, command, _ in cases])
    for (label, _, expect), result in zip(cases, results, strict=True):
        table.add(label, expect, result["ok"], result["detail"])
    return results


def attack_controls(table: TruthTable, cases: Sequence[tuple[str, Command, str]]) -> None:
    results = attack_on_host([command for _, command, _ in cases])
    for (label, _, _), result in zip(cases, results, strict=True):
        table.add(f"control (host): {label}", "PASS", result["ok"], result["detail"])


def http_case(label: str, request: bytes, site: str, expect: str) -> tuple[str, Command, str]:
    """Raw bytes to the shared address's port 80; PASS when the lab answered for `site`."""
    return label, ["raw", CDN4, 80, request.hex(), f"host={site} "], expect


def query_hex(name: str | dns.name.Name, *, extra: str | None = None, questions: int = 1) -> str:
    # An extra record rides without EDNS: with the OPT record it would be two, which the
    # relay's header check refuses before the daemon looks.
    message = dns.message.make_query(name, "A", use_edns=0 if extra is None else None)
    if questions == 2:
        message.question.append(dns.rrset.RRset(dns.name.from_text(BLOCKED_NAME), 1, 1))
    if extra is not None:
        message.additional.append(dns.rrset.from_text(extra, 60, "IN", "TXT", '"data"'))
    return str(message.to_wire().hex())


def lab_saw(lab: NamesLab, name: str) -> int:
    return sum(1 for query in lab.queries() if str(query["name"]).lower() == name.lower())


# --- the name checker ---------------------------------------------------------------------


def test_http_variants_cannot_smuggle_a_refused_host(guarded: Project) -> None:
    table = TruthTable(f"[{guarded.engine}] HTTP to the shared {CDN4}: Host tricks")
    blocked = BLOCKED_NAME.encode()
    hostile = [
        http_case("request line with a trailing space, Host blocked",
                  b"GET / HTTP/1.1 \r\nHost: " + blocked + b"\r\n\r\n", BLOCKED_NAME, "BLOCK"),
        http_case("request line with a trailing tab, Host blocked",
                  b"GET / HTTP/1.1\t\r\nHost: " + blocked + b"\r\n\r\n", BLOCKED_NAME, "BLOCK"),
        http_case("Host in upper case",
                  b"GET / HTTP/1.1\r\nHost: " + blocked.upper() + b"\r\n\r\n",
                  BLOCKED_NAME.upper(), "BLOCK"),
        http_case("Host with a trailing dot",
                  b"GET / HTTP/1.1\r\nHost: " + blocked + b".\r\n\r\n", BLOCKED_NAME + ".",
                  "BLOCK"),
        http_case("absolute-form target blocked, Host allowed",
                  b"GET http://" + blocked + b"/ HTTP/1.1\r\nHost: " + ALLOWED_NAME.encode()
                  + b"\r\n\r\n", ALLOWED_NAME, "BLOCK"),
        http_case("Host: another address (IP literal)",
                  b"GET / HTTP/1.1\r\nHost: 203.0.113.249\r\n\r\n", "203.0.113.249", "BLOCK"),
    ]  # fmt: skip
    neighbours = [
        http_case("Host allowed (neighbour)",
                  b"GET / HTTP/1.1\r\nHost: " + ALLOWED_NAME.encode() + b"\r\n\r\n",
                  ALLOWED_NAME, "PASS"),
        http_case("HTTP/1.0 without Host (no name: the address is allowed)",
                  b"GET / HTTP/1.0\r\n\r\n", "-", "PASS"),
        http_case("Host: its own address (names nothing more)",
                  b"GET / HTTP/1.1\r\nHost: " + CDN4.encode() + b"\r\n\r\n", CDN4, "PASS"),
    ]  # fmt: skip
    attack_controls(table, hostile)
    rows(table, guarded, [(["resolve", ALLOWED_NAME], "PASS")])
    attack_rows(table, guarded, [*neighbours, *hostile])
    table.check()


def test_tls_split_into_tiny_segments_is_still_checked(guarded: Project) -> None:
    table = TruthTable(f"[{guarded.engine}] ClientHello in 1- and 7-byte TCP segments")
    hostile = [(f"SNI {BLOCKED_NAME}, {n}-byte segments", ["hello", CDN4, BLOCKED_NAME, n],
                "BLOCK") for n in (1, 7)]  # fmt: skip
    attack_controls(table, hostile)
    rows(table, guarded, [(["resolve", ALLOWED_NAME], "PASS")])
    cases = [
        (f"SNI {ALLOWED_NAME}, 1-byte segments", ["hello", CDN4, ALLOWED_NAME, 1], "PASS"),
        *hostile,
    ]
    attack_rows(table, guarded, cases)
    table.check()


def test_the_checker_port_and_gateway_are_not_a_way_out(guarded: Project) -> None:
    table = TruthTable(f"[{guarded.engine}] the gateway's checker port, dialled directly")
    request = b"GET / HTTP/1.1\r\nHost: " + ALLOWED_NAME.encode() + b"\r\n\r\n"
    attack_rows(
        table,
        guarded,
        [
            (f"gateway:{CHECKER_PORT} with an allowed Host",
             ["raw", "resolv", CHECKER_PORT, request.hex(), "host="], "BLOCK"),
        ],
    )  # fmt: skip
    table.check()


def test_held_connections_do_not_stop_dns(guarded: Project) -> None:
    """1100 silent connections (more than the checker keeps) do not stop the resolver; new
    TCP may be refused meanwhile: the agent only starves itself (the detail says)."""
    table = TruthTable(f"[{guarded.engine}] a slowloris against the checker")
    rows(table, guarded, [(["resolve", ALLOWED_NAME], "PASS")])
    attack_rows(
        table,
        guarded,
        [("1100 silent connections, then a lookup",
          ["hold", CDN4, 80, 1100, ALLOWED_NAME], "PASS")],
    )  # fmt: skip
    table.check()


# --- DNS ------------------------------------------------------------------------------------


def test_dns_tricks_neither_resolve_nor_reach_the_lab(
    egress_lab: NamesLab, guarded: Project
) -> None:
    table = TruthTable(f"[{guarded.engine}] DNS tricks against the closed resolver")
    carried = f"c2VjcmV0-{uuid.uuid4().hex[:8]}.{BLOCKED_NAME}"
    fresh = f"probe-{uuid.uuid4().hex[:8]}.{APEX_NAME}"  # allowed by `*.wild.alca.test`
    escaped = dns.name.Name([b"allowed.alca", b"test", b""])
    before = lab_saw(egress_lab, BLOCKED_NAME)
    attack_rows(
        table,
        guarded,
        [
            ("0x20 casing of an allowed name",
             ["query", query_hex("AlLoWeD.aLcA.TeSt"), "udp"], "PASS"),
            ("blocked name in upper case", ["query", query_hex(BLOCKED_NAME.upper()), "udp"],
             "BLOCK"),
            ("blocked name in upper case, TCP", ["query", query_hex(BLOCKED_NAME.upper()), "tcp"],
             "BLOCK"),
            ("one label 'allowed.alca' under test (an escaped dot)",
             ["query", query_hex(escaped), "udp"], "BLOCK"),
            ("two questions: allowed, then blocked",
             ["query", query_hex(ALLOWED_NAME, questions=2), "udp"], "BLOCK"),
            ("allowed question carrying a blocked name in an additional record",
             ["query", query_hex(fresh, extra=carried + "."), "udp"], "BLOCK"),
            ("the same question alone (neighbour)", ["query", query_hex(fresh), "udp"], "PASS"),
        ],
    )  # fmt: skip
    table.add(f"lab never saw {BLOCKED_NAME} in any case", "PASS",
              lab_saw(egress_lab, BLOCKED_NAME) == before)  # fmt: skip
    table.add("lab saw the fresh allowed name once (the neighbour only)", "PASS",
              lab_saw(egress_lab, fresh) == 1, str(lab_saw(egress_lab, fresh)))  # fmt: skip
    table.check()


def test_an_allowed_name_that_resolves_into_the_lan_does_not_open_it(guarded: Project) -> None:
    """DNS rebinding: `lan.alca.test` is allowed and answers 10.79.53.53 (the lab resolver,
    private): its address may enter the set, but lan-access still governs it."""
    table = TruthTable(f"[{guarded.engine}] {LAN_NAME} -> {DNS4} (a private address)")
    fresh = f"probe-{uuid.uuid4().hex[:8]}.{APEX_NAME}"
    results = rows(
        table,
        guarded,
        [
            (["resolve", LAN_NAME], "PASS"),
            (["dns", DNS4, fresh, "udp"], "BLOCK"),
            (["dns", DNS4, fresh, "tcp"], "BLOCK"),
        ],
    )
    table.add(f"  ... to {DNS4}", "PASS", results[0]["detail"] == DNS4, results[0]["detail"])
    found, detail = set_has(set_name(guarded, "ea4"), DNS4)
    print(f"(informational) {DNS4} in the ea4 set: {found} {detail}")
    table.check()


def test_hostile_names_do_not_reach_the_terminal_through_net_log(guarded: Project) -> None:
    table = TruthTable(f"[{guarded.engine}] names with ESC and bidi controls in net log")
    evil = [
        dns.name.Name([b"\x1b[31mred\x1b]0;title\x07", b"alca", b"test", b""]),
        dns.name.Name(["\u202egnp.exe".encode(), b"alca", b"test", b""]),
        dns.name.Name([b"\x00nul\xff", b"alca", b"test", b""]),
    ]
    attack_rows(
        table,
        guarded,
        [(f"query {name.to_text()}", ["query", query_hex(name), "udp"], "BLOCK") for name in evil],
    )
    log = guarded.alca("net", "log")
    text = log.stdout + log.stderr
    bad = sorted({f"U+{ord(c):04X}" for c in text if c in "\x1b\x07\x00\u202e" or ord(c) < 9})
    table.add("net log exits 0", "PASS", log.returncode == 0, log.output[-200:])
    table.add("net log prints no ESC, BEL, NUL or bidi control", "PASS", not bad, " ".join(bad))
    table.add("net log still names the refused names (escaped)", "PASS", "red" in text)
    table.check()
