"""Join two TCP sockets at near-kernel speed once the name checker has let a connection pass.

Each direction is a thread that moves bytes with splice(2) through its own pipe, so the
payload never enters Python. EOF on one side half-closes the other (SHUT_WR); an error on
either side, or `abort`, resets both (RST, never a FIN first). The sockets stay
non-blocking and a pump waits in poll(2) on its socket and on the relay's eventfd, so an
abort wakes it at once. Descriptors are closed by whichever pump ends last, never while the
other may still use them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import socket
import struct
import threading
from collections.abc import Callable

#: How much one splice call may move; the pipe is grown to match where the kernel allows.
CHUNK = 1 << 20
_F_SETPIPE_SZ = 1031
_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close sends RST


def reset(sock: socket.socket) -> None:
    """Make the socket's last close send RST instead of FIN."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)


class _Aborted(OSError):
    pass


class _Waiter:
    """poll(2) on one socket and on the relay's abort eventfd."""

    def __init__(self, abort_fd: int) -> None:
        self.abort_fd = abort_fd

    def wait(self, fd: int, event: int) -> None:
        poller = select.poll()
        poller.register(fd, event)
        poller.register(self.abort_fd, select.POLLIN)
        if any(ready == self.abort_fd for ready, _ in poller.poll()):
            raise _Aborted

    def splice(self, source: int, sink: int, count: int, wait_on: int, event: int) -> int:
        while True:
            try:
                return os.splice(source, sink, count, flags=os.SPLICE_F_MOVE)
            except BlockingIOError:
                self.wait(wait_on, event)

    def send_all(self, sink: socket.socket, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[sink.send(view) :]
            except BlockingIOError:
                self.wait(sink.fileno(), select.POLLOUT)


def _pipe() -> tuple[int, int]:
    read_end, write_end = os.pipe()
    with contextlib.suppress(OSError):  # a smaller pipe only means more splice calls
        fcntl.fcntl(write_end, _F_SETPIPE_SZ, CHUNK)
    return read_end, write_end


class Relay:
    """A client socket and an upstream socket, pumped both ways by two threads.

    `on_closed` runs once, in a pump thread, after every descriptor is closed.
    """

    def __init__(
        self, client: socket.socket, upstream: socket.socket, on_closed: Callable[[], None]
    ) -> None:
        self._sockets = (client, upstream)
        for sock in self._sockets:
            sock.setblocking(False)
        self._abort_fd = os.eventfd(0, os.EFD_CLOEXEC)
        self._waiter = _Waiter(self._abort_fd)
        self._on_closed = on_closed
        self._lock = threading.Lock()
        self._running = 0
        self._started: set[str] = set()
        self._failed = False
        self._closed = False

    def start_upstream_to_client(self) -> None:
        client, upstream = self._sockets
        self._start("upstream", upstream, client, b"")

    def start_client_to_upstream(self, buffered: bytes) -> None:
        """Send what the checker read from the client first, then pump the rest."""
        client, upstream = self._sockets
        self._start("client", client, upstream, buffered)

    def abort(self) -> None:
        """Reset both sides; no pump will start any more."""
        with self._lock:
            self._started.update(("client", "upstream"))
            self._fail()
            self._close_if_done()

    def _start(self, name: str, source: socket.socket, sink: socket.socket, first: bytes) -> None:
        with self._lock:
            if name in self._started:
                return
            self._started.add(name)
            self._running += 1
        thread = threading.Thread(
            target=self._pump, args=(source, sink, first), name=f"alca-relay-{name}", daemon=True
        )
        thread.start()

    def _pump(self, source: socket.socket, sink: socket.socket, first: bytes) -> None:
        failed = False
        read_end, write_end = -1, -1
        try:
            read_end, write_end = _pipe()
            waiter = self._waiter
            if first:
                waiter.send_all(sink, first)
            source_fd, sink_fd = source.fileno(), sink.fileno()
            while moved := waiter.splice(source_fd, write_end, CHUNK, source_fd, select.POLLIN):
                while moved:
                    moved -= waiter.splice(read_end, sink_fd, moved, sink_fd, select.POLLOUT)
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            failed = True
        finally:
            for fd in (read_end, write_end):
                if fd >= 0:
                    os.close(fd)
        with self._lock:
            self._running -= 1
            if failed:
                self._fail()
            self._close_if_done()

    def _fail(self) -> None:
        """Both sides will be reset; the other pump, if waiting, wakes up now."""
        if not self._failed:
            self._failed = True
            for sock in self._sockets:
                reset(sock)
            os.eventfd_write(self._abort_fd, 1)

    def _close_if_done(self) -> None:
        if self._closed or self._running or len(self._started) < 2:
            return
        self._closed = True
        for sock in self._sockets:
            sock.close()
        os.close(self._abort_fd)
        self._on_closed()
