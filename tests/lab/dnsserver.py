"""A lab DNS server: answers a few `.test` names and logs every query it receives.

    python3 dnsserver.py --listen ADDR [--listen ADDR ...] --log FILE \
        --record NAME=ADDRESS[@TTL] [--record ...]

UDP and TCP on port 53 of each address (IP_FREEBIND). A and AAAA questions for a known
name get its addresses (TTL 5 unless the record gives one: the egress tests need short and
long ones); any other name gets NXDOMAIN. Every query is one JSON line
in the log: {"name": ..., "type": ..., "peer": ..., "local": ..., "proto": ...}. Prints
`READY <pid>` once bound; SIGTERM ends it. Standard library only.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import signal
import socket
import struct
import sys
import threading
from typing import Any

IP_FREEBIND = 15
TYPES = {1: "A", 28: "AAAA"}
DEFAULT_TTL = 5
Zone = dict[str, list[tuple[str, int]]]  # name -> [(address, ttl)]


def parse_record(text: str) -> tuple[str, str, int]:
    """`NAME=ADDRESS[@TTL]` -> (name, address, ttl)."""
    name, value = text.split("=", 1)
    address, _, ttl = value.partition("@")
    return name.lower().rstrip("."), address, int(ttl) if ttl else DEFAULT_TTL


def parse_question(message: bytes) -> tuple[str, int, int] | None:
    """(name, qtype, end offset) of the first question, or None."""
    if len(message) < 12:
        return None
    offset, labels = 12, []
    while offset < len(message):
        length = message[offset]
        offset += 1
        if length == 0:
            break
        labels.append(message[offset : offset + length].decode("ascii", "replace"))
        offset += length
    if offset + 4 > len(message):
        return None
    (qtype,) = struct.unpack_from("!H", message, offset)
    return ".".join(labels).lower(), qtype, offset + 4


def answer(query: bytes, zone: Zone) -> tuple[bytes | None, str, int]:
    parsed = parse_question(query)
    if parsed is None:
        return None, "", 0
    name, qtype, end = parsed
    ident = query[:2]
    rd = query[2] & 0x01
    records = []
    known = name if name in zone else "*." + name.split(".", 1)[-1]
    if known in zone:
        for address, ttl in zone[known]:
            ip = ipaddress.ip_address(address)
            if (qtype == 1 and ip.version == 4) or (qtype == 28 and ip.version == 6):
                records.append(
                    b"\xc0\x0c" + struct.pack("!HHIH", qtype, 1, ttl, len(ip.packed)) + ip.packed
                )
        rcode = 0
    else:
        rcode = 3
    flags = struct.pack("!BB", 0x84 | rd, 0x80 | rcode)
    header = ident + flags + struct.pack("!HHHH", 1, len(records), 0, 0)
    return header + query[12:end] + b"".join(records), name, qtype


class Log:
    def __init__(self, path: str) -> None:
        self.path = path
        self.lock = threading.Lock()

    def write(self, **record: Any) -> None:
        with self.lock, open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")


def serve_udp(sock: socket.socket, zone: Zone, log: Log, local: str) -> None:
    while True:
        data, peer = sock.recvfrom(4096)
        reply, name, qtype = answer(data, zone)
        log.write(name=name, type=TYPES.get(qtype, str(qtype)), peer=peer[0], local=local,
                  proto="udp")  # fmt: skip
        if reply is not None:
            sock.sendto(reply, peer)


def serve_tcp(sock: socket.socket, zone: Zone, log: Log, local: str) -> None:
    while True:
        conn, peer = sock.accept()
        threading.Thread(target=_tcp_client, args=(conn, peer, zone, log, local),
                         daemon=True).start()  # fmt: skip


def _tcp_client(conn: socket.socket, peer: Any, zone: Zone, log: Log,
                local: str) -> None:  # fmt: skip
    with conn:
        conn.settimeout(5)
        try:
            (length,) = struct.unpack("!H", conn.recv(2))
            data = b""
            while len(data) < length:
                chunk = conn.recv(length - len(data))
                if not chunk:
                    return
                data += chunk
        except (OSError, struct.error):
            return
        reply, name, qtype = answer(data, zone)
        log.write(name=name, type=TYPES.get(qtype, str(qtype)), peer=peer[0], local=local,
                  proto="tcp")  # fmt: skip
        if reply is not None:
            conn.sendall(struct.pack("!H", len(reply)) + reply)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", action="append", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--record", action="append", default=[])
    args = parser.parse_args()
    zone: Zone = {}
    for item in args.record:
        name, address, ttl = parse_record(item)
        zone.setdefault(name, []).append((address, ttl))
    log = Log(args.log)
    threads = []
    for address in args.listen:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        for kind, target in ((socket.SOCK_DGRAM, serve_udp), (socket.SOCK_STREAM, serve_tcp)):
            sock = socket.socket(family, kind)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            level = socket.IPPROTO_IPV6 if family == socket.AF_INET6 else socket.IPPROTO_IP
            sock.setsockopt(level, 78 if family == socket.AF_INET6 else IP_FREEBIND, 1)
            try:
                sock.bind((address, 53))
            except OSError as error:
                print(f"bind {address}:53: {error}", file=sys.stderr)
                return 2
            if kind == socket.SOCK_STREAM:
                sock.listen(16)
            threads.append(threading.Thread(target=target, args=(sock, zone, log, address),
                                            daemon=True))  # fmt: skip
    for thread in threads:
        thread.start()
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    print(f"READY {os.getpid()}", flush=True)
    threading.Event().wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
