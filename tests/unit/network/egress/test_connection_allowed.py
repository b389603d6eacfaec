"""What the name checker asks of the policy: may this name be reached on this port."""

from __future__ import annotations

import ipaddress

from alcatraz.config.netgrammar.egress import EgressRule
from alcatraz.network.egress.policy import connection_allowed
from tests.unit.network.egress.conftest import name_rule


def test_a_plain_name_matches_itself_only() -> None:
    rules = [name_rule("example.com")]
    assert connection_allowed(rules, "example.com", "tcp", 443)
    assert not connection_allowed(rules, "www.example.com", "tcp", 443)
    assert not connection_allowed(rules, "badexample.com", "tcp", 443)


def test_a_wildcard_matches_subdomains_not_the_apex() -> None:
    rules = [name_rule("*.example.com")]
    assert connection_allowed(rules, "a.b.example.com", "tcp", 22)
    assert not connection_allowed(rules, "example.com", "tcp", 22)
    assert not connection_allowed(rules, "aexample.com", "tcp", 22)


def test_ports_and_protocols_as_written() -> None:
    rules = [
        EgressRule("git.example", False, None, ("tcp",), (22, 23)),
        EgressRule("ntp.example", False, None, ("udp",), (1, 65535)),
    ]
    assert connection_allowed(rules, "git.example", "tcp", 23)
    assert not connection_allowed(rules, "git.example", "tcp", 24)
    assert not connection_allowed(rules, "ntp.example", "tcp", 123)
    assert connection_allowed(rules, "ntp.example", "udp", 123)


def test_a_network_entry_allows_no_name() -> None:
    rules = [EgressRule(None, False, ipaddress.ip_network("203.0.113.0/24"), (), None)]
    assert not connection_allowed(rules, "203.0.113.5", "tcp", 443)
