"""DNS messages for the egress filter: read a query, refuse it, read the addresses of a reply.

dnspython parses (docs/decisions/0015): the refusal carries an Extended DNS Error, and a
reply's answer section is walked whatever its compression. Imported by the guard daemon
only, never on `alca run`'s path.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype

#: RFC 8914 "Blocked": the name is refused by the operator's policy.
EDE_BLOCKED = 15
UDP_PLAIN_SIZE = 512
A, AAAA = dns.rdatatype.A, dns.rdatatype.AAAA


@dataclass(frozen=True)
class Question:
    """The one question of a query, its name as text (escaped, no final dot)."""

    name: str
    qtype: str
    message: dns.message.Message


def parse_query(wire: bytes) -> Question | None:
    """The question of a standard query, or None when dnspython cannot read it."""
    try:
        message = dns.message.from_wire(wire)
    except (dns.exception.DNSException, ValueError, struct.error):
        return None
    if message.flags & dns.flags.QR or len(message.question) != 1:
        return None
    # Records beside the question (OPT and TSIG are kept apart by dnspython) would reach the
    # upstream with the allowed question: an owner name there is a name never checked.
    if message.answer or message.authority or message.additional:
        return None
    question = message.question[0]
    name = question.name.to_text(omit_final_dot=True)
    return Question(name, dns.rdatatype.to_text(question.rdtype), message)


def refusal_text(name: str) -> str:
    return f"alcatraz: {name} is not in [network] egress"


def nxdomain(question: Question) -> bytes:
    """NXDOMAIN for a refused name, with EDE 15 and why when the query speaks EDNS.

    A query without EDNS gets no OPT record (RFC 6891); an answer too big for the client's
    buffer drops the explanation rather than the answer.
    """
    query = question.message
    response = dns.message.make_response(query)
    response.flags |= dns.flags.RA
    response.set_rcode(dns.rcode.NXDOMAIN)
    if query.edns < 0:
        return response.to_wire(max_size=UDP_PLAIN_SIZE)
    limit = max(UDP_PLAIN_SIZE, query.payload)
    option = dns.edns.EDEOption(dns.edns.EDECode(EDE_BLOCKED), refusal_text(question.name))
    response.use_edns(0, 0, limit, options=[option])
    try:
        return response.to_wire(max_size=limit)
    except (dns.exception.TooBig, ValueError):  # ValueError: the option alone is too big
        response.use_edns(0, 0, limit, options=[])
        return response.to_wire(max_size=limit)


def servfail(question: Question) -> bytes:
    """SERVFAIL for an allowed name whose addresses could not be let through."""
    response = dns.message.make_response(question.message)
    response.flags |= dns.flags.RA
    response.set_rcode(dns.rcode.SERVFAIL)
    return response.to_wire()


def formerr(wire: bytes) -> bytes | None:
    """FORMERR for a query dnspython cannot read: its id and opcode, no question."""
    if len(wire) < 12:
        return None
    ident, flags = struct.unpack_from("!HH", wire)
    answer_flags = 0x8000 | (flags & 0x7900) | 0x0080 | dns.rcode.FORMERR
    return struct.pack("!HHHHHH", ident, answer_flags, 0, 0, 0, 0)


Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def answer_addresses(wire: bytes) -> tuple[list[Address], int | None]:
    """The A/AAAA addresses of a reply's answer section (any owner: through CNAMEs) and the
    smallest TTL among them; ([], None) for an error, no address or an unreadable reply."""
    try:
        message = dns.message.from_wire(wire)
    except (dns.exception.DNSException, ValueError, struct.error):
        return [], None
    if message.rcode() != dns.rcode.NOERROR:
        return [], None
    found: dict[Address, None] = {}
    ttl: int | None = None
    for rrset in message.answer:
        if rrset.rdclass != dns.rdataclass.IN or rrset.rdtype not in (A, AAAA):
            continue
        for record in rrset:
            found[ipaddress.ip_address(record.address)] = None
        ttl = rrset.ttl if ttl is None else min(ttl, rrset.ttl)
    return list(found), ttl
