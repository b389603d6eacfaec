"""The lab host's TCP services, run inside the bench namespace (`ip netns exec`).

Measuring on the server side keeps the client (a busybox shell loop inside the sandbox,
started through `docker exec`) out of the numbers: the connection rate comes from accept
timestamps, throughput from the first and last byte of each bulk transfer.

Ports (on `--bind`): `base` answers one line per connection ("ok") and closes; `base+1`
discards a bulk upload until EOF; `base+2` is the control port (`stats`, `reset`). With
`--dns`, UDP port 53 answers every A query with the `--bind` address (TTL 300), so a
sandbox with `network.egress` can reach the lab host by name (bench/egress.py).
"""

from __future__ import annotations

import argparse
import json
import socket
import threading
import time


class Recorder:
    """Thread-safe counters read and reset through the control port."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.accepts: list[float] = []
        self.bulk: list[tuple[int, float]] = []

    def reset(self) -> None:
        with self.lock:
            self.accepts = []
            self.bulk = []

    def snapshot(self) -> dict[str, object]:
        with self.lock:
            return {"accepts": list(self.accepts), "bulk": list(self.bulk)}


def _listener(address: str, port: int) -> socket.socket:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((address, port))
    server.listen(512)
    return server


def serve_echo(server: socket.socket, rec: Recorder) -> None:
    while True:
        conn, _ = server.accept()
        now = time.monotonic()
        with rec.lock:
            rec.accepts.append(now)
        try:
            conn.settimeout(5)
            data = b""
            while b"\n" not in data:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
            conn.sendall(b"ok\n")
        except OSError:
            pass
        finally:
            conn.close()


def _drain(conn: socket.socket, rec: Recorder) -> None:
    total, first, last = 0, 0.0, 0.0
    try:
        conn.settimeout(30)
        while chunk := conn.recv(1 << 20):
            last = time.monotonic()
            if not total:
                first = last
            total += len(chunk)
    except OSError:
        pass
    finally:
        conn.close()
    if total:
        with rec.lock:
            rec.bulk.append((total, max(last - first, 1e-9)))


def serve_bulk(server: socket.socket, rec: Recorder) -> None:
    while True:
        conn, _ = server.accept()
        threading.Thread(target=_drain, args=(conn, rec), daemon=True).start()


def serve_control(server: socket.socket, rec: Recorder) -> None:
    while True:
        conn, _ = server.accept()
        with conn:
            command = conn.recv(64).strip()
            if command == b"reset":
                rec.reset()
                conn.sendall(b"{}\n")
            else:
                conn.sendall(json.dumps(rec.snapshot()).encode() + b"\n")


def _dns_answer(query: bytes, address: str) -> bytes | None:
    """An answer to a one-question query: A → `address`, anything else → no records."""
    if len(query) < 12:
        return None
    end = 12
    while end < len(query) and query[end]:
        end += 1 + query[end]
    end += 5  # the root label, QTYPE, QCLASS
    if end > len(query):
        return None
    qtype = int.from_bytes(query[end - 4 : end - 2], "big")
    answers = 1 if qtype == 1 else 0
    header = query[:2] + b"\x81\x80" + b"\x00\x01" + answers.to_bytes(2, "big") + b"\x00\x00" * 2
    body = query[12:end]
    if answers:
        body += b"\xc0\x0c" + b"\x00\x01\x00\x01" + (300).to_bytes(4, "big") + b"\x00\x04"
        body += socket.inet_aton(address)
    return header + body


def serve_dns(address: str) -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind((address, 53))
    while True:
        query, peer = server.recvfrom(4096)
        answer = _dns_answer(query, address)
        if answer is not None:
            server.sendto(answer, peer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bind", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dns", action="store_true", help="answer A queries on UDP 53")
    args = parser.parse_args()
    rec = Recorder()
    servers = [
        (serve_echo, _listener(args.bind, args.port)),
        (serve_bulk, _listener(args.bind, args.port + 1)),
        (serve_control, _listener(args.bind, args.port + 2)),
    ]
    threads = [threading.Thread(target=f, args=(s, rec), daemon=True) for f, s in servers]
    if args.dns:
        threads.append(threading.Thread(target=serve_dns, args=(args.bind,), daemon=True))
    for thread in threads:
        thread.start()
    print("ready", flush=True)
    for thread in threads:
        thread.join()


if __name__ == "__main__":
    main()
