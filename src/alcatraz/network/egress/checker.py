"""The name checker: TCP from the sandbox to the addresses of allowed names lands here
(an nft redirect), and passes only if the name it presents is allowed too.

An allowed address may serve many names (a CDN), so the first bytes are read (TLS SNI,
HTTP/1 Host; see `sniff`) and checked against `[network] egress` for the original port.
No name (a protocol that is neither, or a server that speaks first) passes: the address
itself is allowed. A refusal resets the connection and is recorded as a `check-refused`
event. A passing connection is joined to its original destination by `relay`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import resource
import socket
import struct
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, cast

from alcatraz.config.netgrammar.egress import EgressRule
from alcatraz.network.egress.policy import connection_allowed
from alcatraz.network.egress.relay import DESCRIPTORS_PER_RELAY, Relay, reset
from alcatraz.network.egress.sniff import Sniffed, Verdict, sniff
from alcatraz.network.plan import BLOCKED4, BLOCKED6

#: How long a client may stay silent before it counts as "the server speaks first".
FIRST_BYTES_WAIT = 1.0
#: How long, from its first byte, a client has to finish its ClientHello or request head.
SNIFF_WAIT = 2.0
CONNECT_TIMEOUT = 10.0
MAX_CONNECTIONS = 1024
_BACKLOG = 1024
_SO_ORIGINAL_DST = 80  # netfilter's getsockopt, also IP6T_SO_ORIGINAL_DST at SOL_IPV6
_IP_FREEBIND = 15
_IPV6_FREEBIND = 78

Address = tuple[str, int]


class CheckerPolicy(Protocol):
    """What the checker reads of the daemon's policy (`policy.DaemonPolicy` has it)."""

    @property
    def listen(self) -> str: ...
    @property
    def checker_port(self) -> int: ...
    @property
    def mark(self) -> int: ...


class EventSink(Protocol):
    """Where refusals go: the daemon's JSONL writer (a list in tests)."""

    def append(self, event: Mapping[str, object], /) -> None: ...


def original_destination(sock: Any) -> Address:
    """Where the client meant to connect before nft redirected it (conntrack's record)."""
    if sock.family == socket.AF_INET6:
        raw = sock.getsockopt(socket.IPPROTO_IPV6, _SO_ORIGINAL_DST, 28)
        port, address = struct.unpack_from("!H4x16s", raw, 2)
        return str(ipaddress.IPv6Address(address)), port
    raw = sock.getsockopt(socket.SOL_IP, _SO_ORIGINAL_DST, 16)
    port, address = struct.unpack_from("!H4s", raw, 2)
    return str(ipaddress.IPv4Address(address)), port


def public_destination(address: str) -> bool:
    """Whether `address` lies outside the ranges the sandbox never reaches (plan.BLOCKED4/6)."""
    ip = ipaddress.ip_address(address)
    blocked: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = (
        BLOCKED4 if ip.version == 4 else BLOCKED6
    )
    return not any(ip in network for network in blocked)


def bind_checker(listen: str, port: int, mark: int) -> socket.socket:
    """The listening socket: bound before the bridge has the address, marked for nft.

    `mark` 0 sets no mark (tests without CAP_NET_ADMIN); otherwise failing to set it is an
    error, since the input chain accepts only marked sockets.
    """
    family = socket.AF_INET6 if ":" in listen else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, _IPV6_FREEBIND, 1)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        else:
            sock.setsockopt(socket.IPPROTO_IP, _IP_FREEBIND, 1)
        if mark:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, mark)
        sock.bind((listen, port))
        sock.listen(_BACKLOG)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


async def serve_checker(
    policy: CheckerPolicy,
    rules: Sequence[EgressRule],
    events: EventSink,
    *,
    original_destination: Callable[[Any], Address] = original_destination,
    destination_allowed: Callable[[str], bool] = public_destination,
    max_connections: int = MAX_CONNECTIONS,
) -> asyncio.Server:
    """Start the checker on `policy.listen`:`policy.checker_port`.

    `destination_allowed` vets the original destination before anything else: nft's
    redirect to the checker skips the forward chain's LAN block, so an allowed name that
    resolves to a private address must not become a way into the LAN (the daemon can pass
    a predicate that also excludes the host's directly connected subnets).
    """
    _allow_descriptors(max_connections * (DESCRIPTORS_PER_RELAY + 1) + 256)
    sock = bind_checker(policy.listen, policy.checker_port, policy.mark)
    checker = Checker(
        tuple(rules), events, original_destination, destination_allowed, max_connections
    )
    loop = asyncio.get_running_loop()
    try:
        return await loop.create_server(lambda: _Connection(checker), sock=sock)
    except BaseException:
        sock.close()
        raise


def _allow_descriptors(wanted: int) -> None:
    """Raise the soft descriptor limit toward `wanted` (never lower it, never past hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    ceiling = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < ceiling:
        resource.setrlimit(resource.RLIMIT_NOFILE, (ceiling, hard))


class Checker:
    """The state shared by every connection: rules, event sink, how many are open."""

    def __init__(
        self,
        rules: tuple[EgressRule, ...],
        events: EventSink,
        original_destination: Callable[[Any], Address],
        destination_allowed: Callable[[str], bool],
        max_connections: int,
    ) -> None:
        self.rules = rules
        self.events = events
        self.original_destination = original_destination
        self.destination_allowed = destination_allowed
        self.max_connections = max_connections
        self.open = 0

    def allows(self, sniffed: Sniffed, destination: Address) -> str | None:
        """None when the connection may pass, else why not."""
        if sniffed.verdict is Verdict.MALFORMED:
            return sniffed.why
        if sniffed.verdict is Verdict.NEED_MORE:
            return "incomplete first message"
        name = sniffed.name
        if name is None or _same_address(name, destination[0]):
            return None
        if connection_allowed(self.rules, name, "tcp", destination[1]):
            return None
        return "name not in [network] egress"

    def refused(self, name: str | None, destination: Address, why: str) -> None:
        self.events.append(
            {
                "t": time.time(),
                "kind": "check-refused",
                "name": name,
                "address": destination[0],
                "port": destination[1],
                "why": why,
            }
        )


def _same_address(name: str, address: str) -> bool:
    """A request naming the very address it goes to names nothing more than the address."""
    try:
        return ipaddress.ip_address(name) == ipaddress.ip_address(address)
    except ValueError:
        return False


class _Connection(asyncio.Protocol):
    """One client: sniff its first bytes, then refuse it or hand it to a Relay.

    Upstream is connected as soon as the client is accepted (the handshakes overlap), but
    nothing flows until the check passes; if the client stays silent (a server-first
    protocol), upstream's bytes flow to the client while the client's own first bytes are
    still checked, so waiting out the silence does not skip the check.
    """

    transport: asyncio.Transport  # set by connection_made, before any other call

    def __init__(self, checker: Checker) -> None:
        self.checker = checker
        self.loop = asyncio.get_running_loop()
        self.destination: Address = ("", 0)
        self.buffer = bytearray()
        self.timer: asyncio.TimerHandle | None = None
        self.counted = False
        self.decided = False
        self.relay: Relay | None = None
        self.connecting: asyncio.Task[None] | None = None
        self.silent = False  # no byte from the client yet after FIRST_BYTES_WAIT

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if self.checker.open >= self.checker.max_connections:
            self._reset_client()
            return
        self.checker.open += 1
        self.counted = True
        try:
            self.destination = self.checker.original_destination(sock)
            local = sock.getsockname()
        except OSError:
            self._refuse(None, "no original destination (not redirected by nft)")
            return
        if _same_endpoint(self.destination, local):
            self._refuse(None, "connection to the checker itself")
            return
        if not self.checker.destination_allowed(self.destination[0]):
            self._refuse(None, "private or special destination (lan-access governs it)")
            return
        self.timer = self.loop.call_later(FIRST_BYTES_WAIT, self._silent)
        # Upstream is connected at once, its handshake overlapping the wait for the client's
        # first bytes (the address is allowed); nothing flows either way before the check
        # passes, or before the client's silence makes it a server-first protocol.
        self._connect()

    def data_received(self, data: bytes) -> None:
        if self.decided:
            return
        if not self.buffer:
            self._cancel_timer()
            self.timer = self.loop.call_later(SNIFF_WAIT, self._deadline)
        self.buffer += data
        sniffed = sniff(bytes(self.buffer))
        if sniffed.verdict is not Verdict.NEED_MORE:
            self._decide(sniffed)

    def eof_received(self) -> bool:
        if not self.decided:
            sniffed = sniff(bytes(self.buffer))
            self._decide(Sniffed(Verdict.NO_NAME) if not self.buffer else sniffed)
        return True  # keep the socket: upstream's answer still goes back

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        if self.decided and self.relay is not None:
            return  # handed over: the relay owns the client now
        if self.connecting is not None:
            self.connecting.cancel()
        if self.relay is not None:
            self.relay.abort()
        self._release()

    def _silent(self) -> None:
        self.timer = None
        self.silent = True
        if self.relay is not None:
            self.relay.start_upstream_to_client()

    def _deadline(self) -> None:
        self.timer = None
        if not self.decided:
            self._decide(sniff(bytes(self.buffer)))

    def _decide(self, sniffed: Sniffed) -> None:
        self._cancel_timer()
        self.decided = True
        why = self.checker.allows(sniffed, self.destination)
        if why is not None:
            self._refuse(sniffed.name, why)
            return
        self.transport.pause_reading()
        if self.relay is not None:
            self._hand_over()
        elif self.connecting is None:
            self._connect()

    def _connect(self) -> None:
        self.connecting = self.loop.create_task(self._open_upstream())

    async def _open_upstream(self) -> None:
        host, port = self.destination
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        upstream = socket.socket(family, socket.SOCK_STREAM)
        upstream.setblocking(False)
        try:
            await asyncio.wait_for(self.loop.sock_connect(upstream, (host, port)), CONNECT_TIMEOUT)
        except (OSError, TimeoutError, asyncio.CancelledError):
            upstream.close()
            self.connecting = None
            if not self.transport.is_closing():
                self._reset_client()
            return
        self.connecting = None
        try:
            if self.transport.is_closing():
                raise ConnectionAbortedError
            upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client = socket.socket(fileno=_dup(self.transport))
        except OSError:
            upstream.close()
            return
        self.relay = Relay(client, upstream, self._release, self.loop)
        if self.decided:
            self._hand_over()
        elif self.silent:
            self.relay.start_upstream_to_client()

    def _hand_over(self) -> None:
        """The client is allowed: its buffered bytes go first, then the relay takes over."""
        if self.relay is None:
            return
        if not self.silent:  # else it already flows
            self.relay.start_upstream_to_client()
        self.relay.start_client_to_upstream(bytes(self.buffer))
        self.buffer.clear()
        self.transport.abort()  # closes asyncio's descriptor; the relay holds a duplicate

    def _refuse(self, name: str | None, why: str) -> None:
        self.checker.refused(name, self.destination, why)
        self.decided = True
        if self.relay is not None:
            relay, self.relay = self.relay, None
            relay.abort()
        self._reset_client()

    def _reset_client(self) -> None:
        reset(self.transport.get_extra_info("socket"))
        self.transport.abort()

    def _release(self) -> None:
        if self.counted:
            self.counted = False
            self.checker.open -= 1

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


def _dup(transport: asyncio.Transport) -> int:
    fd: int = transport.get_extra_info("socket").fileno()
    return os.dup(fd)


def _same_endpoint(destination: Address, local: tuple[Any, ...]) -> bool:
    try:
        same_host = ipaddress.ip_address(destination[0]) == ipaddress.ip_address(local[0])
    except ValueError:
        return False
    return same_host and destination[1] == local[1]
