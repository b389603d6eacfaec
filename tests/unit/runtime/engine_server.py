"""A scripted HTTP server on a real Unix socket, for the engine API client's tests.

Each accepted connection is handed to a handler function (run in a thread) that reads the
request bytes and writes whatever reply the test scripts, split however it likes.
"""

from __future__ import annotations

import json
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


def frame(stream: int, payload: bytes) -> bytes:
    """One frame of a non-TTY exec stream."""
    return bytes([stream, 0, 0, 0]) + len(payload).to_bytes(4, "big") + payload


class FakeExecEngine:
    """The three exec calls, scripted: `stream(conn, tty)` plays the hijacked stream,
    `running` is how many inspects still say Running, `exit` the final code."""

    def __init__(
        self,
        stream: Callable[[socket.socket, bool], None],
        *,
        exit_code: int = 0,
        running: int = 0,
        create_status: str = "201 Created",
        create_body: bytes = b'{"Id": "e1"}',
    ) -> None:
        self.stream = stream
        self.exit_code = exit_code
        self.running = running
        self.create_status = create_status
        self.create_body = create_body
        self.bodies: list[dict[str, object]] = []
        self.paths: list[str] = []

    def __call__(self, conn: socket.socket, request: bytes) -> None:
        while request:
            head, body = request.split(b"\r\n\r\n", 1)
            path = head.split(b" ")[1].decode()
            self.paths.append(path)
            if body:
                self.bodies.append(json.loads(body))
            if path.endswith("/exec") and path.startswith("/containers/"):
                status, payload = self.create_status, self.create_body
                conn.sendall(
                    f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(payload)}\r\n\r\n".encode()
                    + payload
                )
                request = read_request(conn)  # keep-alive: the start comes next
                continue
            if path.endswith("/start"):
                conn.sendall(
                    b"HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
                )
                self.stream(conn, bool(self.bodies[-1].get("Tty")))
                return
            if path.endswith("/json"):
                running = self.running > 0
                self.running -= 1
                payload = json.dumps({"Running": running, "ExitCode": self.exit_code}).encode()
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(payload)}\r\n\r\n".encode()
                    + payload
                )
                return
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")  # resize
            return
