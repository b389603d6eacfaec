"""Token-logging lab servers: run with `python3 servers.py --spec FILE` (stdlib only).

One process serves every listener of one lab host (a network namespace, or the root
namespace for the "host services"). Every arrival is appended as one JSON line to the
spec's log file, with the address it was sent TO (so a wildcard listener still tells
which destination was reached) and the peer it came from:

    {"t": 1.0, "server": "lan", "proto": "tcp", "local": "10.77.0.2", "lport": 18080,
     "peer": "192.168.250.1", "pport": 40000, "tokens": ["alab-0123abcd-007"], "n": 42}

Listener kinds (spec `listen` entries `[proto, address, port, mode]`):

* `tcp` + `echo`: reads the request (until a blank line, 4 KiB or 2 s), answers
  `ALAB-ECHO <server> <tokens>` and closes.
* `tcp` + `http`: same, but answers an HTTP/1.0 200 whose body is the spec's `banner`
  (the metadata canary).
* `udp`: logs the datagram; a DNS query (what busybox `nslookup` sends) gets an NXDOMAIN
  answer with the same id and question, anything else an `ALAB-ECHO` datagram. Replies
  leave from the address the datagram was sent to (IP_PKTINFO), so a connected client
  socket accepts them.
* `icmp` (spec `"icmp": true`): raw ICMP and ICMPv6 sockets that log echo requests whose
  payload is one repeated byte (busybox `ping -p XX -s SIZE`); the token is
  `icmp-<pattern hex>-<size>`. The kernel still answers the ping itself.

Once every socket is bound the process prints `READY <pid>` on stdout; a bind failure
prints the reason on stderr and exits 2. SIGTERM ends it.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import re
import signal
import socket
import struct
import sys
import threading
import time
from pathlib import Path
from typing import Any

TOKEN_RE = re.compile(rb"alab-[0-9a-f]{8}-[0-9]{3}")

# Linux constants the socket module does not export everywhere.
IP_PKTINFO = 8
IPV6_RECVPKTINFO = 49
IPV6_PKTINFO = 50
IP_FREEBIND = 15
IPV6_FREEBIND = 78

READ_LIMIT = 4096
READ_TIMEOUT = 2.0


class Log:
    """Thread-safe JSON-lines writer: one flushed line per arrival."""

    def __init__(self, path: Path, server: str) -> None:
        self.server = server
        self._lock = threading.Lock()
        self._file = path.open("a", encoding="utf-8")

    def write(self, **record: Any) -> None:
        record = {"t": round(time.time(), 3), "server": self.server, **record}
        line = json.dumps(record, sort_keys=True)
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()


def tokens_in(data: bytes) -> list[str]:
    return sorted({m.decode() for m in TOKEN_RE.findall(data)})


def family_of(address: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def bind_socket(kind: int, address: str, port: int, freebind: bool) -> socket.socket:
    family = family_of(address)
    sock = socket.socket(family, kind)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    if freebind:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_FREEBIND, 1)
        else:
            sock.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)
    sock.bind((address, port))
    return sock


def spawn(target: Any, *args: Any) -> None:
    threading.Thread(target=target, args=args, daemon=True).start()


# --- TCP ------------------------------------------------------------------------------


def serve_tcp(sock: socket.socket, log: Log, mode: str, banner: str) -> None:
    sock.listen(64)
    while True:
        try:
            conn, peer = sock.accept()
        except OSError:
            return
        spawn(handle_tcp, conn, peer, log, mode, banner)


def handle_tcp(conn: socket.socket, peer: Any, log: Log, mode: str, banner: str) -> None:
    with conn:
        local = conn.getsockname()
        conn.settimeout(READ_TIMEOUT)
        data = b""
        try:
            while len(data) < READ_LIMIT and b"\n\n" not in data and b"\r\n\r\n" not in data:
                chunk = conn.recv(READ_LIMIT)
                if not chunk:
                    break
                data += chunk
                if TOKEN_RE.search(data) and mode == "echo" and data.endswith(b"\n"):
                    # an echo client sends one line; answer without waiting for more
                    break
        except OSError:
            pass
        found = tokens_in(data)
        log.write(
            proto="tcp",
            local=local[0],
            lport=local[1],
            peer=peer[0],
            pport=peer[1],
            tokens=found,
            n=len(data),
        )
        text = " ".join(found) or "-"
        if mode == "http":
            body = f"{banner} {text}\n".encode()
            reply = (
                b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\nConnection: close\r\n\r\n"
                + body
            )
        else:
            reply = f"ALAB-ECHO {log.server} {text}\n".encode()
        try:
            conn.sendall(reply)
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass


# --- UDP ------------------------------------------------------------------------------


def dns_nxdomain(query: bytes) -> bytes | None:
    """An NXDOMAIN answer to a one-question DNS query, or None if it is not one."""
    if len(query) < 17:
        return None
    ident, flags, qdcount = struct.unpack("!HHH", query[:6])
    if flags & 0x8000 or qdcount != 1:
        return None
    pos = 12
    while pos < len(query) and query[pos] != 0:
        pos += 1 + query[pos]
    end = pos + 5  # zero label, qtype, qclass
    if end > len(query):
        return None
    rd = flags & 0x0100
    header = struct.pack("!HHHHHH", ident, 0x8000 | rd | 0x0080 | 3, 1, 0, 0, 0)
    return header + query[12:end]


def serve_udp(sock: socket.socket, log: Log) -> None:
    family = sock.family
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)
    else:
        sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
    lport = sock.getsockname()[1]
    while True:
        try:
            data, ancdata, _flags, peer = sock.recvmsg(65535, 256)
        except OSError:
            return
        local = sock.getsockname()[0]
        for level, kind, payload in ancdata:
            if level == socket.IPPROTO_IP and kind == IP_PKTINFO and len(payload) >= 12:
                local = socket.inet_ntop(socket.AF_INET, payload[8:12])
            elif level == socket.IPPROTO_IPV6 and kind == IPV6_PKTINFO and len(payload) >= 16:
                local = socket.inet_ntop(socket.AF_INET6, payload[:16])
        found = tokens_in(data)
        log.write(
            proto="udp",
            local=local,
            lport=lport,
            peer=peer[0],
            pport=peer[1],
            tokens=found,
            n=len(data),
        )
        reply = dns_nxdomain(data) or f"ALAB-ECHO {log.server} {' '.join(found) or '-'}\n".encode()
        send_from(sock, reply, peer, local)


def send_from(sock: socket.socket, reply: bytes, peer: Any, local: str) -> None:
    """Reply from the address the datagram was sent to (unless it was broadcast/multicast)."""
    ancillary: list[tuple[int, int, bytes]] = []
    address = ipaddress.ip_address(local)
    special = address.is_multicast or address.is_unspecified or local == "255.255.255.255"
    if not special:
        if sock.family == socket.AF_INET6:
            info = socket.inet_pton(socket.AF_INET6, local) + struct.pack("@I", 0)
            ancillary.append((socket.IPPROTO_IPV6, IPV6_PKTINFO, info))
        else:
            info = struct.pack("@I", 0) + socket.inet_pton(socket.AF_INET, local) + bytes(4)
            ancillary.append((socket.IPPROTO_IP, IP_PKTINFO, info))
    with contextlib.suppress(OSError):
        sock.sendmsg([reply], ancillary, 0, peer)


# --- ICMP -----------------------------------------------------------------------------


def icmp_token(data: bytes) -> str | None:
    """`icmp-<pattern>-<size>` for an echo payload that is one byte repeated.

    busybox ping fills the payload with the `-p` byte and may put a timestamp in the
    first bytes, so only the bytes after offset 8 are compared.
    """
    if len(data) < 16:
        return None
    tail = data[8:]
    pattern = tail[0]
    if tail.count(pattern) != len(tail):
        return None
    return f"icmp-{pattern:02x}-{len(data)}"


def serve_icmp4(sock: socket.socket, log: Log) -> None:
    while True:
        try:
            packet, peer = sock.recvfrom(65535)
        except OSError:
            return
        ihl = (packet[0] & 0x0F) * 4
        if len(packet) < ihl + 8 or packet[ihl] != 8:  # echo request only
            continue
        token = icmp_token(packet[ihl + 8 :])
        if token is None:
            continue
        dst = socket.inet_ntop(socket.AF_INET, packet[16:20])
        log.write(proto="icmp", local=dst, lport=0, peer=peer[0], pport=0, tokens=[token], n=0)


def serve_icmp6(sock: socket.socket, log: Log) -> None:
    sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)
    while True:
        try:
            packet, ancdata, _flags, peer = sock.recvmsg(65535, 256)
        except OSError:
            return
        if len(packet) < 8 or packet[0] != 128:  # echo request only
            continue
        token = icmp_token(packet[8:])
        if token is None:
            continue
        local = "::"
        for level, kind, payload in ancdata:
            if level == socket.IPPROTO_IPV6 and kind == IPV6_PKTINFO and len(payload) >= 16:
                local = socket.inet_ntop(socket.AF_INET6, payload[:16])
        log.write(proto="icmp", local=local, lport=0, peer=peer[0], pport=0, tokens=[token], n=0)


# --- main -----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", required=True, type=Path)
    args = parser.parse_args(argv)
    spec = json.loads(args.spec.read_text())
    log = Log(Path(spec["log"]), spec["name"])
    banner = spec.get("banner", "ALAB-HTTP")
    freebind = bool(spec.get("freebind", False))
    starters: list[tuple[Any, tuple[Any, ...]]] = []
    try:
        for proto, address, port, mode in spec.get("listen", []):
            if proto == "tcp":
                sock = bind_socket(socket.SOCK_STREAM, address, port, freebind)
                starters.append((serve_tcp, (sock, log, mode, banner)))
            elif proto == "udp":
                sock = bind_socket(socket.SOCK_DGRAM, address, port, freebind)
                starters.append((serve_udp, (sock, log)))
            else:
                raise ValueError(f"unknown protocol {proto!r}")
        if spec.get("icmp"):
            raw4 = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
            starters.append((serve_icmp4, (raw4, log)))
            raw6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
            starters.append((serve_icmp6, (raw6, log)))
    except (OSError, ValueError) as exc:
        print(f"servers.py {spec['name']}: cannot listen: {exc}", file=sys.stderr, flush=True)
        return 2
    for target, target_args in starters:
        spawn(target, *target_args)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    print(f"READY {os.getpid()}", flush=True)
    done.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
