"""The egress probe: what an agent tries, run inside the sandbox and, as the positive
control, on the host (the same file, standard library only, no imports from tests).

    python3 egressprobe.py '[["resolve", "allowed.alca.test"], ["tcp", "other.alca.test", 7001]]'

Prints one JSON list, `{"cmd": [...], "ok": bool, "detail": str}` per command:

* `resolve NAME`: getaddrinfo (IPv4); ok when it gives addresses.
* `dns SERVER NAME PROTO`: one raw A query with EDNS0 (so an Extended DNS Error can come
  back) over udp or tcp to SERVER:53 (`resolv` = the first nameserver of /etc/resolv.conf);
  ok when any reply came; detail is JSON: rcode, answers, ede ([code, text] or null).
* `tcp HOST PORT` / `udp HOST PORT`: send a token line to the lab's echo service; ok when
  it comes back (HOST may be a name: resolved like any client does).
* `banner HOST PORT`: connect and send nothing (a protocol where the server speaks first);
  ok when the lab's banner arrives (a name checker must give up waiting and let it pass).
* `http HOST PORT NAME`: GET with `Host: NAME`; ok when the lab answered for NAME.
* `tls HOST NAME`: HTTPS to HOST:443 with SNI and Host NAME; ok when the lab answered for
  NAME (no certificate check: the name checker, not the client, is under test).
* `fetch URL`: GET (no certificate check); ok on status 200, detail the body's first line.
* `alab HOST PORT`: a token line to a Tier B lab echo server (tests/lab/servers.py); ok
  when its `ALAB-ECHO` answer carries the token.
"""

from __future__ import annotations

import json
import secrets
import socket
import ssl
import struct
import sys
import urllib.request
from typing import Any

TIMEOUT = 2.5
#: longer than a name checker waits for a client's first bytes before it gives up (1-2 s)
BANNER_WAIT = 6.0


def resolver_address() -> str:
    with open("/etc/resolv.conf", encoding="ascii", errors="replace") as handle:
        for line in handle:
            fields = line.split()
            if len(fields) >= 2 and fields[0] == "nameserver":
                return fields[1]
    raise OSError("no nameserver in /etc/resolv.conf")


def skip_name(message: bytes, offset: int) -> int:
    while message[offset]:
        if message[offset] & 0xC0 == 0xC0:
            return offset + 2
        offset += message[offset] + 1
    return offset + 1


def parse_reply(reply: bytes) -> dict[str, Any]:
    """rcode, A answers and the Extended DNS Error (RFC 8914) of a reply."""
    counts = struct.unpack_from("!HHHH", reply, 4)
    offset = skip_name(reply, 12) + 4
    answers: list[str] = []
    ede: list[Any] | None = None
    for index in range(counts[1] + counts[2] + counts[3]):
        offset = skip_name(reply, offset)
        rtype, _cls, _ttl, length = struct.unpack_from("!HHIH", reply, offset)
        data = reply[offset + 10 : offset + 10 + length]
        offset += 10 + length
        if rtype == 1 and index < counts[1]:
            answers.append(socket.inet_ntoa(data))
        elif rtype == 41:
            ede = ede or find_ede(data)
    return {"rcode": reply[3] & 0x0F, "answers": answers, "ede": ede}


def find_ede(options: bytes) -> list[Any] | None:
    offset = 0
    while offset + 4 <= len(options):
        code, length = struct.unpack_from("!HH", options, offset)
        value = options[offset + 4 : offset + 4 + length]
        offset += 4 + length
        if code == 15 and len(value) >= 2:
            return [struct.unpack_from("!H", value)[0], value[2:].decode("utf-8", "replace")]
    return None


def dns(server: str, name: str, proto: str) -> tuple[bool, str]:
    server = resolver_address() if server == "resolv" else server
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split("."))
    opt = b"\0" + struct.pack("!HHIH", 41, 1232, 0, 0)
    query = struct.pack("!HHHHHH", secrets.randbits(16), 0x0100, 1, 0, 0, 1)
    query += labels + b"\0" + struct.pack("!HH", 1, 1) + opt
    family = socket.AF_INET6 if ":" in server else socket.AF_INET
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    with socket.socket(family, kind) as sock:
        sock.settimeout(TIMEOUT)
        sock.connect((server, 53))
        if kind == socket.SOCK_STREAM:
            sock.sendall(struct.pack("!H", len(query)) + query)
            length = struct.unpack("!H", receive(sock, 2))[0]
            reply = receive(sock, length)
        else:
            sock.send(query)
            reply = sock.recv(4096)
    return True, json.dumps(parse_reply(reply))


def receive(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise OSError("connection closed early")
        data += chunk
    return data


def resolve(name: str) -> tuple[bool, str]:
    found = socket.getaddrinfo(name, None, socket.AF_INET, socket.SOCK_STREAM)
    addresses = sorted({str(info[4][0]) for info in found})
    return bool(addresses), " ".join(addresses)


def tcp(host: str, port: int) -> tuple[bool, str]:
    token = secrets.token_hex(8).encode() + b"\n"
    with socket.create_connection((host, port), timeout=TIMEOUT) as sock:
        sock.sendall(token)
        echoed = sock.recv(64)
    return echoed == token, echoed.decode("ascii", "replace").strip()


def banner(host: str, port: int) -> tuple[bool, str]:
    with socket.create_connection((host, port), timeout=TIMEOUT) as sock:
        sock.settimeout(BANNER_WAIT)
        line = sock.recv(256).decode("ascii", "replace").strip()
    return line.startswith("LAB-BANNER"), line


def udp(host: str, port: int) -> tuple[bool, str]:
    token = secrets.token_hex(8).encode()
    address = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_DGRAM)[0][4]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(TIMEOUT)
        sock.sendto(token, address)
        echoed = sock.recv(64)
    return echoed == token, echoed.decode("ascii", "replace")


def http(host: str, port: int, name: str, wrap: ssl.SSLContext | None = None) -> tuple[bool, str]:
    request = f"GET / HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode()
    with socket.create_connection((host, port), timeout=TIMEOUT) as raw:
        sock = wrap.wrap_socket(raw, server_hostname=name) if wrap else raw
        sock.sendall(request)
        body = b""
        while chunk := sock.recv(4096):
            body += chunk
    text = body.decode("utf-8", "replace")
    last = text.strip().splitlines()[-1] if text.strip() else ""
    return f"host={name} " in text, last


def tls(host: str, name: str) -> tuple[bool, str]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    ok, detail = http(host, 443, name, context)
    return ok and f"sni={name} " in detail, detail


def fetch(url: str) -> tuple[bool, str]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with urllib.request.urlopen(url, timeout=TIMEOUT, context=context) as response:  # noqa: S310 (the tests pass https URLs)
        body = response.read().decode("utf-8", "replace")
        return response.status == 200, (body.splitlines() or [""])[0]


def alab(host: str, port: int) -> tuple[bool, str]:
    token = f"alab-{secrets.token_hex(4)}-001"
    with socket.create_connection((host, port), timeout=TIMEOUT) as sock:
        sock.sendall(token.encode() + b"\n")
        answer = sock.recv(256).decode("ascii", "replace").strip()
    return answer.startswith("ALAB-ECHO") and token in answer, answer


COMMANDS: dict[str, Any] = {
    "resolve": lambda name: resolve(name),
    "dns": lambda server, name, proto: dns(server, name, proto),
    "tcp": lambda host, port: tcp(host, int(port)),
    "udp": lambda host, port: udp(host, int(port)),
    "banner": lambda host, port: banner(host, int(port)),
    "http": lambda host, port, name: http(host, int(port), name),
    "tls": lambda host, name: tls(host, name),
    "fetch": lambda url: fetch(url),
    "alab": lambda host, port: alab(host, int(port)),
}


def run(command: list[Any]) -> dict[str, Any]:
    try:
        ok, detail = COMMANDS[command[0]](*command[1:])
    except (OSError, ssl.SSLError, ValueError, struct.error, IndexError) as error:
        ok, detail = False, f"{type(error).__name__}: {error}"
    return {"cmd": command, "ok": ok, "detail": detail}


def main() -> int:
    commands = json.loads(sys.argv[1])
    print(json.dumps([run(command) for command in commands]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
