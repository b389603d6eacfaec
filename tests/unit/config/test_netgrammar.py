"""Tests of the lan-access, ports and proxy grammars (security test plan CFG-R, CFG-X, Ports)."""

from __future__ import annotations

import ipaddress
import string
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alcatraz.config.netgrammar import (
    ALCA_TOKENS,
    MAX_TEXT_LENGTH,
    AlcaToken,
    GrammarError,
    LanRule,
    PortMapping,
    ProxyAddress,
    parse_lan_access,
    parse_lan_rule,
    parse_port,
    parse_proxy,
    port_from_object,
    render_lan_rule,
    render_port,
    render_proxy,
    resolve_proxy,
    resolve_tokens,
)
from alcatraz.errors import quote

HOST = AlcaToken("HOST_IP")
TCP = ("tcp",)
UDP = ("udp",)
BOTH = ("tcp", "udp")
ALL = (1, 65535)


def v4(text: str) -> IPv4Network:
    return IPv4Network(text)


def v6(text: str) -> IPv6Network:
    return IPv6Network(text)


def lan(text: str) -> LanRule:
    """Parse a text that is known to be a rule, not "*"."""
    rule = parse_lan_rule(text)
    assert isinstance(rule, LanRule)
    return rule


def rejected(parse: Callable[[Any], object], value: object) -> GrammarError:
    with pytest.raises(GrammarError) as info:
        parse(value)
    return info.value


def assert_good_error(error: GrammarError, text: str, expected: str) -> None:
    """The message names the problem, quotes the input, starts lower case; a hint exists."""
    assert expected in error.message
    assert text == "" or quote(text) in error.message
    assert not error.message[0].isupper()
    assert error.hint


# --- lan-access: accepted ----------------------------------------------------------------------

LAN_ACCEPT = [
    # plain addresses: any protocol, no L4 match
    ("192.168.1.10", LanRule(v4("192.168.1.10/32"), (), None)),
    ("10.0.0.0/8", LanRule(v4("10.0.0.0/8"), (), None)),
    ("0.0.0.0/0", LanRule(v4("0.0.0.0/0"), (), None)),
    ("::/0", LanRule(v6("::/0"), (), None)),
    ("fd00::1", LanRule(v6("fd00::1/128"), (), None)),
    ("FD00::1", LanRule(v6("fd00::1/128"), (), None)),
    ("fe80::/10", LanRule(v6("fe80::/10"), (), None)),
    ("[fe80::/10]", LanRule(v6("fe80::/10"), (), None)),
    ("[fe80::/10]:*", LanRule(v6("fe80::/10"), (), None)),
    ("10.0.0.1:*", LanRule(v4("10.0.0.1/32"), (), None)),
    ("*://10.0.0.1", LanRule(v4("10.0.0.1/32"), (), None)),
    ("*://10.0.0.1:*", LanRule(v4("10.0.0.1/32"), (), None)),
    ("${alca:HOST_IP}", LanRule(HOST, (), None)),
    # bare IPv6 never carries a port (upstream behaviour)
    ("fe80::1:8080", LanRule(v6("fe80::1:8080/128"), (), None)),
    ("64:ff9b::1.2.3.4", LanRule(v6("64:ff9b::102:304/128"), (), None)),
    # a port without prefix is TCP only
    ("192.168.1.10:8080", LanRule(v4("192.168.1.10/32"), TCP, (8080, 8080))),
    ("192.168.1.0/24:443", LanRule(v4("192.168.1.0/24"), TCP, (443, 443))),
    ("[fd00::1]:443", LanRule(v6("fd00::1/128"), TCP, (443, 443))),
    ("[fd00::/8]:22", LanRule(v6("fd00::/8"), TCP, (22, 22))),
    ("${alca:HOST_IP}:8080", LanRule(HOST, TCP, (8080, 8080))),
    ("10.0.0.1:1", LanRule(v4("10.0.0.1/32"), TCP, (1, 1))),
    ("10.0.0.1:65535", LanRule(v4("10.0.0.1/32"), TCP, (65535, 65535))),
    # port ranges (extension)
    ("10.0.0.1:8000-8100", LanRule(v4("10.0.0.1/32"), TCP, (8000, 8100))),
    ("10.0.0.1:80-80", LanRule(v4("10.0.0.1/32"), TCP, (80, 80))),
    ("udp://10.0.0.1:5000-5010", LanRule(v4("10.0.0.1/32"), UDP, (5000, 5010))),
    # explicit protocol: without port or with :* means that protocol on every port
    ("tcp://10.0.0.1", LanRule(v4("10.0.0.1/32"), TCP, ALL)),
    ("udp://10.0.0.1", LanRule(v4("10.0.0.1/32"), UDP, ALL)),
    ("udp://10.0.0.1:*", LanRule(v4("10.0.0.1/32"), UDP, ALL)),
    ("tcp://[::1]", LanRule(v6("::1/128"), TCP, ALL)),
    ("tcp://${alca:HOST_IP}", LanRule(HOST, TCP, ALL)),
    ("udp://10.0.0.53:53", LanRule(v4("10.0.0.53/32"), UDP, (53, 53))),
    ("tcp://10.0.0.1:80", LanRule(v4("10.0.0.1/32"), TCP, (80, 80))),
    # *:// with a port is TCP and UDP
    ("*://10.0.0.53:53", LanRule(v4("10.0.0.53/32"), BOTH, (53, 53))),
    ("*://[fd00::53]:53", LanRule(v6("fd00::53/128"), BOTH, (53, 53))),
    ("*://${alca:HOST_IP}:53", LanRule(HOST, BOTH, (53, 53))),
    ("*", "*"),
]


@pytest.mark.parametrize(("text", "expected"), LAN_ACCEPT)
def test_lan_rule_accepted(text, expected):
    rule = parse_lan_rule(text)
    assert rule == expected
    if isinstance(rule, LanRule):
        canonical = render_lan_rule(rule)
        assert parse_lan_rule(canonical) == rule
        assert render_lan_rule(lan(canonical)) == canonical


# Each group is one rule written differently: all must render the same canonical text, which is
# what reaches nft.
LAN_EQUIVALENT = [
    ["10.0.0.1", "10.0.0.1:*", "*://10.0.0.1", "*://10.0.0.1:*", "10.0.0.1/32"],
    ["10.0.0.1:80", "tcp://10.0.0.1:80", "10.0.0.1:80-80", "tcp://10.0.0.1/32:80"],
    ["tcp://10.0.0.1", "tcp://10.0.0.1:*", "tcp://10.0.0.1:1-65535", "10.0.0.1:1-65535"],
    ["fd00::1", "[fd00::1]", "[fd00::1]:*", "*://fd00::1", "FD00:0:0::1", "fd00::1/128"],
    ["[fd00::1]:443", "tcp://[fd00::1]:443", "tcp://[FD00::0:1]:443"],
    ["*://10.0.0.53:53", "*://10.0.0.53:53-53"],
]


@pytest.mark.parametrize("group", LAN_EQUIVALENT, ids=lambda g: g[0])
def test_lan_rule_equivalents_render_the_same(group):
    rendered = {render_lan_rule(lan(text)) for text in group}
    assert len(rendered) == 1, rendered


@pytest.mark.parametrize(
    ("rule", "text"),
    [
        (LanRule(v4("10.0.0.1/32"), (), None), "10.0.0.1"),
        (LanRule(v4("10.0.0.0/8"), TCP, (80, 80)), "tcp://10.0.0.0/8:80"),
        (LanRule(v6("fd00::/8"), UDP, (53, 60)), "udp://[fd00::/8]:53-60"),
        (LanRule(v6("fd00::1/128"), (), None), "fd00::1"),
        (LanRule(HOST, BOTH, (53, 53)), "*://${alca:HOST_IP}:53"),
        (LanRule(v4("10.0.0.1/32"), TCP, ALL), "tcp://10.0.0.1:1-65535"),
    ],
)
def test_render_lan_rule_canonical_text(rule, text):
    assert render_lan_rule(rule) == text


# --- lan-access: rejected ----------------------------------------------------------------------

LAN_REJECT = [
    # empty, whitespace, injection
    ("", "empty lan-access rule"),
    ("   ", "is blank"),
    ("\t", "is blank"),
    (" 192.168.1.1 ", "contains whitespace"),
    (" * ", "contains whitespace"),
    ("*\n", "contains whitespace"),
    ("10.0.0.1 accept\n", "contains whitespace"),
    ("10.0.0.1\naccept", "contains whitespace"),
    ("10.0.0.1;accept", 'invalid character ";"'),
    ("10.0.0.1:80;drop", 'invalid character ";"'),
    ("10.0.0.1\x00", "control character"),
    ("10.0.0.1\x1b[0m", "control character"),
    ("10.0.0.1\u200b", "control character"),
    ('10.0.0.1"', "invalid character"),
    ("10.0.0.1#x", 'invalid character "#"'),
    ("１0.0.0.1", "invalid character"),  # full-width digit
    ("10.0.0.١", "invalid character"),  # Arabic-Indic digit
    # ports
    ("192.168.1.1:", "missing port"),
    (":8080", "missing address before ':'"),
    ("192.168.1.1:0", "port 0 in"),
    ("192.168.1.1:65536", "port 65536 in"),
    ("192.168.1.1:99999999999", "out of range"),
    ("192.168.1.1:-1", 'invalid port "-1"'),
    ("192.168.1.1:08080", "leading zeros"),
    ("192.168.1.1:80x", 'invalid port "80x" in "192.168.1.1:80x": expected a number from 1'),
    ("192.168.1.1:8100-8000", "is reversed"),
    ("192.168.1.1:80-", "missing port"),
    ("192.168.1.1:80-90-100", "invalid port"),
    ("192.168.1.1:*-80", "invalid port"),
    ("10.0.0.1:80:90", "too many ':'"),
    # IPv4 literal oddities
    ("999.1.1.1", "from 0 to 255"),
    ("256.0.0.1", "from 0 to 255"),
    ("192.168.1", "four decimal numbers"),
    ("192.168.1.1.1", "four decimal numbers"),
    ("192.168.001.001", "leading zeros"),
    ("010.0.0.1:80", "leading zeros"),
    ("0x7f.1", "hexadecimal"),
    ("0x7f000001", "hexadecimal"),
    ("2130706433", "four decimal numbers"),
    ("10.0.0.*", "invalid address"),
    ("10..0.1", "invalid address"),
    # CIDR
    ("192.168.1.5/24", "host bits are set"),
    ("10.0.0.0/33", "/33"),
    ("10.0.0.0/-1", 'invalid prefix length "-1"'),
    ("10.0.0.0/08", 'invalid prefix length "08"'),
    ("10.0.0.0/", 'invalid prefix length ""'),
    ("10.0.0.0/8/8", "more than one '/'"),
    ("/8", "missing address"),
    ("fd00::1/64", "host bits are set"),
    ("[2001:db8::/129]", "/129"),
    ("2001:db8::/129", "/129"),
    # IPv6
    ("[fe80::1", "missing ']'"),
    ("[fe80::1]x", "unexpected \"x\" after ']'"),
    ("[fe80::1]80", "unexpected"),
    ("[fe80::1]:", "missing port"),
    ("fe80::1%eth0", "zone id"),
    ("[fe80::1%eth0]:80", "zone id"),
    ("::ffff:192.168.1.1", "IPv4-mapped"),
    ("[::ffff:192.168.1.1]:80", "IPv4-mapped"),
    ("::ffff:c0a8:101", "IPv4-mapped"),
    ("::ffff:0:0/96", "IPv4-mapped"),
    ("[10.0.0.1]:80", "brackets are only for IPv6"),
    ("[nas.local]:80", "invalid IPv6 address"),
    ("fe80::1::2", "invalid IPv6 address"),
    ("gggg::1", "invalid IPv6 address"),
    ("10.0.0.1]:80", "misplaced bracket"),
    ("[[fd00::1]]:80", "invalid IPv6 address"),
    # protocol prefixes
    ("sctp://10.0.0.1:80", 'unknown protocol "sctp"'),
    ("http://10.0.0.1", 'unknown protocol "http"'),
    ("TCP://10.0.0.1:80", "must be lower case"),
    ("Udp://10.0.0.1:53", "must be lower case"),
    ("tcp:/10.0.0.1:80", "malformed protocol prefix"),
    ("tcp:///10.0.0.1", "malformed protocol prefix"),
    ("tcp:10.0.0.1", "malformed protocol prefix"),
    ("tcp://", "missing address"),
    ("tcp://*:80", "'*' in \"tcp://*:80\" is not an address"),
    ("*://*", "is not an address"),
    ("*:80", "is not an address"),
    ("**", "invalid address"),
    ("tcp://tcp://10.0.0.1", "must be an IP address"),
    # names and tokens
    ("nas.local:80", "must be an IP address, not a hostname"),
    ("nas.local", "not a hostname"),
    ("localhost", "not a hostname"),
    ("${alca:UNKNOWN}", 'unknown alca token "UNKNOWN"'),
    ("${alca:host_ip}:80", 'unknown alca token "host_ip"'),
    ("${alca:HOST_IP", "unterminated token"),
    ("${alca:HOST_IP:80", "unterminated token"),
    ("${HOST_IP}", "is not an alca token"),
    ("${ALCA:HOST_IP}", "is not an alca token"),
    ("${alca:}", "invalid alca token syntax"),
    ("${alca:HOST-IP}", "invalid alca token syntax"),
    ("$HOST_IP", "unexpected '$'"),
    ("${alca:HOST_IP}x", "unexpected"),
    ("${alca:HOST_IP}/24", "unexpected"),
    ("10.${alca:HOST_IP}", "token must be the whole address"),
    ("[${alca:HOST_IP}]:80", "invalid IPv6 address"),
]


@pytest.mark.parametrize(("text", "expected"), LAN_REJECT)
def test_lan_rule_rejected(text, expected):
    assert_good_error(rejected(parse_lan_rule, text), text, expected)


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("192.168.1.5/24", '"192.168.1.0/24"'),
        ("fd00::1/64", '"fd00::/64"'),
        ("::ffff:192.168.1.1", "192.168.1.1"),
        ("::ffff:10.0.0.0/104", "10.0.0.0/8"),
        ("TCP://10.0.0.1:80", '"tcp://10.0.0.1:80"'),
        (" 192.168.1.1 ", '"192.168.1.1"'),
        ("tcp://*:80", '"*" alone'),
        ("nas.local:80", "e.g. 192.168.1.10"),
        ("${alca:host_ip}", "${alca:HOST_IP}"),
        ("${HOST_IP}", "${alca:HOST_IP}"),
        ("${alca:UNKNOWN}", "HOST_IP"),
        ("192.168.1.1:08080", "write 8080"),
        ("[10.0.0.1]:80", "10.0.0.1:8080"),
    ],
)
def test_lan_rule_hints_show_the_fix(text, hint):
    assert hint in rejected(parse_lan_rule, text).hint


def test_too_long_rule_is_rejected_with_a_short_quote():
    error = rejected(parse_lan_rule, "1" * (MAX_TEXT_LENGTH + 1))
    assert "too long" in error.message
    assert len(error.message) < 200


def test_non_string_rule_is_rejected():
    error = rejected(parse_lan_rule, 8080)
    assert "must be a string" in error.message


def test_unknown_token_error_lists_valid_tokens():
    assert "valid tokens: HOST_IP" in rejected(parse_lan_rule, "${alca:UNKNOWN}").message


# --- lan-access lists --------------------------------------------------------------------------


def test_parse_lan_access_star_anywhere_allows_all_and_keeps_rules():
    allow_all, rules = parse_lan_access(["10.0.0.1:80", "*", "udp://10.0.0.53:53"])
    assert allow_all is True
    assert rules == (
        LanRule(v4("10.0.0.1/32"), TCP, (80, 80)),
        LanRule(v4("10.0.0.53/32"), UDP, (53, 53)),
    )


def test_parse_lan_access_still_validates_rules_next_to_star():
    with pytest.raises(GrammarError, match="not a hostname"):
        parse_lan_access(["*", "nas.local:80"])


def test_parse_lan_access_without_star_and_duplicates():
    allow_all, rules = parse_lan_access(["10.0.0.1:80", "tcp://10.0.0.1:80", "10.0.0.2"])
    assert allow_all is False
    assert [render_lan_rule(r) for r in rules] == ["tcp://10.0.0.1:80", "10.0.0.2"]


def test_parse_lan_access_empty_list():
    assert parse_lan_access([]) == (False, ())


def test_parse_lan_access_rejects_a_bare_string():
    error = rejected(parse_lan_access, "192.168.1.1")
    assert "list of rules" in error.message
    assert '["192.168.1.1"]' in error.hint


# --- LanRule invariants, family, tokens --------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "protocols", "ports"),
    [
        (v4("10.0.0.1/32"), (), (80, 80)),
        (v4("10.0.0.1/32"), TCP, None),
        (v4("10.0.0.1/32"), ("udp", "tcp"), (80, 80)),
        (v4("10.0.0.1/32"), ("sctp",), (80, 80)),
        (v4("10.0.0.1/32"), TCP, (0, 80)),
        (v4("10.0.0.1/32"), TCP, (90, 80)),
        (v4("10.0.0.1/32"), TCP, (80, 65536)),
        (v4("10.0.0.1/32"), TCP, (True, True)),
        (v6("::ffff:0:0/96"), (), None),
    ],
)
def test_lan_rule_constructor_rejects_unrenderable_rules(address, protocols, ports):
    with pytest.raises(ValueError):
        LanRule(address, protocols, ports)


def test_lan_rule_constructor_rejects_wrong_address_type():
    with pytest.raises(TypeError):
        LanRule("10.0.0.1", (), None)  # type: ignore[arg-type]


def test_alca_token_rejects_unknown_names():
    with pytest.raises(ValueError):
        AlcaToken("UNKNOWN")
    assert ALCA_TOKENS == ("HOST_IP",)


def test_family():
    assert lan("10.0.0.0/8").family == 4
    assert lan("[fd00::1]:80").family == 6
    assert lan("${alca:HOST_IP}:80").family is None


def test_resolve_tokens():
    rule = lan("*://${alca:HOST_IP}:53")
    resolved = resolve_tokens(rule, {"HOST_IP": IPv4Address("172.17.0.1")})
    assert resolved == LanRule(v4("172.17.0.1/32"), BOTH, (53, 53))
    resolved6 = resolve_tokens(rule, {"HOST_IP": IPv6Address("fd00::1")})
    assert resolved6.address == v6("fd00::1/128")
    plain = lan("10.0.0.1")
    assert resolve_tokens(plain, {}) is plain


def test_resolve_tokens_missing_value_is_a_grammar_error():
    error = rejected(lambda r: resolve_tokens(r, {}), lan("${alca:HOST_IP}:8080"))
    assert "${alca:HOST_IP}" in error.message
    assert "tcp://${alca:HOST_IP}:8080" in error.message


def test_resolve_tokens_rejects_mapped_value():
    rule = lan("${alca:HOST_IP}")
    with pytest.raises(GrammarError, match="cannot be used"):
        resolve_tokens(rule, {"HOST_IP": IPv6Address("::ffff:1.2.3.4")})


# --- ports -------------------------------------------------------------------------------------

PORT_ACCEPT = [
    ("80", PortMapping(80, 80, None, "tcp"), "80:80"),
    ("80/udp", PortMapping(80, 80, None, "udp"), "80:80/udp"),
    ("8080:80", PortMapping(80, 8080, None, "tcp"), "8080:80"),
    ("8080:80/tcp", PortMapping(80, 8080, None, "tcp"), "8080:80"),
    ("5353:53/udp", PortMapping(53, 5353, None, "udp"), "5353:53/udp"),
    ("127.0.0.1:8080:80", PortMapping(80, 8080, IPv4Address("127.0.0.1"), "tcp"), None),
    ("0.0.0.0:80:80", PortMapping(80, 80, IPv4Address(0), "tcp"), None),
    ("10.0.0.1:53:53/udp", PortMapping(53, 53, IPv4Address("10.0.0.1"), "udp"), None),
    ("[::1]:8080:80", PortMapping(80, 8080, IPv6Address("::1"), "tcp"), None),
    ("[::]:80:80/tcp", PortMapping(80, 80, IPv6Address("::"), "tcp"), "[::]:80:80"),
    ("[FD00::0:1]:1:65535/udp", PortMapping(65535, 1, IPv6Address("fd00::1"), "udp"), None),
]


@pytest.mark.parametrize(("text", "expected", "arg"), PORT_ACCEPT)
def test_port_accepted(text, expected, arg):
    mapping = parse_port(text)
    assert mapping == expected
    assert mapping.docker_arg() == render_port(mapping)
    if arg is not None:
        assert mapping.docker_arg() == arg
    assert parse_port(render_port(mapping)) == mapping


def test_docker_arg_brackets_ipv6_and_omits_tcp():
    assert PortMapping(80, 8080, IPv6Address("::1"), "tcp").docker_arg() == "[::1]:8080:80"
    assert PortMapping(53, 53, IPv4Address("127.0.0.1"), "udp").docker_arg() == (
        "127.0.0.1:53:53/udp"
    )


PORT_REJECT = [
    ("", "empty port mapping"),
    (" 80", "contains whitespace"),
    ("80\n", "contains whitespace"),
    ("80;rm", 'invalid character ";"'),
    ("80\x00", "control character"),
    ("0", "container port 0"),
    ("70000:80", "host port 70000"),
    ("80:70000", "container port 70000"),
    ("-1", 'invalid container port "-1"'),
    ("080", "leading zeros"),
    ("08080:80", "leading zeros"),
    ("80x", 'invalid container port "80x"'),
    ("abc:80", 'invalid host port "abc"'),
    ("8080:", "missing container port"),
    (":80", "missing host port"),
    ("80/TCP", "must be lower case"),
    ("80/sctp", 'unknown protocol "sctp"'),
    ("80/", "missing protocol"),
    ("/udp", "missing port"),
    ("80/tcp/udp", "more than one '/'"),
    ("1.2.3.4:80:80:80", "too many colons"),
    ("::1:8080:80", "too many colons"),
    (":8080:80", "missing host IP"),
    ("localhost:8080:80", "must be an IP address, not a hostname"),
    ("01.2.3.4:80:80", "leading zeros"),
    ("1.2.3:80:80", "four decimal numbers"),
    ("[::1]:80", "expected [IPv6]:hostPort:containerPort"),
    ("[::1]8080:80", "expected [IPv6]:hostPort:containerPort"),
    ("[::1:8080:80", "missing ']'"),
    ("[127.0.0.1]:8080:80", "brackets are only for IPv6"),
    ("[::ffff:1.2.3.4]:80:80", "IPv4-mapped"),
    ("[fe80::1%eth0]:80:80", "zone id"),
    ("1.2.3.4]:80:80", "misplaced bracket"),
]


@pytest.mark.parametrize(("text", "expected"), PORT_REJECT)
def test_port_rejected(text, expected):
    assert_good_error(rejected(parse_port, text), text, expected)


PORT_OBJECT_ACCEPT = [
    ((80, None, "", "tcp"), PortMapping(80, 80, None, "tcp")),
    ((80, 8080, "", "udp"), PortMapping(80, 8080, None, "udp")),
    ((80, None, "127.0.0.1", "tcp"), PortMapping(80, 80, IPv4Address("127.0.0.1"), "tcp")),
    ((80, 8080, "::1", "tcp"), PortMapping(80, 8080, IPv6Address("::1"), "tcp")),
    ((80, 8080, "[::1]", "tcp"), PortMapping(80, 8080, IPv6Address("::1"), "tcp")),
]


@pytest.mark.parametrize(("args", "expected"), PORT_OBJECT_ACCEPT)
def test_port_object_accepted(args, expected):
    mapping = port_from_object(*args)
    assert mapping == expected
    assert parse_port(render_port(mapping)) == mapping


def test_port_object_defaults():
    assert port_from_object(3000) == PortMapping(3000, 3000, None, "tcp")


PORT_OBJECT_REJECT = [
    ((0, None, "", "tcp"), "port 0 is out of range"),
    ((65536, None, "", "tcp"), "port 65536 is out of range"),
    ((80, 0, "", "tcp"), "hostPort 0 is out of range"),
    ((True, None, "", "tcp"), "port must be a number"),
    (("80", None, "", "tcp"), 'not "80"'),
    ((80, 80.0, "", "tcp"), "hostPort must be a number"),
    ((80, None, "localhost", "tcp"), '"localhost" must be an IP address, not a hostname'),
    ((80, None, " 127.0.0.1", "tcp"), "contains whitespace"),
    ((80, None, "127.0.0.1;", "tcp"), "invalid character"),
    ((80, None, "::ffff:1.2.3.4", "tcp"), "IPv4-mapped"),
    ((80, None, "fe80::1%eth0", "tcp"), "zone id"),
    ((80, None, 127, "tcp"), "hostIp of port 80 must be a string"),
    ((80, None, "", "TCP"), 'unknown protocol "TCP"'),
    ((80, None, "", "sctp"), 'unknown protocol "sctp"'),
    ((80, None, "", ""), 'unknown protocol ""'),
]


@pytest.mark.parametrize(("args", "expected"), PORT_OBJECT_REJECT)
def test_port_object_rejected(args, expected):
    error = rejected(lambda a: port_from_object(*a), args)
    assert expected in error.message
    assert not error.message[0].isupper()
    assert error.hint


def test_port_object_hint_for_upper_case_protocol():
    assert 'protocol = "udp"' in rejected(lambda p: port_from_object(53, None, "", p), "UDP").hint


@pytest.mark.parametrize(
    "args",
    [(0, 80, None, "tcp"), (80, 80, None, "sctp"), (80, 80, IPv6Address("::ffff:1.2.3.4"), "tcp")],
)
def test_port_mapping_constructor_checks(args):
    with pytest.raises(ValueError):
        PortMapping(*args)


# --- proxy -------------------------------------------------------------------------------------

PROXY_ACCEPT = [
    ("1.2.3.4:1080", ProxyAddress(IPv4Address("1.2.3.4"), 1080), "1.2.3.4:1080"),
    ("192.168.1.2:3128", ProxyAddress(IPv4Address("192.168.1.2"), 3128), "192.168.1.2:3128"),
    ("[2001:db8::1]:1080", ProxyAddress(IPv6Address("2001:db8::1"), 1080), "[2001:db8::1]:1080"),
    ("[2001:DB8:0::1]:1", ProxyAddress(IPv6Address("2001:db8::1"), 1), "[2001:db8::1]:1"),
    ("${alca:HOST_IP}:1080", ProxyAddress(HOST, 1080), "${alca:HOST_IP}:1080"),
    ("${alca:HOST_IP}:65535", ProxyAddress(HOST, 65535), "${alca:HOST_IP}:65535"),
]


@pytest.mark.parametrize(("text", "expected", "canonical"), PROXY_ACCEPT)
def test_proxy_accepted(text, expected, canonical):
    proxy = parse_proxy(text)
    assert proxy == expected
    assert render_proxy(proxy) == canonical
    assert parse_proxy(canonical) == proxy


PROXY_REJECT = [
    ("127.0.0.1:1080", "loopback"),
    ("[::1]:1080", "loopback"),
    ("", "empty proxy address"),
    ("1.2.3.4", "expected host:port"),
    ("[::1]", "expected host:port"),
    ("${alca:HOST_IP}", "expected host:port"),
    ("1.2.3.4:", "missing port"),
    ("1.2.3.4:abc", 'invalid port "abc"'),
    ("host:abc", "must be an IP address, not a hostname"),
    ("proxy.local:1080", 'host "proxy.local" in "proxy.local:1080" must be an IP address'),
    ("1.2.3.4:0", "port 0 in"),
    ("1.2.3.4:65536", "port 65536 in"),
    ("${alca:HOST_IP}:0", "port 0 in"),
    ("${alca:HOST_IP}:-1", 'invalid port "-1"'),
    ("${alca:host_ip}:1080", 'unknown alca token "host_ip"'),
    ("${alca:NOPE}:1080", "valid tokens: HOST_IP"),
    ("${alca:HOST_IP:1080", "unterminated token"),
    ("${PROXY}:1080", "is not an alca token"),
    ("0.0.0.0:1080", "is unspecified"),
    ("[::]:1080", "is unspecified"),
    ("224.0.0.1:1080", "multicast"),
    ("[ff02::1]:1080", "multicast"),
    ("2001:db8::1:1080", "an IPv6 host must be in brackets"),
    ("[10.0.0.1]:1080", "brackets are only for IPv6"),
    ("[::1:1080", "missing ']'"),
    ("[::1]x1080", "unexpected"),
    (":1080", "missing host"),
    ("1.2.3.4:1080 ", "contains whitespace"),
    ("1.2.3.4:1080\n", "contains whitespace"),
    ("1.2.3.4:1080;", 'invalid character ";"'),
    ("1.2.3.4:1080/tcp", 'invalid character "/"'),
    ("http://1.2.3.4:1080", 'invalid character "/"'),
    ("01.2.3.4:1080", "leading zeros"),
    ("[::ffff:1.2.3.4]:1080", "IPv4-mapped"),
    ("[fe80::1%eth0]:1080", "zone id"),
]


@pytest.mark.parametrize(("text", "expected"), PROXY_REJECT)
def test_proxy_rejected(text, expected):
    assert_good_error(rejected(parse_proxy, text), text, expected)


def test_proxy_family_and_resolution():
    proxy = parse_proxy("${alca:HOST_IP}:1080")
    assert proxy.family is None
    resolved = resolve_proxy(proxy, {"HOST_IP": IPv4Address("172.17.0.1")})
    assert resolved == ProxyAddress(IPv4Address("172.17.0.1"), 1080)
    assert resolved.family == 4
    assert parse_proxy("[fd00::2]:1080").family == 6
    plain = parse_proxy("1.2.3.4:1")
    assert resolve_proxy(plain, {}) is plain


def test_proxy_resolution_errors():
    proxy = parse_proxy("${alca:HOST_IP}:1080")
    with pytest.raises(GrammarError, match=r"no value for \$\{alca:HOST_IP\}"):
        resolve_proxy(proxy, {})
    with pytest.raises(GrammarError, match="unspecified"):
        resolve_proxy(proxy, {"HOST_IP": IPv4Address(0)})


def test_proxy_constructor_checks():
    with pytest.raises(ValueError):
        ProxyAddress(IPv4Address(0), 1080)
    with pytest.raises(ValueError):
        ProxyAddress(IPv4Address("1.2.3.4"), 0)


def test_grammar_error_is_a_value_error_with_message_and_hint():
    error = GrammarError("bad thing", "do this")
    assert isinstance(error, ValueError)
    assert (str(error), error.message, error.hint) == ("bad thing", "bad thing", "do this")


def test_reject_tables_are_large_enough():
    assert len(LAN_REJECT) + len(PORT_REJECT) + len(PORT_OBJECT_REJECT) + len(PROXY_REJECT) >= 60


# --- properties --------------------------------------------------------------------------------

FAST = settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


def _not_mapped(address: IPv4Address | IPv6Address) -> bool:
    return not isinstance(address, IPv6Address) or address.ipv4_mapped is None


def _network_not_mapped(network: IPv4Network | IPv6Network) -> bool:
    return _not_mapped(network.network_address)


ipv4_networks = st.builds(
    lambda a, p: ipaddress.ip_network((a, p), strict=False),
    st.ip_addresses(v=4),
    st.integers(0, 32),
)
ipv6_networks: st.SearchStrategy[IPv4Network | IPv6Network] = st.builds(
    lambda a, p: ipaddress.ip_network((a, p), strict=False),
    st.ip_addresses(v=6).filter(_not_mapped),
    st.integers(0, 128),
).filter(_network_not_mapped)
addresses = st.one_of(ipv4_networks, ipv6_networks, st.sampled_from(ALCA_TOKENS).map(AlcaToken))
port_numbers = st.integers(1, 65535)
port_ranges = st.one_of(
    port_numbers.map(lambda p: (p, p)),
    st.tuples(port_numbers, port_numbers).map(lambda t: (min(t), max(t))),
    st.just(ALL),
)
l4 = st.one_of(
    st.just(((), None)),
    st.tuples(st.sampled_from([TCP, UDP, BOTH]), port_ranges),
)
lan_rules = st.builds(lambda a, pp: LanRule(a, pp[0], pp[1]), addresses, l4)


@FAST
@given(lan_rules)
def test_lan_rule_round_trip(rule):
    text = render_lan_rule(rule)
    assert parse_lan_rule(text) == rule
    assert render_lan_rule(lan(text)) == text


host_ips = st.one_of(st.none(), st.ip_addresses(v=4), st.ip_addresses(v=6).filter(_not_mapped))
port_mappings = st.builds(
    PortMapping, port_numbers, port_numbers, host_ips, st.sampled_from(["tcp", "udp"])
)


@FAST
@given(port_mappings)
def test_port_round_trip(mapping):
    text = render_port(mapping)
    assert parse_port(text) == mapping
    assert render_port(parse_port(text)) == text
    host_ip = "" if mapping.host_ip is None else str(mapping.host_ip)
    assert (
        port_from_object(mapping.container_port, mapping.host_port, host_ip, mapping.protocol)
        == mapping
    )


proxy_hosts = st.one_of(
    st.ip_addresses(v=4), st.ip_addresses(v=6).filter(_not_mapped), st.just(HOST)
).filter(
    lambda h: isinstance(h, AlcaToken) or not (h.is_unspecified or h.is_multicast or h.is_loopback)
)
proxies = st.builds(ProxyAddress, proxy_hosts, port_numbers)


@FAST
@given(proxies)
def test_proxy_round_trip(proxy):
    text = render_proxy(proxy)
    assert parse_proxy(text) == proxy
    assert render_proxy(parse_proxy(text)) == text


# Text drawn from the grammars' own alphabet reaches the deep branches; st.text() covers the rest.
GRAMMAR_ALPHABET = string.digits + "abcdefxtcpuLH_IOST.:/[]*${}-%; \n"
fuzz_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=GRAMMAR_ALPHABET, max_size=40),
    st.builds(
        lambda parts: "".join(parts),
        st.lists(
            st.sampled_from(
                [
                    "tcp://",
                    "udp://",
                    "*://",
                    "[",
                    "]",
                    ":",
                    "/",
                    "*",
                    "-",
                    "${alca:",
                    "HOST_IP",
                    "}",
                    "10.0.0.1",
                    "fd00::",
                    "::ffff:",
                    "1.2.3.4",
                    "80",
                    "0",
                    "65535",
                    "65536",
                    "24",
                    "128",
                    ".",
                    "%",
                    "fe80::1",
                ]
            ),
            max_size=8,
        ),
    ),
)
FORBIDDEN = set(string.whitespace) | {";", '"', "'", "\\", "#", "%"}


def _assert_parses_or_grammar_error(parse: Callable[[str], Any], text: str) -> Any:
    try:
        return parse(text)
    except GrammarError as error:
        assert error.message
        assert not error.message[0].isupper(), error.message
        assert error.hint
        assert quote(text) in error.message or text == "" or len(text) > MAX_TEXT_LENGTH
        return None


@settings(max_examples=400, deadline=None, database=None)
@given(fuzz_text)
def test_fuzz_lan_rule(text):
    rule = _assert_parses_or_grammar_error(parse_lan_rule, text)
    if rule is None or rule == "*":
        return
    rendered = render_lan_rule(rule)
    assert rendered.isprintable()
    assert not FORBIDDEN & set(rendered)
    assert parse_lan_rule(rendered) == rule


@settings(max_examples=300, deadline=None, database=None)
@given(fuzz_text)
def test_fuzz_port(text):
    mapping = _assert_parses_or_grammar_error(parse_port, text)
    if mapping is not None:
        assert parse_port(render_port(mapping)) == mapping
        assert not FORBIDDEN & set(mapping.docker_arg())


@settings(max_examples=300, deadline=None, database=None)
@given(fuzz_text)
def test_fuzz_proxy(text):
    proxy = _assert_parses_or_grammar_error(parse_proxy, text)
    if proxy is not None:
        assert parse_proxy(render_proxy(proxy)) == proxy


@settings(max_examples=100, deadline=None, database=None)
@given(st.lists(fuzz_text, max_size=5))
def test_fuzz_lan_access(entries):
    try:
        allow_all, rules = parse_lan_access(entries)
    except GrammarError:
        return
    assert allow_all == ("*" in entries)
    assert all(isinstance(rule, LanRule) for rule in rules)


@settings(max_examples=100, deadline=None, database=None)
@given(
    st.one_of(st.integers(), st.booleans(), st.text(max_size=5), st.none()),
    st.one_of(st.none(), st.integers(), st.floats()),
    st.text(max_size=20),
    st.text(max_size=5),
)
def test_fuzz_port_object(port, host_port, host_ip, protocol):
    try:
        mapping = port_from_object(port, host_port, host_ip, protocol)
    except GrammarError:
        return
    assert parse_port(render_port(mapping)) == mapping
