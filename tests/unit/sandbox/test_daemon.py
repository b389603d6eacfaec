"""The daemon's policy file that `up` writes (`sandbox.daemon`): what the daemon enforces."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

from alcatraz.config.load import load_config
from alcatraz.network.egress.policy import DaemonPolicy
from alcatraz.network.egress.rules import CHECKER_PORT, MARK
from alcatraz.network.plan import ProjectNetwork, make_policy
from alcatraz.sandbox import daemon

NETWORK = ProjectNetwork(
    "alca-0123456789",
    "alca-0123456789",
    ipaddress.IPv4Network("10.213.7.0/24"),
    ipaddress.IPv4Address("10.213.7.1"),
)


def _document(tmp_path: Path, toml: str) -> dict[str, object]:
    (tmp_path / ".alca.toml").write_text('image = "alpine:3.21"\n' + toml, encoding="utf-8")
    config = load_config(tmp_path, environ={"HOME": str(tmp_path / "home")}, cwd=tmp_path)
    policy = make_policy(
        "01234567-89ab-cdef-0123-456789abcdef",
        NETWORK,
        allow_all=config.allow_all_lan,
        rules=config.lan_rules,
        proxy=None,
        egress=config.egress,
        own_resolver=True,
    )
    written = daemon.daemon_policy(config, policy, tmp_path, ["nft"])
    assert DaemonPolicy.from_json(written.to_json()) == written  # what the daemon reads back
    document: dict[str, object] = json.loads(written.to_json())
    return document


def test_egress_entries_reach_the_daemon_in_canonical_form(tmp_path: Path) -> None:
    document = _document(
        tmp_path,
        '[network]\negress = ["example.com", "*.example.org:443", "udp://ntp.example.net:123"]\n'
        'dns = ["198.51.100.53"]\n',
    )
    assert document["egress"] == ["example.com", "*.example.org:443", "udp://ntp.example.net:123"]
    assert document["upstreams"] == ["198.51.100.53"]
    assert document["listen"] == "10.213.7.1"
    assert document["key"] == "0123456789"
    assert document["mark"] == MARK and document["checker_port"] == CHECKER_PORT
    assert document["events"] == str(tmp_path / daemon.EVENTS_FILE)


def test_absent_egress_is_null_and_empty_egress_is_an_empty_list(tmp_path: Path) -> None:
    assert _document(tmp_path, "")["egress"] is None
    assert _document(tmp_path, "[network]\negress = []\n")["egress"] == []
