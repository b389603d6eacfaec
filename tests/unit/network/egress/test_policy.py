"""The daemon's policy file and its pure decisions: which names, which elements."""

from __future__ import annotations

import ipaddress
import json

import pytest

from alcatraz.config.netgrammar.egress import EgressRule
from alcatraz.config.netgrammar.egress import parse_egress_rule as parse_rendered_entry
from alcatraz.network.egress.policy import (
    DaemonPolicy,
    PolicyError,
    connection_allowed,
    element_script,
    name_allowed,
    rules_for_name,
    set_names,
)


def name_rule(
    name: str,
    *,
    wildcard: bool = False,
    protocols: tuple[str, ...] = (),
    ports: tuple[int, int] | None = None,
) -> EgressRule:
    return EgressRule(name, wildcard, None, protocols, ports)


def policy(**changes: object) -> DaemonPolicy:
    fields: dict[str, object] = {
        "key": "0123456789",
        "interface": "alca-0123456789",
        "listen": "10.213.7.1",
        "mark": 2715418624,
        "egress": ("example.com", "*.example.com:443"),
        "checker_port": 15353,
        "upstreams": ("198.51.100.53", "[2001:db8::53]:5353"),
        "ttl_min": 30,
        "ttl_max": 3600,
        "events": "/state/dir/egress-events.jsonl",
        "nft": ("nft",),
    }
    fields.update(changes)
    return DaemonPolicy(**fields)  # type: ignore[arg-type]


def test_policy_round_trips_through_json() -> None:
    for egress in (("example.com", "*.example.com:443"), (), None):
        original = policy(egress=egress)
        assert DaemonPolicy.from_json(original.to_json()) == original
    data = json.loads(policy().to_json())
    assert data["version"] == 1 and data["egress"] == ["example.com", "*.example.com:443"]


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"version": 2}, "version"),
        ({"version": True}, "version"),
        ({"mark": True}, "'mark'"),
        ({"mark": -1}, "'mark'"),
        ({"mark": 2**32}, "'mark'"),
        ({"checker_port": 0}, "'checker_port'"),
        ({"ttl_min": 0}, "'ttl_min'"),
        ({"ttl_min": 60, "ttl_max": 30}, "ttl_min 60 is above"),
        ({"key": "a b"}, "key"),
        ({"key": ""}, "'key'"),
        ({"interface": "x" * 16}, "interface"),
        ({"listen": "gateway"}, "listen"),
        ({"events": "relative.jsonl"}, "events"),
        ({"upstreams": ["resolver.example"]}, "upstream"),
        ({"upstreams": "198.51.100.53"}, "'upstreams'"),
        ({"nft": []}, "'nft'"),
        ({"egress": ["Example.com"]}, "egress entry"),
        ({"egress": [1]}, "'egress'"),
        ({"extra": 1}, "unknown: ['extra']"),
        ({"ttl_max": float("nan")}, "not JSON"),
    ],
)
def test_policy_is_refused_whole_with_the_field_named(change: dict[str, object], says: str) -> None:
    data = json.loads(policy().to_json())
    data.update(change)
    text = json.dumps(data)
    with pytest.raises(PolicyError, match=says.replace("[", r"\[").replace("]", r"\]")):
        DaemonPolicy.from_json(text)


@pytest.mark.parametrize("text", ["[]", "null", "{", '{"version": 1}', "[" * 100000])
def test_policy_that_is_no_object_or_misses_fields_is_refused(text: str) -> None:
    with pytest.raises(PolicyError):
        DaemonPolicy.from_json(text)


def test_set_names_follow_the_design() -> None:
    names = set_names("0123456789")
    assert names.ea4 == "p_0123456789_ea4" and names.ep6 == "p_0123456789_ep6"
    assert names.lan4 == "p_0123456789_lan4" and names.live == "p_0123456789_live"
    with pytest.raises(PolicyError):
        set_names("x;flush ruleset")


def test_ttl_is_clamped() -> None:
    assert [policy().clamp_ttl(t) for t in (0, 30, 300, 86400)] == [30, 30, 300, 3600]


def test_exact_and_wildcard_names() -> None:
    rules = [name_rule("example.com"), name_rule("example.org", wildcard=True)]
    assert rules_for_name(rules, "example.com") == [rules[0]]
    assert rules_for_name(rules, "EXAMPLE.com.") == [rules[0]]
    assert rules_for_name(rules, "www.example.com") == []
    assert rules_for_name(rules, "www.example.org") == [rules[1]]
    assert rules_for_name(rules, "a.b.Example.ORG.") == [rules[1]]
    assert rules_for_name(rules, "example.org") == []  # the apex is not a subdomain
    assert rules_for_name(rules, "badexample.org") == []
    assert rules_for_name(rules, "example.org.evil.test") == []
    assert rules_for_name(rules, "") == [] and rules_for_name(rules, ".") == []
    assert not name_allowed(rules, "example\\.com")  # one label with a dot in it
    assert not name_allowed(rules, "evil\\.example.org")  # label "evil.example" under org
    assert not name_allowed(rules, "x\\032y.example.org")
    assert name_allowed(rules, "example.com")


def test_address_entries_never_match_a_name() -> None:
    rule = EgressRule(None, False, ipaddress.ip_network("203.0.113.0/24"), (), None)
    assert not name_allowed([rule], "203.0.113.1")


def test_connection_allowed_by_protocol_and_port() -> None:
    rules = [
        name_rule("web.test", ports=(443, 443), protocols=("tcp", "udp")),
        name_rule("git.test", protocols=("tcp",), ports=(22, 23)),
        name_rule("ntp.test", protocols=("udp",), ports=(1, 65535)),
        name_rule("any.test"),
    ]
    assert connection_allowed(rules, "web.test", "tcp", 443)
    assert not connection_allowed(rules, "web.test", "tcp", 80)
    assert connection_allowed(rules, "git.test", "tcp", 23)
    assert not connection_allowed(rules, "git.test", "udp", 22)
    assert connection_allowed(rules, "ntp.test", "udp", 9)
    assert not connection_allowed(rules, "ntp.test", "tcp", 123)
    assert connection_allowed(rules, "any.test", "tcp", 1)
    assert not connection_allowed(rules, "other.test", "tcp", 443)


V4 = ipaddress.ip_address("203.0.113.7")
V6 = ipaddress.ip_address("2001:db8::7")


def test_every_protocol_entry_fills_the_address_sets_with_the_refresh_trick() -> None:
    script = element_script("alcatraz", "k1", [name_rule("a.test")], [V4, V6, V4], 300)
    assert script == (
        "add element inet alcatraz p_k1_ea4 { 203.0.113.7 timeout 300s }\n"
        "delete element inet alcatraz p_k1_ea4 { 203.0.113.7 }\n"
        "add element inet alcatraz p_k1_ea4 { 203.0.113.7 timeout 300s }\n"
        "add element inet alcatraz p_k1_ea6 { 2001:db8::7 timeout 300s }\n"
        "delete element inet alcatraz p_k1_ea6 { 2001:db8::7 }\n"
        "add element inet alcatraz p_k1_ea6 { 2001:db8::7 timeout 300s }\n"
    )


def test_port_entries_fill_the_port_sets_per_protocol() -> None:
    rules = [
        name_rule("a.test", protocols=("tcp", "udp"), ports=(443, 443)),  # "a.test:443"
        name_rule("a.test", protocols=("tcp",), ports=(22, 23)),
        name_rule(
            "a.test", protocols=("udp",), ports=(1, 65535)
        ),  # every port: 1-65535, as lan-access
    ]
    script = element_script("alcatraz", "k1", rules, [V4], 60)
    first = script.splitlines()[0]
    assert first == (
        "add element inet alcatraz p_k1_ep4 { 203.0.113.7 . tcp . 443 timeout 60s, "
        "203.0.113.7 . udp . 443 timeout 60s, 203.0.113.7 . tcp . 22-23 timeout 60s, "
        "203.0.113.7 . udp . 1-65535 timeout 60s }"
    )
    assert script.splitlines()[1].startswith("delete element inet alcatraz p_k1_ep4 { ")
    assert "timeout" not in script.splitlines()[1]
    six = element_script("alcatraz", "k1", rules[:1], [V6], 60)
    assert "p_k1_ep6 { 2001:db8::7 . tcp . 443 timeout 60s," in six


def test_an_every_protocol_entry_covers_the_port_entries() -> None:
    rules = [name_rule("a.test", protocols=("tcp",), ports=(443, 443)), name_rule("a.test")]
    script = element_script("alcatraz", "k1", rules, [V4], 60)
    assert "ep4" not in script and "p_k1_ea4 { 203.0.113.7 timeout 60s }" in script


def test_nothing_to_add_is_an_empty_script() -> None:
    assert element_script("alcatraz", "k1", [name_rule("a.test")], [], 60) == ""
    assert element_script("alcatraz", "k1", [], [V4], 60) == ""


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("example.com", name_rule("example.com")),
        (
            "*.example.com:443",
            name_rule("example.com", wildcard=True, protocols=("tcp", "udp"), ports=(443, 443)),
        ),
        (
            "udp://ntp.example.com:123",
            name_rule("ntp.example.com", protocols=("udp",), ports=(123, 123)),
        ),
        (
            "tcp://git.example.com:22-23",
            name_rule("git.example.com", protocols=("tcp",), ports=(22, 23)),
        ),
        ("tcp://x.test", name_rule("x.test", protocols=("tcp",), ports=(1, 65535))),
        (
            "203.0.113.0/24:443",
            EgressRule(
                None, False, ipaddress.ip_network("203.0.113.0/24"), ("tcp", "udp"), (443, 443)
            ),
        ),
        (
            "[2001:db8::/32]:443",
            EgressRule(
                None, False, ipaddress.ip_network("2001:db8::/32"), ("tcp", "udp"), (443, 443)
            ),
        ),
        ("2001:db8::/32", EgressRule(None, False, ipaddress.ip_network("2001:db8::/32"), (), None)),
    ],
)
def test_rendered_entries_read_back(text: str, rule: EgressRule) -> None:
    assert parse_rendered_entry(text) == rule


@pytest.mark.parametrize(
    "text",
    ["Example.com", "a.test:0", "a.test:9-8", "a.test:70000", "*.*.a", "a b"],
)
def test_bad_rendered_entries_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rendered_entry(text)
