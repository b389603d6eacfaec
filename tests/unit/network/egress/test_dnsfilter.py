"""DNS messages of the egress filter, built and read with dnspython."""

from __future__ import annotations

import ipaddress

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import dns.rrset

from alcatraz.network.egress.dnsfilter import (
    EDE_BLOCKED,
    answer_addresses,
    formerr,
    nxdomain,
    parse_query,
    refusal_text,
    servfail,
)


def make_query(name: str, qtype: str = "A", *, edns: bool = True) -> bytes:
    query = dns.message.make_query(name, qtype, use_edns=0 if edns else None)
    return query.to_wire()


def test_a_query_gives_its_name_and_type() -> None:
    question = parse_query(make_query("Www.Example.COM.", "AAAA"))
    assert question is not None
    assert (question.name, question.qtype) == ("Www.Example.COM", "AAAA")


def test_odd_bytes_in_a_name_come_back_escaped() -> None:
    query = dns.message.make_query(dns.name.Name([b"a.b\x1b", b"test", b""]), "A")
    question = parse_query(query.to_wire())
    assert question is not None and question.name == "a\\.b\\027.test"


def test_not_a_query_is_none() -> None:
    assert parse_query(b"\x00\x01garbage") is None
    reply = dns.message.make_response(dns.message.make_query("a.test", "A"))
    assert parse_query(reply.to_wire()) is None


def test_a_query_carrying_records_beside_its_question_is_none() -> None:
    """An allowed question must not carry another name (or any data) to the upstream."""
    query = dns.message.make_query("allowed.test", "A", use_edns=0)
    query.additional.append(
        dns.rrset.from_text("c2VjcmV0.blocked.test.", 60, "IN", "TXT", '"secret"')
    )
    assert parse_query(query.to_wire()) is None
    padded = dns.message.make_query("allowed.test", "A", use_edns=0, pad=128)
    assert parse_query(padded.to_wire()) is not None  # the OPT record is not "beside"


def test_refusal_is_nxdomain_with_extended_error_15_and_why() -> None:
    wire = make_query("blocked.test")
    question = parse_query(wire)
    assert question is not None
    answer = dns.message.from_wire(nxdomain(question))
    assert answer.id == dns.message.from_wire(wire).id
    assert answer.rcode() == dns.rcode.NXDOMAIN and answer.flags & dns.flags.QR
    assert answer.question[0].name == dns.name.from_text("blocked.test")
    (option,) = answer.options
    assert isinstance(option, dns.edns.EDEOption)
    assert option.code == EDE_BLOCKED
    assert option.text == "alcatraz: blocked.test is not in [network] egress"
    assert refusal_text("x.test") == "alcatraz: x.test is not in [network] egress"


def test_refusal_without_edns_carries_no_opt_record() -> None:
    question = parse_query(make_query("blocked.test", edns=False))
    assert question is not None
    answer = dns.message.from_wire(nxdomain(question))
    assert answer.rcode() == dns.rcode.NXDOMAIN and answer.edns < 0


def test_refusal_too_long_for_the_buffer_drops_the_text_not_the_answer() -> None:
    name = ".".join(["\\255" * 60] * 4) + ".test"
    query = dns.message.make_query(name, "A", use_edns=0, payload=512)
    question = parse_query(query.to_wire())
    assert question is not None
    wire = nxdomain(question)
    assert len(wire) <= 512
    assert dns.message.from_wire(wire).rcode() == dns.rcode.NXDOMAIN


def test_servfail_and_formerr() -> None:
    wire = make_query("a.test")
    question = parse_query(wire)
    assert question is not None
    assert dns.message.from_wire(servfail(question)).rcode() == dns.rcode.SERVFAIL
    bad = formerr(wire[:12] + b"\xff\xff")
    assert bad is not None and bad[:2] == wire[:2]
    assert bad[3] & 0x0F == dns.rcode.FORMERR and bad[2] & 0x80
    assert bad[4:] == b"\0" * 8
    assert formerr(b"\x00") is None


def reply_with(name: str, *records: tuple[str, int, str, str]) -> bytes:
    query = dns.message.make_query(name, "A")
    reply = dns.message.make_response(query)
    for owner, ttl, rdtype, text in records:
        reply.answer.append(dns.rrset.from_text(owner, ttl, "IN", rdtype, text))
    return reply.to_wire()


def test_addresses_through_cnames_with_the_smallest_ttl() -> None:
    wire = reply_with(
        "www.a.test",
        ("www.a.test.", 600, "CNAME", "edge.cdn.test."),
        ("edge.cdn.test.", 120, "A", "203.0.113.9"),
        ("edge.cdn.test.", 90, "AAAA", "2001:db8::9"),
    )
    addresses, ttl = answer_addresses(wire)
    assert addresses == [ipaddress.ip_address("203.0.113.9"), ipaddress.ip_address("2001:db8::9")]
    assert ttl == 90


def test_no_addresses_from_errors_other_types_or_garbage() -> None:
    assert answer_addresses(reply_with("a.test", ("a.test.", 60, "TXT", '"x"'))) == ([], None)
    query = dns.message.make_query("a.test", "A")
    reply = dns.message.make_response(query)
    reply.set_rcode(dns.rcode.NXDOMAIN)
    reply.answer.append(dns.rrset.from_text("a.test.", 60, "IN", "A", "203.0.113.1"))
    assert answer_addresses(reply.to_wire()) == ([], None)
    assert answer_addresses(b"\x00" * 5) == ([], None)
