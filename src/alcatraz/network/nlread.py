"""One project's nftables objects, read straight from the kernel over netlink.

Why: `nft` (1.0.6) builds its cache of the whole `inet alcatraz` table for any `list chain`,
so reading one project's chain costs 3 ms with one project and 50-70 ms with 200, and a
batch of `list` commands in one `nft` call is answered from the cache of the last one only.
The kernel itself filters a rule dump by table and chain, and a set-element dump by set, so
asking it directly costs about a millisecond at any number of projects.

Read-only: only GET requests are sent (a table, a chain, a chain's rules, a set's elements).
Needs CAP_NET_ADMIN in this network namespace (root, as the native firewall runs); anything
else raises `Unreadable` and the caller reads through `nft` instead. The answer is a
`TableState` holding only the objects asked for, so the checks that judge a full table
(`Firewall.verify`, `status`) judge it unchanged.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import struct
from collections.abc import Iterable
from typing import Final

from alcatraz.network.tablestate import TableState

__all__ = ["Unreadable", "read_objects"]

NETLINK_NETFILTER: Final = 12
_SUBSYS: Final = 10 << 8  # NFNL_SUBSYS_NFTABLES
_GET_TABLE, _GET_CHAIN, _GET_RULE, _GET_SETELEM = 1, 4, 7, 13
_REQUEST, _DUMP, _DUMP_INTR = 0x1, 0x300, 0x10
_ATTEMPTS: Final = 3
_ERROR, _DONE = 2, 3
_INET: Final = 1  # NFPROTO_INET
_NESTED_MASK: Final = 0x3FFF
_DROP: Final = 0  # NF_DROP verdict code
_TIMEOUT: Final = 5.0


class Unreadable(Exception):
    """Netlink cannot answer here (no permission, no such family); use `nft` instead."""


def _attr(kind: int, payload: bytes) -> bytes:
    head = struct.pack("=HH", 4 + len(payload), kind)
    return head + payload + b"\0" * (-len(payload) % 4)


def _nest(kind: int, payload: bytes) -> bytes:
    return _attr(kind | 0x8000, payload)  # NLA_F_NESTED


def _name(kind: int, text: str) -> bytes:
    return _attr(kind, text.encode() + b"\0")


def attributes(data: bytes) -> dict[int, list[bytes]]:
    """Netlink attributes by type (nested flag cleared); each type may repeat."""
    found: dict[int, list[bytes]] = {}
    offset = 0
    while offset + 4 <= len(data):
        length, kind = struct.unpack_from("=HH", data, offset)
        if length < 4 or offset + length > len(data):
            break
        found.setdefault(kind & _NESTED_MASK, []).append(data[offset + 4 : offset + length])
        offset += length + (-length % 4)
    return found


def _first(found: dict[int, list[bytes]], kind: int) -> bytes:
    values = found.get(kind)
    return values[0] if values else b""


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


class _Socket:
    """One netfilter netlink socket; requests are answered in order."""

    def __init__(self) -> None:
        try:
            self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
            self.sock.settimeout(_TIMEOUT)
            self.sock.bind((0, 0))
        except OSError as error:
            raise Unreadable(f"no netfilter netlink socket: {error}") from None
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def ask(self, kind: int, payload: bytes, *, dump: bool) -> list[bytes]:
        """The messages' payloads (after the nfgenmsg header); ENOENT is an empty answer.

        A dump the kernel marks as interrupted (the ruleset changed while it was read) is
        asked again, as `nft` does: a half-old answer must not pass a check."""
        flags = _REQUEST | (_DUMP if dump else 0)
        body = struct.pack("=BBH", _INET, 0, 0) + payload
        for _ in range(_ATTEMPTS):
            self.seq += 1
            message = struct.pack("=IHHII", 16 + len(body), _SUBSYS | kind, flags, self.seq, 0)
            try:
                self.sock.send(message + body)
                replies, interrupted = self._replies(dump)
            except OSError as error:
                raise Unreadable(f"netlink request failed: {error}") from None
            if not interrupted:
                return replies
        raise Unreadable("the ruleset kept changing while it was read")

    def _replies(self, dump: bool) -> tuple[list[bytes], bool]:
        replies: list[bytes] = []
        interrupted = False
        while True:
            data = self.sock.recv(1 << 20)
            offset = 0
            while offset + 16 <= len(data):
                length, kind, flags, seq, _pid = struct.unpack_from("=IHHII", data, offset)
                if length < 16:
                    raise Unreadable("a malformed netlink message")
                payload = data[offset + 16 : offset + length]
                offset += length + (-length % 4)
                if seq != self.seq:
                    continue
                interrupted = interrupted or bool(flags & _DUMP_INTR)
                if kind == _ERROR:
                    code = -struct.unpack_from("=i", payload)[0]
                    if code == errno.ENOENT:
                        return [], False
                    if code:
                        raise Unreadable(f"the kernel refused: {os.strerror(code)}")
                    return replies, interrupted
                if kind == _DONE:
                    return replies, interrupted
                replies.append(payload[4:])
                if not dump:
                    return replies, False


def _verdict(data: bytes) -> tuple[int, str]:
    """(verdict code, target chain) of a nested NFTA_DATA_VERDICT."""
    verdict = attributes(_first(attributes(data), 2))
    raw = _first(verdict, 1)
    code = struct.unpack(">i", raw)[0] if len(raw) == 4 else 1
    return code, _text(_first(verdict, 2))


def _rule(payload: bytes, state: TableState) -> None:
    """A rule's comment tag and its dropped-packet count, as `parse_table` keeps them."""
    found = attributes(payload)
    chain = _text(_first(found, 2))
    comment = _first(found, 7)
    while len(comment) >= 2:  # udata TLVs: type, length, value
        kind, size = comment[0], comment[1]
        if kind == 0:  # NFTNL_UDATA_RULE_COMMENT
            text = _text(comment[2 : 2 + size])
            if text.startswith("alcatraz "):
                state.tags[chain] = text
        comment = comment[2 + size :]
    packets, drops = 0, False
    for element in attributes(_first(found, 4)).get(1, []):
        expression = attributes(element)
        name, data = _text(_first(expression, 1)), _first(expression, 2)
        if name == "counter":
            raw = _first(attributes(data), 2)
            packets += struct.unpack(">Q", raw)[0] if len(raw) == 8 else 0
        elif name == "immediate":
            drops = drops or _verdict(_first(attributes(data), 2))[0] == _DROP
    if drops:
        state.counters[chain] = state.counters.get(chain, 0) + packets


def _element_key(raw: bytes, kind: str) -> str:
    value = _first(attributes(raw), 1)
    if kind == "ifname":
        return _text(value)
    if len(value) in (4, 16):
        return str(ipaddress.ip_address(value))
    return value.hex()


def _element_packets(found: dict[int, list[bytes]]) -> int:
    """The counter of a set element (NFTA_SET_ELEM_EXPR or NFTA_SET_ELEM_EXPRESSIONS)."""
    expressions = list(found.get(7, []))
    for nested in found.get(11, []):
        expressions += attributes(nested).get(1, [])
    for raw in expressions:
        expression = attributes(raw)
        if _text(_first(expression, 1)) == "counter":
            packets = _first(attributes(_first(expression, 2)), 2)
            return struct.unpack(">Q", packets)[0] if len(packets) == 8 else 0
    return 0


def _elements(payloads: list[bytes], kind: str) -> list[tuple[str, int, str]]:
    """(key, packets, jump target) of every element in a set-element dump."""
    found: list[tuple[str, int, str]] = []
    for payload in payloads:
        for raw in attributes(_first(attributes(payload), 3)).get(1, []):
            element = attributes(raw)
            key = _element_key(_first(element, 1), kind)
            data = _first(element, 2)
            target = _verdict(data)[1] if data else ""
            found.append((key, _element_packets(element), target))
    return found


def read_objects(
    table: str,
    chains: Iterable[str],
    maps: Iterable[str],
    sets: Iterable[str],
    *,
    interface: str | None = None,
) -> TableState:
    """The named chains (rules' tags and drop counters), verdict maps (ifname -> chain) and
    address sets (address, packets) of `inet <table>`; missing ones are left out.

    With `interface`, each map holds only that bridge's element (asked by key, so the cost
    does not grow with the other projects' bridges); else all of them."""
    link = _Socket()
    try:
        if not link.ask(_GET_TABLE, _name(1, table), dump=False):
            return TableState(exists=False)
        state = TableState(exists=True)
        for chain in chains:
            if link.ask(_GET_CHAIN, _name(1, table) + _name(3, chain), dump=False):
                state.chains.add(chain)
                for rule in link.ask(_GET_RULE, _name(1, table) + _name(2, chain), dump=True):
                    _rule(rule, state)
        for name in maps:
            head = _name(1, table) + _name(2, name)
            if interface is None:
                replies = link.ask(_GET_SETELEM, head, dump=True)
            else:
                key = interface.encode()[:15].ljust(16, b"\0")  # IFNAMSIZ, NUL-padded
                wanted = _nest(3, _nest(1, _nest(1, _attr(1, key))))
                replies = link.ask(_GET_SETELEM, head + wanted, dump=False)
            state.dispatch[name] = {k: t for k, _, t in _elements(replies, "ifname")}
        for name in sets:
            replies = link.ask(_GET_SETELEM, _name(1, table) + _name(2, name), dump=True)
            if replies or _set_exists(link, table, name):
                state.chains.add(name)
                state.seen[name] = [(k, p) for k, p, _ in _elements(replies, "addr")]
        return state
    finally:
        link.close()


def _set_exists(link: _Socket, table: str, name: str) -> bool:
    return bool(link.ask(10, _name(1, table) + _name(2, name), dump=False))  # NFT_MSG_GETSET
