"""The processes of test_egress_checker.py, each run inside a network namespace.

    python -m tests.integration.egress_checker_ns serve LISTEN PORT UPSTREAM [LISTEN6 UPSTREAM6]
    python -m tests.integration.egress_checker_ns client ADDRESS PORT FIRST_BYTES_HEX

`serve` runs an echo server on UPSTREAM:443 and the real name checker (SO_ORIGINAL_DST, no
injection) on LISTEN:PORT allowing `allowed.test`, and the same over IPv6 when given; it
prints "ready", then every refusal event as a JSON line. `client` connects, sends the bytes,
half-closes and prints what came back ("echo HEX", "reset" or "eof").
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import threading
from typing import Any

from alcatraz.config.netgrammar.egress import EgressRule
from alcatraz.network.egress.checker import serve_checker


class _Policy:
    def __init__(self, listen: str, port: int) -> None:
        self.listen = listen
        self.checker_port = port
        self.mark = 0x5A5A


class _PrintedEvents:
    def append(self, event: Any, /) -> None:
        print(json.dumps(event), flush=True)


def _echo_forever(listener: socket.socket) -> None:
    def one(connection: socket.socket) -> None:
        with connection:
            while data := connection.recv(65536):
                connection.sendall(data)

    while True:
        connection, _ = listener.accept()
        threading.Thread(target=one, args=(connection,), daemon=True).start()


async def _serve(port: int, pairs: list[str]) -> None:
    rules = [EgressRule("allowed.test", False, None, (), None)]
    for listen, upstream in zip(pairs[::2], pairs[1::2], strict=True):
        family = socket.AF_INET6 if ":" in upstream else socket.AF_INET
        listener = socket.create_server((upstream, 443), family=family)
        threading.Thread(target=_echo_forever, args=(listener,), daemon=True).start()
        await serve_checker(_Policy(listen, port), rules, _PrintedEvents())
    print("ready", flush=True)
    await asyncio.Event().wait()


def _client(address: str, port: int, first: bytes) -> str:
    try:
        sock = socket.create_connection((address, port), timeout=10)
    except ConnectionResetError:  # reset before connect() returned (a fast refusal)
        return "reset"
    with sock:
        try:
            sock.sendall(first)
            sock.shutdown(socket.SHUT_WR)
            received = b""
            while chunk := sock.recv(65536):
                received += chunk
        except OSError:  # reset: seen by whichever call came after it
            return "reset"
    return f"echo {received.hex()}" if received else "eof"


def main() -> int:
    role, address, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if role == "serve":
        asyncio.run(_serve(port, [address, *sys.argv[4:]]))
    else:
        print(_client(address, port, bytes.fromhex(sys.argv[4])), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
