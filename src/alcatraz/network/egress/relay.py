"""Join two TCP sockets once the name checker has let a connection pass.

Both directions run on the checker's event loop (readiness callbacks, no thread per
connection): a read into one buffer shared by the loop's thread, sent on at once; only what
the sink cannot take yet is kept, and then the source is not read until it is gone
(backpressure). EOF on one side half-closes the other (SHUT_WR); an error on either side,
or `abort`, resets both (RST, never a FIN first).

Measured on loopback (bench/egress_checker.py): this plain read/send moves bulk as fast as
splice(2) through a pipe or faster, with two descriptors per connection instead of six;
two pump threads per connection halved the connection rate.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Callable

#: The most one read takes, and so the most a direction keeps when its sink is full (less
#: than the kernel already buffers for that socket). 1 MiB: bulk on loopback ~1.4x 256 KiB.
CHUNK = 1 << 20
#: Descriptors one relayed connection holds: its two sockets.
DESCRIPTORS_PER_RELAY = 2
_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close sends RST
_buffers = threading.local()


def reset(sock: socket.socket) -> None:
    """Make the socket's last close send RST instead of FIN."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)


def _read_buffer() -> bytearray:
    """The read buffer of this thread's loop: reused by every connection it relays."""
    buffer: bytearray | None = getattr(_buffers, "buffer", None)
    if buffer is None:
        buffer = _buffers.buffer = bytearray(CHUNK)
    return buffer


class _Direction:
    """source → sink, one readiness callback at a time."""

    def __init__(self, relay: Relay, source: socket.socket, sink: socket.socket) -> None:
        self.relay = relay
        self.loop = relay.loop
        self.source = source
        self.sink = sink
        self.pending = memoryview(b"")
        self.eof = False
        self.reading = False
        self.writing = False
        self.done = False

    def start(self, first: bytes) -> None:
        self.pending = memoryview(first)
        self._flush()

    def close(self) -> None:
        self._stop_reading()
        self._stop_writing()

    def _readable(self) -> None:
        buffer = _read_buffer()
        try:
            count = self.source.recv_into(buffer)
        except BlockingIOError:
            return  # a spurious wake-up: nothing was read
        except OSError:
            self.relay.fail()
            return
        try:
            sent = self.sink.send(memoryview(buffer)[:count]) if count else 0
        except BlockingIOError:
            sent = 0
        except OSError:
            self.relay.fail()
            return
        if not count:
            self.eof = True
        elif sent < count:
            self.pending = memoryview(bytes(buffer[sent:count]))
        else:
            return
        self._flush()

    def _flush(self) -> None:
        """Send what is kept, then read again (or end)."""
        try:
            while self.pending:
                self.pending = self.pending[self.sink.send(self.pending) :]
            if self.eof:
                self.sink.shutdown(socket.SHUT_WR)
        except BlockingIOError:
            self._stop_reading()
            self._start_writing()
            return
        except OSError:
            self.relay.fail()
            return
        self._stop_writing()
        if self.eof:
            self._stop_reading()
            self.done = True
            self.relay.direction_done()
        else:
            self._start_reading()

    def _start_reading(self) -> None:
        if not self.reading:
            self.loop.add_reader(self.source.fileno(), self._readable)
            self.reading = True

    def _stop_reading(self) -> None:
        if self.reading:
            self.loop.remove_reader(self.source.fileno())
            self.reading = False

    def _start_writing(self) -> None:
        if not self.writing:
            self.loop.add_writer(self.sink.fileno(), self._flush)
            self.writing = True

    def _stop_writing(self) -> None:
        if self.writing:
            self.loop.remove_writer(self.sink.fileno())
            self.writing = False


class Relay:
    """A client socket and an upstream socket, relayed both ways on `loop`.

    `on_closed` runs once, on the loop, after every descriptor is closed.
    """

    def __init__(
        self,
        client: socket.socket,
        upstream: socket.socket,
        on_closed: Callable[[], None],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.loop = loop
        self._sockets = (client, upstream)
        for sock in self._sockets:
            sock.setblocking(False)
        self._on_closed = on_closed
        self._directions: dict[str, _Direction] = {}
        self._expected = 2
        self._closed = False

    def start_upstream_to_client(self) -> None:
        client, upstream = self._sockets
        self._start("upstream", upstream, client, b"")

    def start_client_to_upstream(self, buffered: bytes) -> None:
        """Send what the checker read from the client first, then relay the rest."""
        client, upstream = self._sockets
        self._start("client", client, upstream, buffered)

    def abort(self) -> None:
        """Reset both sides now."""
        self.fail()

    def fail(self) -> None:
        if self._closed:
            return
        for sock in self._sockets:
            reset(sock)
        self._close()

    def direction_done(self) -> None:
        if len(self._directions) == self._expected and all(
            direction.done for direction in self._directions.values()
        ):
            self._close()

    def _start(self, name: str, source: socket.socket, sink: socket.socket, first: bytes) -> None:
        if self._closed or name in self._directions:
            return
        direction = _Direction(self, source, sink)
        self._directions[name] = direction
        direction.start(first)

    def _close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for direction in self._directions.values():
            direction.close()
        for sock in self._sockets:
            sock.close()
        self._on_closed()
