"""Prototype: a non-TTY `exec` through the engine's HTTP API instead of its CLI.

Why: `alca run` pays for a Python start *and* then a Go `docker`/`podman` client start
(plus the client's own extra round trips). Talking to the daemon's Unix socket directly
drops the second process. Stdlib only (`socket`, `select`, `json`), so it could live on the
`alca run` fast path; imported here by `bench/run.py` and by `bench/proto_run.py`.

Calls (Docker Engine API; Podman serves the same paths under `podman system service`):

1. `POST /containers/{name}/exec` with the command, working directory and environment;
2. `POST /exec/{id}/start` with `Connection: Upgrade` / `Upgrade: tcp`: the connection is
   hijacked and carries the multiplexed stream (8-byte frame headers: stream, 0, 0, 0,
   big-endian length); stdin is copied up and half-closed at EOF;
3. `GET /exec/{id}/json` for the exit code.

Paths are unversioned on purpose: a pinned `/v1.41` would be refused by engines whose
minimum API version has moved past it.
"""

from __future__ import annotations

import json
import os
import select
import socket
import sys
import time

TYPE_CHECKING = False  # not `from typing import ...`: typing (and re) cost ~8 ms
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    Timer = Callable[[str], None]

_CRLF2 = b"\r\n\r\n"


class ApiError(RuntimeError):
    """The engine answered with an error, or not in the shape we expect."""


def _noop(_label: str) -> None:
    return None


def default_socket(engine: str, environ: dict[str, str] | os._Environ[str] = os.environ) -> str:
    """Where the engine's API listens (only local Unix sockets are supported)."""
    host = environ.get("DOCKER_HOST" if engine == "docker" else "CONTAINER_HOST", "")
    if host.startswith("unix://"):
        return host[len("unix://") :]
    if host:
        raise ApiError(f"not a local Unix socket: {host}")
    return "/var/run/docker.sock" if engine == "docker" else "/run/podman/podman.sock"


def connect(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    return sock


def _read_head(sock: socket.socket, buffer: bytes) -> tuple[int, dict[str, str], bytes]:
    """Status, lower-cased headers, and the bytes read past the header block."""
    while _CRLF2 not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ApiError("the engine closed the connection before answering")
        buffer += chunk
    head, rest = buffer.split(_CRLF2, 1)
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise ApiError(f"not an HTTP response: {lines[0]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(parts[1]), headers, rest


def _read_body(sock: socket.socket, headers: dict[str, str], rest: bytes) -> bytes:
    if "content-length" in headers:
        size = int(headers["content-length"])
        while len(rest) < size:
            chunk = sock.recv(65536)
            if not chunk:
                raise ApiError("the engine closed the connection mid-body")
            rest += chunk
        return rest[:size]
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            while b"\r\n" not in rest:
                rest += sock.recv(65536)
            line, rest = rest.split(b"\r\n", 1)
            size = int(line.split(b";")[0], 16)
            while len(rest) < size + 2:
                chunk = sock.recv(65536)
                if not chunk:
                    raise ApiError("the engine closed the connection mid-chunk")
                rest += chunk
            if size == 0:
                return body
            body, rest = body + rest[:size], rest[size + 2 :]
    body = rest  # no framing: read to EOF
    while chunk := sock.recv(65536):
        body += chunk
    return body


def _request_bytes(method: str, path: str, body: bytes | None, extra: str = "") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: engine\r\n{extra}"
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return (head + "\r\n").encode("latin-1") + (body or b"")


def call(sock: socket.socket, method: str, path: str, payload: object = None) -> tuple[int, object]:
    """One keep-alive request; returns (status, decoded JSON, text, or None)."""
    body = None if payload is None else json.dumps(payload).encode()
    sock.sendall(_request_bytes(method, path, body))
    status, headers, rest = _read_head(sock, b"")
    raw = _read_body(sock, headers, rest)
    if not raw.strip():
        return status, None
    if "json" in headers.get("content-type", ""):
        return status, json.loads(raw)
    return status, raw.decode(errors="replace")


def _quote_path(text: str) -> str:
    """Container names are [a-zA-Z0-9][a-zA-Z0-9_.-]*; refuse anything needing escapes."""
    if not text or not all(c.isalnum() or c in "_.-" for c in text):
        raise ApiError(f"unexpected container name {text!r}")
    return text


def _pump(sock: socket.socket, rest: bytes, stdin_fd: int | None, out_fd: int, err_fd: int) -> None:
    """Copy stdin up; demultiplex the stream's frames to stdout/stderr until EOF."""
    buffer = rest
    readers: list[int | socket.socket] = [sock]
    if stdin_fd is not None:
        readers.append(stdin_fd)
    else:
        sock.shutdown(socket.SHUT_WR)
    eof = False
    while not eof:
        ready, _, _ = select.select(readers, [], [])
        if stdin_fd is not None and stdin_fd in ready:
            data = os.read(stdin_fd, 65536)
            if data:
                sock.sendall(data)
            else:
                sock.shutdown(socket.SHUT_WR)
                readers.remove(stdin_fd)
        if sock in ready:
            chunk = sock.recv(65536)
            if chunk:
                buffer += chunk
            else:
                eof = True
        while len(buffer) >= 8:
            size = int.from_bytes(buffer[4:8], "big")
            if len(buffer) < 8 + size:
                break
            stream, payload, buffer = buffer[0], buffer[8 : 8 + size], buffer[8 + size :]
            fd = err_fd if stream == 2 else out_fd
            view = memoryview(payload)
            while view:
                view = view[os.write(fd, view) :]


def exec_run(
    socket_path: str,
    container: str,
    command: Sequence[str],
    *,
    workdir: str | None = None,
    env: Sequence[str] = (),
    stdin_fd: int | None = 0,
    out_fd: int = 1,
    err_fd: int = 2,
    timer: Timer = _noop,
) -> int:
    """Run `command` in `container` without a TTY; returns its exit code.

    `timer(label)` is called after each step (the harness records per-call latencies).
    """
    name = _quote_path(container)
    spec: dict[str, object] = {
        "AttachStdin": stdin_fd is not None,
        "AttachStdout": True,
        "AttachStderr": True,
        "Tty": False,
        "Cmd": list(command),
    }
    if workdir:
        spec["WorkingDir"] = workdir
    if env:
        spec["Env"] = list(env)
    sock = connect(socket_path)
    timer("connect")
    try:
        status, created = call(sock, "POST", f"/containers/{name}/exec", spec)
        timer("exec create")
        if status != 201 or not isinstance(created, dict) or "Id" not in created:
            message = created.get("message") if isinstance(created, dict) else created
            raise ApiError(f"exec create failed ({status}): {message}")
        exec_id = str(created["Id"])
        start = json.dumps({"Detach": False, "Tty": False}).encode()
        sock.sendall(
            _request_bytes(
                "POST",
                f"/exec/{exec_id}/start",
                start,
                "Connection: Upgrade\r\nUpgrade: tcp\r\n",
            )
        )
        status, headers, rest = _read_head(sock, b"")
        if status not in (101, 200):
            raw = _read_body(sock, headers, rest)
            raise ApiError(f"exec start failed ({status}): {raw.decode(errors='replace')}")
        timer("exec start (headers)")
        _pump(sock, rest, stdin_fd, out_fd, err_fd)
        timer("stream")
    finally:
        sock.close()
    sock = connect(socket_path)
    try:
        for _ in range(200):
            status, info = call(sock, "GET", f"/exec/{exec_id}/json")
            if status != 200 or not isinstance(info, dict):
                raise ApiError(f"exec inspect failed ({status}): {info}")
            if not info.get("Running"):
                timer("exec inspect")
                code = info.get("ExitCode")
                return int(code) if isinstance(code, int) else 126
            time.sleep(0.002)
    finally:
        sock.close()
    raise ApiError("the exec still reports Running after its stream ended")


def main(argv: list[str]) -> int:
    """`python bench/engine_api.py SOCKET CONTAINER [-w DIR] CMD...` (timed as a process)."""
    if len(argv) < 3:
        sys.stderr.write("usage: engine_api.py SOCKET CONTAINER [-w DIR] CMD...\n")
        return 2
    socket_path, container, rest = argv[0], argv[1], argv[2:]
    workdir = None
    if rest[:1] == ["-w"]:
        workdir, rest = rest[1], rest[2:]
    stdin_fd = None if os.environ.get("ALCA_BENCH_NO_STDIN") else 0
    return exec_run(socket_path, container, rest, workdir=workdir, stdin_fd=stdin_fd)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
