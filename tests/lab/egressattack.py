"""The egress attack probe: hostile bytes an agent may send, run inside the sandbox and, as
the positive control, on the host (standard library only, no imports from tests).

    python3 egressattack.py '[["raw", "203.0.113.243", 80, "474554..."], ...]'

Prints one JSON list, `{"cmd": [...], "ok": bool, "detail": str}` per command:

* `raw HOST PORT HEX WANT`: send the bytes (HOST `resolv`: the project's gateway), read
  until the server closes; ok when the answer contains WANT (`host=blocked.alca.test `:
  the lab's web server answered that site).
* `hello HOST NAME CHUNK`: a real TLS ClientHello for SNI NAME, sent CHUNK bytes per TCP
  segment; ok when the server's first answer is a TLS handshake record (its ServerHello).
* `query HEX PROTO`: a raw DNS message to the sandbox's resolver (resolv.conf); ok when the
  reply is NOERROR with answers; detail: rcode and answer count.
* `hold HOST PORT COUNT NAME`: open COUNT silent connections, then (while they stay open)
  resolve NAME; ok when it resolves; detail says whether an HTTP GET for NAME still passed.
"""

from __future__ import annotations

import contextlib
import json
import resource
import socket
import ssl
import struct
import sys
import time
from typing import Any

TIMEOUT = 3.0


def resolver_address() -> str:
    with open("/etc/resolv.conf", encoding="ascii", errors="replace") as handle:
        for line in handle:
            fields = line.split()
            if len(fields) >= 2 and fields[0] == "nameserver":
                return fields[1]
    raise OSError("no nameserver in /etc/resolv.conf")


def read_all(sock: socket.socket) -> bytes:
    answer = b""
    while chunk := sock.recv(65536):
        answer += chunk
    return answer


def raw(host: str, port: int, hex_data: str, want: str) -> tuple[bool, str]:
    host = resolver_address() if host == "resolv" else host  # the project's gateway
    with socket.create_connection((host, port), timeout=TIMEOUT) as sock:
        sock.sendall(bytes.fromhex(hex_data))
        answer = read_all(sock).decode("utf-8", "replace")
    last = answer.strip().splitlines()[-1] if answer.strip() else "(nothing)"
    return want in answer, last


def client_hello(name: str) -> bytes:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=name)
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def hello(host: str, name: str, chunk: int) -> tuple[bool, str]:
    data = client_hello(name)
    with socket.create_connection((host, 443), timeout=TIMEOUT) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for start in range(0, len(data), chunk):
            sock.sendall(data[start : start + chunk])
            time.sleep(0.001)
        first = sock.recv(5)
    return first[:1] == b"\x16", f"{len(data)} bytes in {chunk}-byte segments; got {first.hex()}"


def query(hex_data: str, proto: str) -> tuple[bool, str]:
    message = bytes.fromhex(hex_data)
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.settimeout(TIMEOUT)
        sock.connect((resolver_address(), 53))
        if kind == socket.SOCK_STREAM:
            sock.sendall(struct.pack("!H", len(message)) + message)
            length = struct.unpack("!H", receive(sock, 2))[0]
            reply = receive(sock, length)
        else:
            sock.send(message)
            reply = sock.recv(65536)
    rcode, answers = reply[3] & 0x0F, struct.unpack_from("!H", reply, 6)[0]
    return rcode == 0 and answers > 0, f"rcode {rcode}, {answers} answers"


def receive(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise OSError("connection closed early")
        data += chunk
    return data


def hold(host: str, port: int, count: int, name: str) -> tuple[bool, str]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # Podman's default is 1024
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, count + 64)), hard))
    held: list[socket.socket] = []
    try:
        for _ in range(count):
            try:
                held.append(socket.create_connection((host, port), timeout=TIMEOUT))
            except OSError:
                break
        if len(held) < count:  # out of descriptors: leave a few for the lookup and the GET
            for sock in held[-8:]:
                sock.close()
            del held[-8:]
        resolved = bool(socket.getaddrinfo(name, 80, socket.AF_INET, socket.SOCK_STREAM))
        request = f"GET / HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode()
        try:
            got = raw(host, port, request.hex(), f"host={name} ")[0]
        except OSError as error:
            got = False
            why = f" ({type(error).__name__})"
        else:
            why = ""
        return resolved, f"{len(held)} held; a new GET {'passed' if got else 'failed' + why}"
    finally:
        for sock in held:
            sock.close()


COMMANDS: dict[str, Any] = {
    "raw": lambda host, port, data, want: raw(host, int(port), data, want),
    "hello": lambda host, name, chunk: hello(host, name, int(chunk)),
    "query": lambda data, proto: query(data, proto),
    "hold": lambda host, port, count, name: hold(host, int(port), int(count), name),
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
