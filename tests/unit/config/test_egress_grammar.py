"""Tests of the `network.egress` and `network.dns` grammars (issue 15, the shared design)."""

from __future__ import annotations

import ipaddress
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alcatraz.config.netgrammar import (
    EgressRule,
    GrammarError,
    parse_dns_server,
    parse_egress,
    parse_egress_rule,
    render_dns_server,
    render_egress_rule,
)
from alcatraz.config.netgrammar.names import name_problem
from alcatraz.config.netgrammar.ranges import BLOCKED4, BLOCKED6
from alcatraz.network import plan

BOTH = ("tcp", "udp")
ALL = (1, 65535)


def name(
    text: str,
    protocols: tuple[str, ...] = (),
    ports: tuple[int, int] | None = None,
    *,
    wildcard: bool = False,
) -> EgressRule:
    return EgressRule(text, wildcard, None, protocols, ports)


def net(
    text: str, protocols: tuple[str, ...] = (), ports: tuple[int, int] | None = None
) -> EgressRule:
    return EgressRule(None, False, ipaddress.ip_network(text), protocols, ports)


# Every form of the design, with what it means and its canonical text.
FORMS = [
    ("example.com", name("example.com"), "example.com"),
    ("*.example.com", name("example.com", wildcard=True), "*.example.com"),
    ("*.example.com:443", name("example.com", BOTH, (443, 443), wildcard=True), None),
    ("example.com:8000-8100", name("example.com", BOTH, (8000, 8100)), None),
    ("udp://ntp.example.com:123", name("ntp.example.com", ("udp",), (123, 123)), None),
    ("tcp://git.example.com:22-23", name("git.example.com", ("tcp",), (22, 23)), None),
    ("tcp://example.com", name("example.com", ("tcp",), ALL), None),
    ("tcp://example.com:1-65535", name("example.com", ("tcp",), ALL), "tcp://example.com"),
    ("udp://*.example.com", name("example.com", ("udp",), ALL, wildcard=True), None),
    ("example.com:1-65535", name("example.com", BOTH, ALL), None),
    ("xn--mnchen-3ya.de", name("xn--mnchen-3ya.de"), None),
    ("a-b.c0.example", name("a-b.c0.example"), None),
    ("localhost", name("localhost"), None),
    ("203.0.113.0/24:443", net("203.0.113.0/24", BOTH, (443, 443)), None),
    ("203.0.113.7", net("203.0.113.7/32"), None),
    ("203.0.113.7/32", net("203.0.113.7/32"), "203.0.113.7"),
    ("tcp://203.0.113.7:80", net("203.0.113.7/32", ("tcp",), (80, 80)), None),
    ("[2001:db8::/32]:443", net("2001:db8::/32", BOTH, (443, 443)), None),
    ("2001:db8::/32", net("2001:db8::/32"), None),
    ("[2001:db8::/32]", net("2001:db8::/32"), "2001:db8::/32"),
    ("2001:db8::1", net("2001:db8::1/128"), None),
    ("2001:db8::1:443", net("2001:db8::1:443/128"), None),  # bare IPv6: no port
    ("[2001:db8::1]:443", net("2001:db8::1/128", BOTH, (443, 443)), None),
    ("tcp://2001:db8::/32", net("2001:db8::/32", ("tcp",), ALL), None),
    ("udp://[2001:db8::1]:53", net("2001:db8::1/128", ("udp",), (53, 53)), None),
]


@pytest.mark.parametrize(("text", "rule", "canonical"), FORMS, ids=[f[0] for f in FORMS])
def test_every_form_parses_renders_and_parses_back(
    text: str, rule: EgressRule, canonical: str | None
) -> None:
    parsed = parse_egress_rule(text)
    assert parsed == rule
    rendered = render_egress_rule(parsed)
    assert rendered == (canonical or text)
    assert parse_egress_rule(rendered) == parsed


def test_port_without_prefix_is_tcp_and_udp_unlike_lan_access() -> None:
    """The design: no prefix + port = both protocols (lan-access reads it as tcp only)."""
    assert parse_egress_rule("example.com:443").protocols == BOTH
    assert parse_egress_rule("example.com").protocols == ()
    assert parse_egress_rule("example.com").ports is None


def test_the_wildcard_means_subdomains_only() -> None:
    rule = parse_egress_rule("*.example.com")
    assert rule.wildcard and rule.name == "example.com"
    assert parse_egress_rule("example.com") != rule


def test_parse_egress_keeps_order_and_drops_duplicates() -> None:
    rules = parse_egress(
        ["b.example", "a.example", "b.example", "tcp://b.example:1-65535", "tcp://b.example"]
    )
    assert [render_egress_rule(r) for r in rules] == ["b.example", "a.example", "tcp://b.example"]
    assert parse_egress([]) == ()


def test_parse_egress_refuses_a_string() -> None:
    with pytest.raises(GrammarError, match="must be a list"):
        parse_egress("example.com")  # type: ignore[arg-type]


# (entry, fragment of the message, fragment of the hint)
BAD = [
    ("", "empty egress entry", "example.com"),
    ("Example.COM", "upper-case", '"example.com"'),
    ("*.Example.com:443", "upper-case", '"*.example.com"'),
    ("münchen.de", "not ASCII", '"xn--mnchen-3ya.de"'),
    ("*.bücher.example", "not ASCII", '"*.xn--bcher-kva.example"'),
    ("a.*.example.com", "misplaced '*'", "*.example.com"),
    ("**.example.com", "misplaced '*'", "*.example.com"),
    ("*.*.example.com", "misplaced '*'", "*.example.com"),
    ("*example.com", "misplaced '*'", "*.example.com"),
    ("*", "is not an egress entry", "remove the egress key"),
    ("*://example.com:443", "is not an egress entry", "covers tcp and udp"),
    ("*.", "missing name after '*.'", "*.example.com"),
    ("example.com.", "ends with a dot", '"example.com"'),
    (".example.com", "empty label", '"*.example.com"'),
    ("example..com", "empty label", "example.com"),
    ("-x.example.com", 'label "-x"', "example.com"),
    ("x-.example.com", 'label "x-"', "example.com"),
    ("example.123", "all digits", "example.com"),
    ("xn--zz.example", "not a valid IDNA A-label", "example.com"),
    ("a" * 64 + ".example", "longer than 63", "example.com"),
    (".".join(["a" * 63] * 4), "longer than 253", "example.com"),
    ("x" * 300, "too long", "example.com"),
    ("exa_mple.com", 'invalid character "_"', "example.com"),
    ("example.com/path", "takes no path", "example.com:443"),
    ("example.com:0", "out of range", "1 to 65535"),
    ("example.com:70000", "out of range", "1 to 65535"),
    ("example.com:90-80", "reversed", "80-90"),
    ("example.com:", "missing port", "1 to 65535"),
    ("example.com:*", 'invalid port "*"', "decimal"),
    ("example.com:80:90", "too many ':'", "example.com:443"),
    (":443", "missing name or address before ':'", "example.com:443"),
    ("ftp://example.com", 'unknown protocol "ftp"', "not a URL"),
    ("https://example.com", 'unknown protocol "https"', "not a URL"),
    ("TCP://example.com", "must be lower case", '"tcp://example.com"'),
    ("tcp:/example.com", "malformed protocol prefix", "tcp://"),
    ("tcp://", "missing name or address", "example.com"),
    ("10.0.0.0/8", "private or special-purpose range 10.0.0.0/8", 'lan-access = ["10.0.0.0/8"]'),
    ("192.168.1.10:443", "192.168.0.0/16", 'lan-access = ["*://192.168.1.10:443"]'),
    ("tcp://127.0.0.1:80", "127.0.0.0/8", 'lan-access = ["tcp://127.0.0.1:80"]'),
    ("100.64.0.0/10", "100.64.0.0/10", "lan-access"),
    ("fd00::/8", "fc00::/7", 'lan-access = ["fd00::/8"]'),
    ("[fe80::/64]:22", "fe80::/10", 'lan-access = ["*://[fe80::/64]:22"]'),
    ("4000::/16", "global unicast space 2000::/3", "write a network there"),
    ("2002::/16", "2002::/16", "lan-access"),
    ("8.0.0.0/5", "10.0.0.0/8", "split this one"),
    ("0.0.0.0/0", "0.0.0.0/8", "remove the egress key"),
    ("::/0", "::1/128", "remove the egress key"),
    ("203.0.113.5/24", "host bits are set", '"203.0.113.0/24"'),
    ("[2001:db8::1/32]:443", "host bits are set", '"2001:db8::/32"'),
    ("fe80::1%eth0", "zone id", "%zone"),
    ("::ffff:203.0.113.1", "IPv4-mapped", "203.0.113.1"),
    ("[203.0.113.1]:443", "brackets are only for IPv6", "remove the brackets"),
    ("[2001:db8::1", "missing ']'", "[2001:db8::/32]:443"),
    ("[2001:db8::1]x", "unexpected \"x\" after ']'", ":PORT"),
    ("2001:db8::/32:443", "without brackets", "[2001:db8::/32]:443"),
    ("203.0.113.1.5", "invalid IPv4 address", "four decimal numbers"),
    ("${alca:HOST_IP}:80", "has a token", "lan-access"),
    ("example.com\n", "contains whitespace", "example.com"),
    ("example.com\x1b[2J", "control character", "example.com"),
]


@pytest.mark.parametrize(("text", "message", "hint"), BAD, ids=[repr(b[0])[:40] for b in BAD])
def test_bad_entries_are_refused_with_a_fix(text: str, message: str, hint: str) -> None:
    with pytest.raises(GrammarError) as caught:
        parse_egress_rule(text)
    assert message in caught.value.message
    assert hint in caught.value.hint


@pytest.mark.parametrize("value", [1, None, ["example.com"], b"example.com"])
def test_a_non_string_entry_is_refused(value: object) -> None:
    with pytest.raises(GrammarError, match="must be a string"):
        parse_egress_rule(value)  # type: ignore[arg-type]


def test_the_longest_valid_entry_parses() -> None:
    longest = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])
    assert len(longest) == 253
    assert parse_egress_rule(f"udp://{longest}:65534-65535").name == longest


def test_every_blocked_range_is_refused_and_its_neighbours_are_not() -> None:
    for blocked in (*BLOCKED4, *BLOCKED6):
        with pytest.raises(GrammarError, match=r"lan-access|IPv4-mapped"):
            parse_egress_rule(f"[{blocked}]" if blocked.version == 6 else str(blocked))
    assert parse_egress_rule("11.0.0.0/8").network == IPv4Network("11.0.0.0/8")
    assert parse_egress_rule("2003::/16").network == IPv6Network("2003::/16")


def test_network_plan_still_exports_the_ranges() -> None:
    assert plan.BLOCKED4 is BLOCKED4 and plan.BLOCKED6 is BLOCKED6
    assert IPv4Network("10.213.0.0/16") == plan.POOL4


# The constructor holds the same invariants as the parser.
INVALID_RULES = [
    (None, False, None, (), None),
    ("example.com", False, IPv4Network("203.0.113.0/24"), (), None),
    ("Example.com", False, None, (), None),
    ("example.com.", False, None, (), None),
    ("*.example.com", False, None, (), None),
    (None, True, IPv4Network("203.0.113.0/24"), (), None),
    (None, False, IPv4Network("10.0.0.0/8"), (), None),
    (None, False, IPv6Network("fd00::/8"), (), None),
    ("example.com", False, None, ("tcp",), None),
    ("example.com", False, None, (), (80, 80)),
    ("0x", False, None, (), None),  # the parser reads it as an address
    ("0x7f.1", False, None, (), None),
    ("example.com", False, None, ("sctp",), (80, 80)),
    ("example.com", False, None, ("udp", "tcp"), (80, 80)),
    ("example.com", False, None, ("tcp",), (90, 80)),
    ("example.com", False, None, ("tcp",), (0, 80)),
]


@pytest.mark.parametrize("fields", INVALID_RULES)
def test_the_constructor_refuses_what_the_parser_refuses(fields: tuple[object, ...]) -> None:
    with pytest.raises((ValueError, TypeError)):
        EgressRule(*fields)  # type: ignore[arg-type]


def test_the_constructor_refuses_a_wrong_type() -> None:
    with pytest.raises(TypeError):
        EgressRule(None, False, "203.0.113.0/24", (), None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        EgressRule("example.com", 1, None, (), None)  # type: ignore[arg-type]


_LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)
_NAMES = (
    st.lists(_LABEL, min_size=1, max_size=4).map(".".join).filter(lambda n: name_problem(n) is None)
)
_PORTS = st.tuples(st.integers(1, 65535), st.integers(1, 65535)).map(lambda p: tuple(sorted(p)))


@given(
    text=_NAMES,
    wildcard=st.booleans(),
    protocols=st.sampled_from([(), ("tcp",), ("udp",), BOTH]),
    ports=_PORTS,
)
def test_any_name_rule_round_trips(
    text: str, wildcard: bool, protocols: tuple[str, ...], ports: tuple[int, int]
) -> None:
    rule = EgressRule(text, wildcard, None, protocols, ports if protocols else None)
    assert parse_egress_rule(render_egress_rule(rule)) == rule


@given(
    address=st.integers(0, 2**32 - 1),
    prefix=st.integers(8, 32),
    protocols=st.sampled_from([(), ("tcp",), BOTH]),
    ports=_PORTS,
)
def test_any_public_ipv4_rule_round_trips(
    address: int, prefix: int, protocols: tuple[str, ...], ports: tuple[int, int]
) -> None:
    network = IPv4Network((address, prefix), strict=False)
    try:
        rule = EgressRule(None, False, network, protocols, ports if protocols else None)
    except ValueError:
        assert any(network.overlaps(b) for b in BLOCKED4)
        return
    assert parse_egress_rule(render_egress_rule(rule)) == rule


# -- network.dns ---------------------------------------------------------------------------

DNS = [
    ("198.51.100.53", IPv4Address("198.51.100.53"), 53, "198.51.100.53"),
    ("198.51.100.53:5353", IPv4Address("198.51.100.53"), 5353, "198.51.100.53:5353"),
    ("198.51.100.53:53", IPv4Address("198.51.100.53"), 53, "198.51.100.53"),
    ("2001:db8::53", IPv6Address("2001:db8::53"), 53, "2001:db8::53"),
    ("[2001:db8::53]:5353", IPv6Address("2001:db8::53"), 5353, "[2001:db8::53]:5353"),
    ("[2001:db8::53]", IPv6Address("2001:db8::53"), 53, "2001:db8::53"),
    ("127.0.0.53", IPv4Address("127.0.0.53"), 53, "127.0.0.53"),  # a resolver on the host
    ("[::1]:5353", IPv6Address("::1"), 5353, "[::1]:5353"),
    ("192.168.1.1", IPv4Address("192.168.1.1"), 53, "192.168.1.1"),  # the home router
]


@pytest.mark.parametrize(("text", "address", "port", "canonical"), DNS, ids=[d[0] for d in DNS])
def test_dns_servers_parse_and_render(
    text: str, address: IPv4Address | IPv6Address, port: int, canonical: str
) -> None:
    assert parse_dns_server(text) == (address, port)
    assert render_dns_server(address, port) == canonical
    assert parse_dns_server(canonical) == (address, port)


BAD_DNS = [
    ("", "empty dns server"),
    ("ns.example.com", "not a hostname"),
    ("198.51.100.53:0", "out of range"),
    ("198.51.100.53:65536", "out of range"),
    ("198.51.100.53:53:53", "too many ':'"),
    ("2001:db8::53:5353x", "invalid IPv6 address"),
    ("[2001:db8::53", "missing ']'"),
    ("[2001:db8::53]x", "unexpected"),
    ("0.0.0.0", "not the address of a host"),  # noqa: S104
    ("::", "not the address of a host"),
    ("224.0.0.251", "not the address of a host"),
    ("255.255.255.255", "not the address of a host"),
    ("fe80::1", "link-local"),
    ("fe80::1%eth0", "zone id"),
    ("::ffff:198.51.100.53", "IPv4-mapped"),
    ("10.213.4.1", "project networks"),
    ("udp://198.51.100.53", 'invalid character "/"'),
    ("198.51.100.053", "leading zeros"),
]


@pytest.mark.parametrize(("text", "message"), BAD_DNS, ids=[b[0] for b in BAD_DNS])
def test_bad_dns_servers_are_refused(text: str, message: str) -> None:
    with pytest.raises(GrammarError, match=None) as caught:
        parse_dns_server(text)
    assert message in caught.value.message
    assert caught.value.hint


_ENTRY_ALPHABET = st.sampled_from(list("abcxn-0123456789.:/[]*tcpudf%$ ÜßA_"))


@given(st.one_of(st.text(max_size=60), st.text(_ENTRY_ALPHABET, max_size=40)))
def test_any_text_is_refused_cleanly_or_round_trips(text: str) -> None:
    """Only a GrammarError (never another exception) for bad text; good text round-trips."""
    try:
        rule = parse_egress_rule(text)
    except GrammarError as error:
        assert error.message and error.hint
        return
    assert parse_egress_rule(render_egress_rule(rule)) == rule


@given(st.one_of(st.text(max_size=40), st.text(st.sampled_from(list("0123456789abcdef.:[]%")))))
def test_any_dns_text_is_refused_cleanly_or_round_trips(text: str) -> None:
    try:
        address, port = parse_dns_server(text)
    except GrammarError as error:
        assert error.message and error.hint
        return
    assert parse_dns_server(render_dns_server(address, port)) == (address, port)
