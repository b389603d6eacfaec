"""A name checker running on 127.0.0.1 in a thread of its own, with upstream servers."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from alcatraz.config.netgrammar.egress import EgressRule
from alcatraz.network.egress.checker import serve_checker


def name_rule(name: str, ports: tuple[int, int] | None = None) -> EgressRule:
    wildcard = name.startswith("*.")
    return EgressRule(
        name=name.removeprefix("*."),
        wildcard=wildcard,
        network=None,
        protocols=("tcp",) if ports else (),
        ports=ports,
    )


@dataclass(frozen=True)
class TestPolicy:
    listen: str = "127.0.0.1"
    checker_port: int = 0
    mark: int = 0


@dataclass
class RunningChecker:
    port: int
    events: list[dict[str, object]]
    loop: asyncio.AbstractEventLoop
    #: Where the next connections "originally" went: set by each test.
    destination: list[tuple[str, int]] = field(default_factory=list)

    listen: str = "127.0.0.1"

    def connect(self, timeout: float = 10.0) -> socket.socket:
        client = socket.create_connection((self.listen, self.port), timeout=timeout)
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return client


def start_checker(
    rules: list[EgressRule],
    max_connections: int = 1024,
    listen: str = "127.0.0.1",
    vet: Callable[[str], bool] | None = lambda _address: True,
) -> tuple[RunningChecker, Callable[[], None]]:
    """A checker; `vet` None keeps the real destination check (loopback refused)."""
    events: list[dict[str, object]] = []
    loop = asyncio.new_event_loop()
    destination: list[tuple[str, int]] = [("127.0.0.1", 9)]
    started = threading.Event()
    holder: dict[str, Any] = {}

    def injected(sock: Any) -> tuple[str, int]:
        if destination[0] == ("fail", 0):
            raise OSError("no conntrack entry")
        return destination[0]

    async def begin() -> None:
        server = await serve_checker(
            TestPolicy(listen=listen),
            rules,
            events,
            original_destination=injected,
            max_connections=max_connections,
            **({} if vet is None else {"destination_allowed": vet}),
        )
        holder["server"] = server
        started.set()

    thread = threading.Thread(
        target=lambda: (loop.run_until_complete(begin()), loop.run_forever()), daemon=True
    )
    thread.start()
    assert started.wait(10)
    server = holder["server"]
    port = server.sockets[0].getsockname()[1]
    running = RunningChecker(port, events, loop, destination, listen)

    def stop() -> None:
        async def close() -> None:
            server.close()
            await server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()

    return running, stop


@pytest.fixture
def checker() -> Iterator[RunningChecker]:
    """A checker whose connections go, unless a test says otherwise, to an upstream that
    accepts and stays silent (upstream is dialled as soon as a client is accepted)."""
    running, stop = start_checker([name_rule("allowed.test"), name_rule("*.wild.test", (1, 65535))])
    default = Upstream(_swallow)
    running.destination[0] = default.address
    yield running
    stop()
    default.close()


def _swallow(connection: socket.socket) -> None:
    while connection.recv(65536):
        pass


class Upstream:
    """A listening socket standing for the original destination; `serve` runs per client."""

    def __init__(self, serve: Callable[[socket.socket], None], host: str = "127.0.0.1") -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.listener = socket.create_server((host, 0), family=family)
        self.address: tuple[str, int] = self.listener.getsockname()[:2]
        self.accepted = 0
        self.errors: list[BaseException] = []
        self.resets = 0
        self._serve = serve
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._one, args=(connection,), daemon=True).start()

    def _one(self, connection: socket.socket) -> None:
        with connection:
            try:
                self._serve(connection)
            except ConnectionResetError:
                self.resets += 1
            except BaseException as error:
                self.errors.append(error)

    def close(self) -> None:
        self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self._thread.join(5)
