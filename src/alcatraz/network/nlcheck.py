"""Whether one chain of `inet alcatraz` carries a rule comment, asked over netlink.

Why: `alca run` checks that its project's forward chain is loaded as `up` wrote it. `nft list
chain` builds its cache of the whole table first, so the check cost 3 ms with one project
and ~35 ms with 200; the kernel filters a rule dump by table and chain itself, so this
costs well under a millisecond at any number of projects. It is on `alca run`'s path, so
standard library only, and `_socket`, not `socket` (whose enums and `selectors` cost ~5 ms).

Read-only (one GET dump). nfnetlink needs CAP_NET_ADMIN: anything it cannot answer is
`None`, and the caller asks `nft` instead; a chain that is missing is `False`.
"""

from __future__ import annotations

import _socket
import struct

__all__ = ["chain_has_comment"]

_NETLINK_NETFILTER = 12
_GET_RULE = (10 << 8) | 7  # NFNL_SUBSYS_NFTABLES, NFT_MSG_GETRULE
_REQUEST_DUMP = 0x1 | 0x300
_DUMP_INTERRUPTED = 0x10
_ERROR, _DONE = 2, 3
_ENOENT = 2
_INET = 1  # NFPROTO_INET
_RULE_CHAIN, _RULE_USERDATA = 2, 7
_COMMENT = 0  # NFTNL_UDATA_RULE_COMMENT
_SEQ = 1


def _attribute(kind: int, text: str) -> bytes:
    payload = text.encode() + b"\0"
    return struct.pack("=HH", 4 + len(payload), kind) + payload + b"\0" * (-len(payload) % 4)


def _comments(payload: bytes) -> list[bytes]:
    """The comment of a rule message (its attributes after the 4-byte nfgenmsg)."""
    found: list[bytes] = []
    offset = 4
    while offset + 4 <= len(payload):
        length, kind = struct.unpack_from("=HH", payload, offset)
        if length < 4:
            break
        if kind & 0x3FFF == _RULE_USERDATA:
            data = payload[offset + 4 : offset + length]
            while len(data) >= 2:  # udata TLVs: type, length, value
                if data[0] == _COMMENT:
                    found.append(data[2 : 2 + data[1]].rstrip(b"\0"))
                data = data[2 + data[1] :]
        offset += length + (-length % 4)
    return found


def _dump(sock: _socket.socket, request: bytes) -> tuple[list[bytes], bool] | None:
    """Every comment of the chain's rules, and whether the dump was interrupted; None when
    the chain (or table) does not exist."""
    sock.send(request)
    comments: list[bytes] = []
    interrupted = False
    while True:
        data = sock.recv(1 << 18)
        offset = 0
        while offset + 16 <= len(data):
            length, kind, flags, seq, _pid = struct.unpack_from("=IHHII", data, offset)
            if length < 16:
                raise OSError("a malformed netlink message")
            payload = data[offset + 16 : offset + length]
            offset += length + (-length % 4)
            if seq != _SEQ:
                continue
            interrupted = interrupted or bool(flags & _DUMP_INTERRUPTED)
            if kind == _ERROR:
                code = -struct.unpack_from("=i", payload)[0]
                if code == _ENOENT:
                    return None
                if code:
                    raise OSError(code, "the kernel refused the dump")
                return comments, interrupted
            if kind == _DONE:
                return comments, interrupted
            comments.extend(_comments(payload))


def chain_has_comment(table: str, chain: str, comment: str) -> bool | None:
    """Whether a rule of `inet table` chain `chain` has exactly `comment`; None when netlink
    cannot tell (no permission, an old kernel, a ruleset that kept changing)."""
    body = struct.pack("=BBH", _INET, 0, 0) + _attribute(1, table) + _attribute(_RULE_CHAIN, chain)
    request = struct.pack("=IHHII", 16 + len(body), _GET_RULE, _REQUEST_DUMP, _SEQ, 0) + body
    wanted = comment.encode()
    try:
        sock = _socket.socket(_socket.AF_NETLINK, _socket.SOCK_RAW, _NETLINK_NETFILTER)
    except OSError:
        return None
    try:
        sock.settimeout(5.0)
        sock.bind((0, 0))
        for _ in range(3):  # a dump interrupted by a ruleset change is asked again
            answer = _dump(sock, request)
            if answer is None:
                return False
            comments, interrupted = answer
            if not interrupted:
                return wanted in comments
        return None
    except (OSError, struct.error):
        return None
    finally:
        sock.close()
