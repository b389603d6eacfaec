"""The project's resolver: a small DNS forwarder on the sandbox's gateway.

Why it exists: Docker's embedded resolver forwards a sandbox's queries to the host's
resolvers from the *sandbox's* network namespace, so a resolver on a private, loopback or
link-local address (a home router, systemd-resolved's 127.0.0.53, a cloud's 169.254.x) is
either blocked by the isolation rules or unreachable. This forwarder listens on the
project's gateway (port 53, the one host port the rules open to the sandbox) and asks the
host's resolvers from the host's own namespace. The sandbox can talk DNS to nothing else.

It relays DNS messages unchanged (no cache, no rewriting); it only reads a query's header
and question to answer SERVFAIL when no upstream answers, and checks that a reply's id and
question match the query. One process per project, started by `alca up` (see
`alcatraz.network.resolver`), detached from it. With `--policy` it is the project's guard
daemon (`alcatraz.network.egress.daemon`: filter, socket mark, live gate, name checker).

    python -m alcatraz.network.dnsproxy --listen 10.213.7.1 --pidfile PATH
        [--resolv-conf /etc/resolv.conf] [--upstream ADDR[:PORT] ...] [--policy PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import struct
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from alcatraz.network.dnswire import matches, question_end, refusal, servfail, split_host_port
from alcatraz.network.resolvconf import parse_resolv_conf as parse_resolv_conf  # importers

if TYPE_CHECKING:
    from alcatraz.network.egress.daemon import Daemon

#: Linux's IP_FREEBIND (15): bind the gateway's address even while the engine has not yet
#: (re)created the bridge that carries it (after a reboot or an engine restart).
IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)
IPV6_FREEBIND = 78  # its IPv6 counterpart (Linux 4.15+); not in the socket module
SO_MARK = getattr(socket, "SO_MARK", 36)
DNS_PORT = 53
UPSTREAM_TIMEOUT = 2.0  # seconds per upstream try
MAX_INFLIGHT = 256  # concurrent upstream queries
MAX_QUEUED = 1024  # UDP queries waiting or in flight; more are dropped (the client retries)
MAX_TCP_CLIENTS = 64
TCP_IDLE = 10.0
RESOLV_RECHECK = 1.0  # seconds between looks at resolv.conf's mtime


@dataclass
class Upstreams:
    """The resolvers to ask: fixed ones, or a resolv.conf read again when it changes."""

    fixed: Sequence[str] = ()
    resolv_conf: str = "/etc/resolv.conf"
    exclude: frozenset[str] = frozenset()
    _cached: list[str] = field(default_factory=list)
    _stamp: tuple[int, int] | None = None
    _checked: float = 0.0

    def current(self) -> list[str]:
        if self.fixed:
            return [a for a in self.fixed if a not in self.exclude]
        now = time.monotonic()
        if now - self._checked < RESOLV_RECHECK and self._stamp is not None:
            return self._cached
        self._checked = now
        try:
            info = os.stat(self.resolv_conf)
            stamp = (info.st_mtime_ns, info.st_ino)
            if stamp != self._stamp:
                with open(self.resolv_conf, encoding="utf-8", errors="replace") as handle:
                    found = parse_resolv_conf(handle.read(65536))
                self._cached = [a for a in found if a not in self.exclude]
                self._stamp = stamp
        except OSError:
            self._cached, self._stamp = [], None
        return self._cached


def _family_and_address(upstream: str) -> tuple[socket.AddressFamily, Any]:
    """The socket family and address tuple (with a link-local zone's scope id) of `upstream`."""
    host, port = split_host_port(upstream)
    info = socket.getaddrinfo(
        host, port or DNS_PORT, type=socket.SOCK_DGRAM, flags=socket.AI_NUMERICHOST
    )[0]
    return info[0], info[4]


class _Reply(asyncio.DatagramProtocol):
    def __init__(self, query: bytes) -> None:
        self.query = query
        self.answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: object) -> None:
        if matches(self.query, data) and not self.answer.done():
            self.answer.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.answer.done():
            self.answer.set_exception(exc)


async def ask_udp(upstream: str, query: bytes) -> bytes:
    loop = asyncio.get_running_loop()
    family, address = _family_and_address(upstream)
    # A connected socket of our own: asyncio takes only (host, port) for remote_addr, which
    # would drop an IPv6 link-local upstream's zone.
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.connect(address)
    except OSError:
        sock.close()
        raise
    transport, protocol = await loop.create_datagram_endpoint(lambda: _Reply(query), sock=sock)
    try:
        transport.sendto(query)
        return await asyncio.wait_for(protocol.answer, UPSTREAM_TIMEOUT)
    finally:
        transport.close()


async def ask_tcp(upstream: str, query: bytes) -> bytes:
    loop = asyncio.get_running_loop()
    family, address = _family_and_address(upstream)

    async def exchange() -> bytes:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, address)
        except OSError:
            sock.close()
            raise
        reader, writer = await asyncio.open_connection(sock=sock)
        try:
            writer.write(struct.pack("!H", len(query)) + query)
            await writer.drain()
            (length,) = struct.unpack("!H", await reader.readexactly(2))
            reply = await reader.readexactly(length)
        finally:
            writer.close()
        if not matches(query, reply):
            raise ValueError("mismatched reply")
        return reply

    return await asyncio.wait_for(exchange(), UPSTREAM_TIMEOUT)


class Forwarder:
    """Relays one query to the upstreams in order; SERVFAIL when none answers. A guard
    daemon, when given, decides on each query and wraps its forwarding."""

    def __init__(self, upstreams: Upstreams, daemon: Daemon | None = None) -> None:
        self.upstreams = upstreams
        self.inflight = asyncio.Semaphore(MAX_INFLIGHT)
        self.daemon = daemon

    async def resolve(self, query: bytes, *, tcp: bool) -> bytes | None:
        if question_end(query) is None or query[2] & 0x80:
            return None  # not a query we can answer: drop it
        refused = refusal(query)
        if refused is not None:
            return refused
        if self.daemon is not None:
            return await self.daemon.answer(query, lambda: self.forward(query, tcp=tcp))
        return await self.forward(query, tcp=tcp)

    async def forward(self, query: bytes, *, tcp: bool) -> bytes | None:
        async with self.inflight:
            for upstream in self.upstreams.current():
                try:
                    return await (ask_tcp if tcp else ask_udp)(upstream, query)
                except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError):
                    continue
        return servfail(query)


class _UdpServer(asyncio.DatagramProtocol):
    def __init__(self, forwarder: Forwarder) -> None:
        self.forwarder = forwarder
        self.transport: asyncio.DatagramTransport | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(self.tasks) >= MAX_QUEUED:
            return  # a flood: drop, bounded memory (clients retry)
        task = asyncio.get_running_loop().create_task(self._answer(data, addr))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _answer(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = await self.forwarder.resolve(data, tcp=False)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)


async def _serve_tcp_client(
    forwarder: Forwarder,
    clients: asyncio.Semaphore,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
) -> None:
    if clients.locked():
        writer.close()
        return
    async with clients:
        try:
            while True:
                header = await asyncio.wait_for(reader.readexactly(2), TCP_IDLE)
                (length,) = struct.unpack("!H", header)
                query = await asyncio.wait_for(reader.readexactly(length), TCP_IDLE)
                reply = await forwarder.resolve(query, tcp=True)
                if reply is None:
                    break
                writer.write(struct.pack("!H", len(reply)) + reply)
                await asyncio.wait_for(writer.drain(), TCP_IDLE)  # a client that never reads
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


def bind_sockets(
    listen: str, port: int = DNS_PORT, mark: int = 0
) -> tuple[socket.socket, socket.socket]:
    """UDP and TCP sockets on `listen`:`port`, bound even before the address exists; with
    `mark`, marked so that the rules accept only this daemon's sockets on the gateway."""
    family = socket.AF_INET6 if ":" in listen else socket.AF_INET
    level, freebind = (
        (socket.IPPROTO_IPV6, IPV6_FREEBIND)
        if family == socket.AF_INET6
        else (socket.IPPROTO_IP, IP_FREEBIND)
    )
    sockets: list[socket.socket] = []
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        sock = socket.socket(family, kind)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(level, freebind, 1)
            if mark:
                sock.setsockopt(socket.SOL_SOCKET, SO_MARK, mark)
            sock.bind((listen, port))
            if kind == socket.SOCK_STREAM:
                sock.listen(64)
            sock.setblocking(False)
        except OSError:
            sock.close()
            for other in sockets:
                other.close()
            raise
        sockets.append(sock)
    return sockets[0], sockets[1]


async def serve(
    udp: socket.socket, tcp: socket.socket, upstreams: Upstreams, daemon: Daemon | None = None
) -> None:
    loop = asyncio.get_running_loop()
    forwarder = Forwarder(upstreams, daemon)
    transport, _ = await loop.create_datagram_endpoint(lambda: _UdpServer(forwarder), sock=udp)
    clients = asyncio.Semaphore(MAX_TCP_CLIENTS)
    server = await asyncio.start_server(
        lambda r, w: _serve_tcp_client(forwarder, clients, r, w), sock=tcp
    )
    stop: asyncio.Future[None] = loop.create_future()

    def request_stop() -> None:
        if not stop.done():
            stop.set_result(None)

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, request_stop)
    extras = loop.create_task(daemon.run_extras()) if daemon is not None else None
    if extras is not None:  # the live gate and the checker, or nothing runs at all
        extras.add_done_callback(lambda _: request_stop())
    try:
        await stop
    finally:
        if extras is not None:
            extras.cancel()
        transport.close()
        server.close()


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m alcatraz.network.dnsproxy")
    parser.add_argument("--listen", required=True, help="the project gateway's address")
    parser.add_argument("--port", type=int, default=DNS_PORT, help=argparse.SUPPRESS)
    parser.add_argument("--pidfile", required=True)
    parser.add_argument("--resolv-conf", default="/etc/resolv.conf")
    parser.add_argument("--upstream", action="append", default=[])
    parser.add_argument("--project", default="", help="the project key (for ps and cleanup)")
    parser.add_argument("--policy", help="the guard daemon's policy file (JSON)")
    return parser.parse_args(argv)


def _write_pidfile(path: str) -> None:
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w", encoding="ascii") as handle:
        handle.write(f"{os.getpid()}\n")
    os.replace(temporary, path)


def main(argv: Sequence[str] | None = None) -> int:
    """Bind, write the pid file, say "ready" on stdout, close it, then serve until SIGTERM."""
    args = _parse(sys.argv[1:] if argv is None else argv)
    # Whatever the starter held open (a lock, a pipe, a terminal) is not ours to keep.
    os.closerange(3, os.sysconf("SC_OPEN_MAX"))
    daemon = None
    if args.policy:
        from alcatraz.network.egress import daemon as guard  # dnspython: the guard's only

        try:
            daemon = guard.load(args.policy)
        except (OSError, ValueError) as error:
            print(f"error: policy {args.policy}: {getattr(error, 'strerror', None) or error}")
            return 1
    try:
        udp, tcp = bind_sockets(args.listen, args.port, daemon.mark if daemon else 0)
    except OSError as error:
        print(f"error: cannot listen on {args.listen} port {args.port}: {error.strerror}")
        return 1
    fixed = daemon.policy.upstreams if daemon and daemon.policy.upstreams else args.upstream
    upstreams = Upstreams(
        fixed=tuple(fixed), resolv_conf=args.resolv_conf, exclude=frozenset({args.listen})
    )
    if daemon is not None:
        daemon.prepare()
    _write_pidfile(args.pidfile)
    print("ready", flush=True)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 1)
    os.close(devnull)
    try:
        asyncio.run(serve(udp, tcp, upstreams, daemon))
    finally:
        with contextlib.suppress(OSError):
            with open(args.pidfile, encoding="ascii") as handle:
                mine = handle.read().strip() == str(os.getpid())
            if mine:
                os.unlink(args.pidfile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
