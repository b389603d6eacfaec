"""DNS wire checks of the project's resolver (`dnsproxy`): header and question only.

Standard library only. The relay reads no more of a message than this: where its question
ends, whether a reply answers a query, and the SERVFAIL/REFUSED/NOTIMP it answers itself;
and how an upstream is written (`ADDR`, `ADDR:PORT`, `[V6]:PORT`).
"""

from __future__ import annotations

import ipaddress
import re
import struct

HEADER = struct.Struct("!HHHHHH")
_PORT = re.compile(r"[0-9]{1,5}")


def question_end(message: bytes) -> int | None:
    """The offset just past the first question, or None when the message is malformed."""
    if len(message) < HEADER.size:
        return None
    offset = HEADER.size
    for _ in range(128):  # labels; a name has at most 127
        if offset >= len(message):
            return None
        length = message[offset]
        if length == 0:
            offset += 1
            break
        if length & 0xC0:  # no compression in a query's question
            return None
        offset += 1 + length
    else:
        return None
    offset += 4  # type and class
    return offset if offset <= len(message) else None


def servfail(query: bytes) -> bytes | None:
    """A SERVFAIL answer to `query` (its id, flags and question), or None if malformed."""
    end = question_end(query)
    if end is None:
        return None
    ident, flags, qdcount, _, _, _ = HEADER.unpack_from(query)
    if flags & 0x8000 or qdcount != 1:  # a response, or not one question
        return None
    opcode_rd = flags & 0x7900  # opcode and RD
    answer_flags = 0x8000 | opcode_rd | 0x0080 | 2  # QR, RA, RCODE=SERVFAIL
    return HEADER.pack(ident, answer_flags, 1, 0, 0, 0) + query[HEADER.size : end]


def refusal(query: bytes) -> bytes | None:
    """REFUSED/NOTIMP for what a sandbox has no business sending the host's resolver.

    Only standard queries (opcode 0) with one question and no answer or authority records
    are relayed: no UPDATE, NOTIFY or zone transfer reaches a resolver that may trust this
    host's address. None means: relay it.
    """
    _, flags, qdcount, ancount, nscount, arcount = HEADER.unpack_from(query)
    end = question_end(query)
    qtype = struct.unpack_from("!H", query, end - 4)[0] if end is not None else 0
    if flags & 0x7800 == 0 and qdcount == 1 and ancount == nscount == 0 and arcount <= 1:
        if qtype not in (251, 252):  # IXFR, AXFR
            return None
        rcode = 5  # REFUSED
    else:
        rcode = 4  # NOTIMP
    answer = servfail(query)
    if answer is None:  # no single question to echo back: a bare header
        (ident,) = struct.unpack_from("!H", query)
        return HEADER.pack(ident, 0x8000 | rcode, 0, 0, 0, 0)
    return answer[:3] + bytes([(answer[3] & 0xF0) | rcode]) + answer[4:]


def matches(query: bytes, reply: bytes) -> bool:
    """Whether `reply` answers `query`: same id, a response, the same question."""
    end = question_end(query)
    if end is None or len(reply) < end:
        return False
    if reply[:2] != query[:2] or not reply[2] & 0x80:
        return False
    return reply[HEADER.size : end].lower() == query[HEADER.size : end].lower()


def split_host_port(text: str) -> tuple[str, int | None]:
    """`ADDR`, `ADDR:PORT` or `[V6]:PORT` (a zone `%eth0` kept) → (address, port or None)."""
    if text.startswith("["):
        host, bracket, after = text[1:].partition("]")
        if not bracket or not after.startswith(":"):
            raise ValueError("write [IPv6]:PORT, or the IPv6 address alone")
        port: int | None = _port(after[1:])
    elif text.count(":") == 1:
        host, port_text = text.split(":")
        port = _port(port_text)
    else:
        host, port = text, None
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        raise ValueError(f"{host!r} is not an IP address") from None
    return host, port


def _port(text: str) -> int:
    if not _PORT.fullmatch(text) or not 1 <= int(text) <= 65535:
        raise ValueError(f"{text!r} is not a port (1-65535)")
    return int(text)
