"""A scripted HTTP server on a real Unix socket, for the engine API client's tests.

Each accepted connection is handed to a handler function (run in a thread) that reads the
request bytes and writes whatever reply the test scripts, split however it likes.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

Handler = Callable[[socket.socket, bytes], None]


def read_request(conn: socket.socket) -> bytes:
    """The request's head and its Content-Length body (what the client sent)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        body += conn.recv(65536)
    return head + b"\r\n\r\n" + body


class EngineServer:
    """Serves connections on `path`; `requests` records every request received."""

    def __init__(self, path: str, handler: Handler) -> None:
        self.path = path
        self.handler = handler
        self.requests: list[bytes] = []
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(8)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            request = read_request(conn)
            self.requests.append(request)
            with suppress(OSError):
                self.handler(conn, request)

    def close(self) -> None:
        self.listener.close()


@contextmanager
def short_dir() -> Iterator[str]:
    """A directory with a short path: a Unix socket path may not exceed 107 bytes."""
    path = tempfile.mkdtemp(prefix="alca-api-", dir="/tmp")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def engine_server(handler: Handler) -> Iterator[EngineServer]:
    with short_dir() as directory:
        server = EngineServer(os.path.join(directory, "engine.sock"), handler)
        try:
            yield server
        finally:
            server.close()


def reply(status: str, body: bytes, headers: str = "") -> Handler:
    """A handler sending one Content-Length reply."""

    def handle(conn: socket.socket, _request: bytes) -> None:
        conn.sendall(
            f"HTTP/1.1 {status}\r\n{headers}Content-Length: {len(body)}\r\n\r\n".encode() + body
        )

    return handle
