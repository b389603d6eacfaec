"""A minimal HTTP/1.1 client for the engine's API over its local Unix socket.

Why: every `docker`/`podman` CLI call is a second process start (20-110 ms) on top of the
daemon's own work; the API socket answers in about a millisecond. Standard library only and
nothing heavier than `socket` and `json`, because `alca run` imports it (guarded by
tests/unit/test_startup.py): no `typing`, no `urllib`, no `http.client` (which pulls `email`).

Paths are unversioned (`/containers/{id}/json`): a pinned `/v1.41` is refused by engines
whose minimum API version has moved past it. Docker and Podman's compatibility API serve the
same paths. Everything the engine sends back is hostile input for the callers: `ApiError`
carries the engine's message raw, and callers make it printable.
"""

from __future__ import annotations

import _socket  # not `socket`: its enums and `selectors` cost ~5 ms on the run path
import json
import os

TYPE_CHECKING = False  # not `from typing import ...`: typing costs ~5 ms on the run path
if TYPE_CHECKING:
    from collections.abc import Mapping

_HEAD_END = b"\r\n\r\n"
_HEAD_LIMIT = 64 * 1024
_READ_SIZE = 65536
_SAFE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


class ApiUnavailable(Exception):
    """Nothing useful came back from the engine: no socket, refused, no permission, timeout,
    or a reply that is not HTTP. Before a request ran, the CLI may be tried instead."""


class ApiError(Exception):
    """The engine answered with an HTTP error; `message` is its own text, raw (hostile)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


def quote_segment(text: str) -> str:
    """Percent-encode one path segment (a container or exec ID) so it cannot add a path,
    a query or a header: everything outside `[A-Za-z0-9_.-]` is escaped."""
    if not text:
        raise ValueError("an empty path segment")
    return "".join(chr(b) if b in _SAFE else f"%{b:02X}" for b in text.encode())


def connect(socket_path: str, timeout: float) -> _socket.socket:
    """A connected stream socket; `ApiUnavailable` when nothing listens or we may not talk."""
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(socket_path)
    except (OSError, ValueError) as error:  # ENOENT, ECONNREFUSED, EACCES, timeout, NUL
        sock.close()
        raise ApiUnavailable(f"cannot connect to {socket_path}: {error}") from None
    return sock


def encode_request(method: str, path: str, body: object | None, headers: str = "") -> bytes:
    """One request's bytes; `body` is sent as JSON, `headers` are extra `Name: value\\r\\n`."""
    payload = b"" if body is None else json.dumps(body).encode()
    head = f"{method} {path} HTTP/1.1\r\nHost: engine\r\n{headers}"
    if body is not None or method in ("POST", "PUT"):
        head += f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
    return (head + "\r\n").encode("latin-1") + payload


def _recv(sock: _socket.socket) -> bytes:
    try:
        return sock.recv(_READ_SIZE)
    except TimeoutError:
        raise ApiUnavailable("the engine did not answer in time") from None
    except OSError as error:
        raise ApiUnavailable(f"the connection to the engine failed: {error}") from None


def read_head(sock: _socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, lower-cased headers, and whatever was read past the header block."""
    buffer = b""
    while _HEAD_END not in buffer:
        if len(buffer) > _HEAD_LIMIT:
            raise ApiUnavailable("the engine's reply headers are too long")
        chunk = _recv(sock)
        if not chunk:
            raise ApiUnavailable("the engine closed the connection before answering")
        buffer += chunk
    head, rest = buffer.split(_HEAD_END, 1)
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ApiUnavailable("the engine's reply is not HTTP")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(parts[1]), headers, rest


def _read_exactly(sock: _socket.socket, buffer: bytes, size: int) -> bytes:
    while len(buffer) < size:
        chunk = _recv(sock)
        if not chunk:
            raise ApiUnavailable("the engine closed the connection in the middle of a reply")
        buffer += chunk
    return buffer


def _read_chunked(sock: _socket.socket, rest: bytes) -> bytes:
    parts: list[bytes] = []
    while True:
        while b"\r\n" not in rest:
            if len(rest) > _HEAD_LIMIT:
                raise ApiUnavailable("the engine sent a malformed chunk")
            chunk = _recv(sock)
            if not chunk:
                raise ApiUnavailable("the engine closed the connection in the middle of a reply")
            rest += chunk
        line, rest = rest.split(b"\r\n", 1)
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise ApiUnavailable("the engine sent a malformed chunk") from None
        if size == 0:  # trailers, if any, end with an empty line; the connection is dropped
            return b"".join(parts)
        rest = _read_exactly(sock, rest, size + 2)
        parts.append(rest[:size])
        rest = rest[size + 2 :]


def read_body(sock: _socket.socket, status: int, headers: dict[str, str], rest: bytes) -> bytes:
    """The reply's body, framed by Content-Length, chunks, or the end of the connection."""
    if status < 200 or status in (204, 304):
        return b""
    if headers.get("transfer-encoding", "").lower() == "chunked":
        return _read_chunked(sock, rest)
    length = headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise ApiUnavailable("the engine sent a malformed Content-Length")
        return _read_exactly(sock, rest, int(length))[: int(length)]
    parts = [rest]
    while chunk := _recv(sock):
        parts.append(chunk)
    return b"".join(parts)


def decode_reply(status: int, raw: bytes) -> object:
    """The JSON body (None when empty); `ApiError` with the engine's message on >= 400."""
    text = raw.decode("utf-8", "replace")
    try:
        data: object = json.loads(text) if text.strip() else None
    except ValueError:
        data = text
    if status >= 400:
        message = data.get("message") if isinstance(data, dict) else data
        raise ApiError(status, (message if isinstance(message, str) else text).strip())
    return data


def call(sock: _socket.socket, method: str, path: str, body: object | None = None) -> object:
    """One request on an open (keep-alive) connection; see `request`."""
    try:
        sock.sendall(encode_request(method, path, body))
    except OSError as error:
        raise ApiUnavailable(f"the connection to the engine failed: {error}") from None
    status, headers, rest = read_head(sock)
    return decode_reply(status, read_body(sock, status, headers, rest))


def request(
    socket_path: str,
    method: str,
    path: str,
    body: object | None = None,
    *,
    timeout: float = 30.0,
) -> object:
    """Send one request on a fresh connection; the parsed JSON reply (None when empty).

    Raises `ApiUnavailable` when the engine cannot be reached, `ApiError` on status >= 400.
    """
    sock = connect(socket_path, timeout)
    try:
        return call(sock, method, path, body)
    finally:
        sock.close()


def ping(socket_path: str, timeout: float = 1.0) -> bool:
    """Whether an engine answers `GET /_ping` on this socket (its reply is `OK`)."""
    try:
        return request(socket_path, "GET", "/_ping", timeout=timeout) == "OK"
    except (ApiUnavailable, ApiError):
        return False


def _unix_path(host: str) -> str | None:
    if not host.startswith("unix://"):
        return None
    return host[len("unix://") :] or None


def _docker_context_host(environ: Mapping[str, str]) -> str | None:
    """The current Docker context's endpoint ("" for the default context, None if unknown).

    Read from the CLI's own files instead of running `docker context inspect` (~25 ms).
    """
    config_dir = environ.get("DOCKER_CONFIG") or os.path.join(
        environ.get("HOME") or os.path.expanduser("~"), ".docker"
    )
    name = environ.get("DOCKER_CONTEXT", "")
    if not name:
        try:
            with open(os.path.join(config_dir, "config.json"), encoding="utf-8") as handle:
                config = json.load(handle)
        except (OSError, ValueError):
            return ""
        current = config.get("currentContext") if isinstance(config, dict) else None
        name = current if isinstance(current, str) else ""
    if name in ("", "default"):
        return ""
    import hashlib  # only `up` and `doctor` get here, never `run`

    digest = hashlib.sha256(name.encode()).hexdigest()
    meta_path = os.path.join(config_dir, "contexts", "meta", digest, "meta.json")
    try:
        with open(meta_path, encoding="utf-8") as handle:
            meta = json.load(handle)
        host = meta["Endpoints"]["docker"]["Host"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return host if isinstance(host, str) else None


def local_socket(executable: str, environ: Mapping[str, str]) -> str | None:
    """Where this engine's API socket would be on this machine; None for a remote engine
    (tcp://, ssh://, a named remote connection) or one whose endpoint cannot be known."""
    if "podman" in os.path.basename(executable):
        if environ.get("CONTAINER_CONNECTION"):
            return None
        host = environ.get("CONTAINER_HOST", "")
        if host:
            return _unix_path(host)
        if os.geteuid() == 0:
            return "/run/podman/podman.sock"
        runtime_dir = environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.geteuid()}"
        return os.path.join(runtime_dir, "podman", "podman.sock")
    host = environ.get("DOCKER_HOST", "")
    if host:
        return _unix_path(host)
    context_host = _docker_context_host(environ)
    if context_host is None:
        return None
    return _unix_path(context_host) if context_host else "/var/run/docker.sock"
