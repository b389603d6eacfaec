"""The egress name checker against a direct connection, on loopback (issue #15).

    python bench/egress_checker.py [--rounds 10] [--megabytes 512] [--connections 1000]
                                   [--out bench/results]

Four processes: an upstream server, two checkers (`serve_checker`, the original destination
injected as the upstream: no nft, no sandbox) and this client. Every round measures each
variant once, in a shuffled order (bench/benchstats.py): `direct` (client → upstream),
`checker` (client → checker → upstream, as shipped: read/send on the event loop) and
`checker-splice` (the same with splice(2) through a pipe per direction, the alternative the
relay was measured against). Per variant: bulk upload
and download of `--megabytes` over one connection (an HTTP request with an allowed Host
first, as a client through the checker sends one), and the rate of sequential
request/response connections. The ratios checker ÷ direct are taken within each round.
The integrated figure through a real sandbox is another bench (through nft's redirect).
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import os
import platform
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchstats

HOST = "bench.test"
BUFFER = 1 << 20
VARIANTS = ["direct", "checker", "checker-splice"]


# --- the upstream server --------------------------------------------------------------


def _read_head(connection: socket.socket) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            raise ConnectionError("no request head")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def _serve_one(connection: socket.socket) -> None:
    with connection:
        head, rest = _read_head(connection)
        target = head.split(b" ")[1].decode()
        if target == "/upload":
            received = len(rest)
            buffer = bytearray(BUFFER)
            while count := connection.recv_into(buffer):
                received += count
            connection.sendall(str(received).encode())
        elif target.startswith("/download/"):
            block = bytes(BUFFER)
            left = int(target.rsplit("/", 1)[1])
            while left > 0:
                left -= connection.send(block[: min(left, BUFFER)])
        else:
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")


def run_upstream() -> None:
    listener = socket.create_server(("127.0.0.1", 0), backlog=1024)
    print(listener.getsockname()[1], flush=True)
    while True:
        connection, _ = listener.accept()
        threading.Thread(target=_serve_one, args=(connection,), daemon=True).start()


# --- the checker ----------------------------------------------------------------------


def _use_splice_relay() -> None:
    """Swap the relay's read/send for splice(2) through a pipe per direction (what the
    comparison variant measures: moving the bytes without copying them to Python)."""
    from alcatraz.network.egress import relay

    flags = os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK

    class SpliceDirection(relay._Direction):
        def __init__(self, *args: Any) -> None:
            super().__init__(*args)
            self.read_end, self.write_end = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
            fcntl.fcntl(self.write_end, 1031, relay.CHUNK)  # F_SETPIPE_SZ
            self.in_pipe = 0

        def close(self) -> None:
            super().close()
            os.close(self.read_end)
            os.close(self.write_end)

        def _readable(self) -> None:
            try:
                moved = os.splice(self.source.fileno(), self.write_end, relay.CHUNK, flags=flags)
            except BlockingIOError:
                return
            except OSError:
                self.relay.fail()
                return
            self.in_pipe += moved
            self.eof = not moved
            self._flush()

        def _flush(self) -> None:
            try:
                while self.in_pipe:
                    self.in_pipe -= os.splice(
                        self.read_end, self.sink.fileno(), self.in_pipe, flags=flags
                    )
            except BlockingIOError:
                self._stop_reading()
                self._start_writing()
                return
            except OSError:
                self.relay.fail()
                return
            super()._flush()

    relay._Direction = SpliceDirection  # type: ignore[misc]


def run_checker(upstream_port: int, splice: bool) -> None:
    from alcatraz.config.netgrammar.egress import EgressRule
    from alcatraz.network.egress.checker import serve_checker

    if splice:
        _use_splice_relay()

    class Policy:
        listen = "127.0.0.1"
        checker_port = 0
        mark = 0

    async def serve() -> None:
        rules = [EgressRule(HOST, False, None, (), None)]
        server = await serve_checker(
            Policy(),
            rules,
            [],
            original_destination=lambda _sock: ("127.0.0.1", upstream_port),
            destination_allowed=lambda _address: True,  # the upstream is on loopback
        )
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Event().wait()

    asyncio.run(serve())


# --- the client -----------------------------------------------------------------------


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _request(target: str) -> bytes:
    return f"GET {target} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()


def upload_mb_per_s(port: int, megabytes: int) -> float:
    block = bytes(BUFFER)
    started = time.perf_counter()
    with _connect(port) as sock:
        sock.sendall(_request("/upload"))
        for _ in range(megabytes):
            sock.sendall(block)
        sock.shutdown(socket.SHUT_WR)
        reply = sock.recv(100)
    elapsed = time.perf_counter() - started
    if int(reply) != megabytes * BUFFER:
        raise RuntimeError(f"upstream received {reply!r} bytes")
    return megabytes * BUFFER / elapsed / 1e6


def download_mb_per_s(port: int, megabytes: int) -> float:
    buffer = bytearray(BUFFER)
    received = 0
    started = time.perf_counter()
    with _connect(port) as sock:
        sock.sendall(_request(f"/download/{megabytes * BUFFER}"))
        while count := sock.recv_into(buffer):
            received += count
    elapsed = time.perf_counter() - started
    if received != megabytes * BUFFER:
        raise RuntimeError(f"received {received} bytes")
    return received / elapsed / 1e6


def connections_per_s(port: int, count: int) -> float:
    request = _request("/tiny")
    started = time.perf_counter()
    for _ in range(count):
        with _connect(port) as sock:
            sock.sendall(request)
            while sock.recv(65536):
                pass
    return count / (time.perf_counter() - started)


# --- the run --------------------------------------------------------------------------


def _spawn(*args: str) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    return process, int(process.stdout.readline())


def measure(args: argparse.Namespace) -> dict[str, dict[str, list[float]]]:
    upstream, upstream_port = _spawn("--role", "upstream")
    checker, checker_port = _spawn("--role", "checker", "--upstream-port", str(upstream_port))
    splicing, splicing_port = _spawn(
        "--role", "checker-splice", "--upstream-port", str(upstream_port)
    )
    ports = {"direct": upstream_port, "checker": checker_port, "checker-splice": splicing_port}
    samples: dict[str, dict[str, list[float]]] = {
        measure_name: {variant: [] for variant in VARIANTS}
        for measure_name in ("upload", "download", "connections")
    }
    try:
        for variant in VARIANTS:  # warm up every path once
            connections_per_s(ports[variant], 20)
            upload_mb_per_s(ports[variant], 16)
        for index, order in enumerate(benchstats.schedule(VARIANTS, args.rounds, seed=15)):
            for variant in order:
                port = ports[variant]
                samples["upload"][variant].append(upload_mb_per_s(port, args.megabytes))
                samples["download"][variant].append(download_mb_per_s(port, args.megabytes))
                samples["connections"][variant].append(connections_per_s(port, args.connections))
            print(f"round {index + 1}/{args.rounds} done", file=sys.stderr)
    finally:
        for process in (upstream, checker, splicing):
            process.terminate()
            process.wait(10)
    return samples


TARGETS = {"upload": 0.9, "download": 0.9, "connections": 0.8}
UNITS = {"upload": "MB/s", "download": "MB/s", "connections": "conn/s"}


def report(samples: dict[str, dict[str, list[float]]]) -> tuple[str, dict[str, Any]]:
    lines = [
        "| Measure | direct | checker | checker with splice "
        "| checker ÷ direct | with splice ÷ direct | Target |",
        "|---|---|---|---|---|---|---|",
    ]
    summary: dict[str, Any] = {}
    for name, by_variant in samples.items():
        medians = {v: benchstats.summarize(by_variant[v]).median for v in VARIANTS}
        plain = benchstats.ratio_summary(by_variant["direct"], by_variant["checker"])
        splice = benchstats.ratio_summary(by_variant["direct"], by_variant["checker-splice"])
        result = benchstats.verdict(plain, TARGETS[name], "min")
        lines.append(
            f"| {name} ({UNITS[name]}) | {medians['direct']:.0f} | {medians['checker']:.0f} "
            f"| {medians['checker-splice']:.0f} | {benchstats.fmt_ratio(plain)} "
            f"| {benchstats.fmt_ratio(splice)} | ≥ {TARGETS[name]} ({result.status}) |"
        )
        summary[name] = {
            "samples": by_variant,
            "ratio": plain.as_dict(),
            "splice_ratio": splice.as_dict(),
            "verdict": result.as_dict(),
        }
    return "\n".join(lines), summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--role", choices=["client", "upstream", "checker", "checker-splice"])
    parser.add_argument("--upstream-port", type=int)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--megabytes", type=int, default=512)
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.role == "upstream":
        run_upstream()
        return 0
    if args.role in ("checker", "checker-splice"):
        run_checker(args.upstream_port, splice=args.role == "checker-splice")
        return 0
    started = time.time()
    samples = measure(args)
    table, summary = report(samples)
    header = (
        f"egress checker on loopback, {args.rounds} rounds, {args.megabytes} MB bulk, "
        f"{args.connections} connections per sample; {platform.node()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load {os.getloadavg()[0]:.1f}, {time.time() - started:.0f} s"
    )
    print(header + "\n\n" + table)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "egress_checker.md").write_text(header + "\n\n" + table + "\n")
        (args.out / "egress_checker.json").write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
