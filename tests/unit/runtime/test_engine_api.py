"""The engine API client against a real Unix-socket server: framing, errors, socket lookup."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from pathlib import Path

import pytest

from alcatraz.runtime import engine_api
from alcatraz.runtime.engine_api import ApiError, ApiUnavailable, local_socket, ping, request
from tests.unit.runtime.engine_server import engine_server, reply, short_dir

JSON = "Content-Type: application/json\r\n"


def test_content_length_json_reply_and_the_request_sent() -> None:
    with engine_server(reply("201 Created", b'{"Id": "abc"}', JSON)) as server:
        answer = request(server.path, "POST", "/containers/box/exec", {"Cmd": ["true"]})
    assert answer == {"Id": "abc"}
    head, body = server.requests[0].split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /containers/box/exec HTTP/1.1"
    assert "Content-Type: application/json" in lines
    assert f"Content-Length: {len(body)}" in lines
    assert json.loads(body) == {"Cmd": ["true"]}


def test_chunked_reply_split_across_writes_is_reassembled() -> None:
    payload = json.dumps({"Running": False, "ExitCode": 3, "pad": "x" * 70000}).encode()

    def handle(conn: socket.socket, _request: bytes) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for start in range(0, len(payload), 30000):
            piece = payload[start : start + 30000]
            framed = f"{len(piece):x};ext=1\r\n".encode() + piece + b"\r\n"
            for byte_at in range(0, len(framed), 7000):  # chunk headers split mid-way too
                conn.sendall(framed[byte_at : byte_at + 7000])
                time.sleep(0.001)
        conn.sendall(b"0\r\n\r\n")

    with engine_server(handle) as server:
        answer = request(server.path, "GET", "/exec/abc/json")
    assert isinstance(answer, dict)
    assert answer["ExitCode"] == 3
    assert len(answer["pad"]) == 70000


def test_reply_without_framing_is_read_to_the_end_of_the_connection() -> None:
    def handle(conn: socket.socket, _request: bytes) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\n\r\n[1, ")
        time.sleep(0.01)
        conn.sendall(b"2]")

    with engine_server(handle) as server:
        assert request(server.path, "GET", "/x") == [1, 2]


def test_empty_and_plain_text_replies() -> None:
    with engine_server(reply("204 No Content", b"")) as server:
        assert request(server.path, "POST", "/exec/abc/resize?h=1&w=2") is None
    with engine_server(reply("200 OK", b"OK", "Content-Type: text/plain\r\n")) as server:
        assert request(server.path, "GET", "/_ping") == "OK"


def test_http_error_carries_status_and_the_engines_message() -> None:
    body = b'{"message": "No such container: box\\u001b[31m"}'
    with (
        engine_server(reply("404 Not Found", body, JSON)) as server,
        pytest.raises(ApiError) as caught,
    ):
        request(server.path, "POST", "/containers/box/exec", {})
    assert caught.value.status == 404
    assert caught.value.message == "No such container: box\x1b[31m"  # raw: callers escape it


def test_http_error_without_json_keeps_the_text() -> None:
    with (
        engine_server(reply("500 Internal Server Error", b"boom\n")) as server,
        pytest.raises(ApiError) as caught,
    ):
        request(server.path, "GET", "/x")
    assert (caught.value.status, caught.value.message) == (500, "boom")


def test_missing_socket_is_unavailable() -> None:
    with short_dir() as directory, pytest.raises(ApiUnavailable):
        request(os.path.join(directory, "absent.sock"), "GET", "/_ping")


def test_socket_nobody_listens_on_is_unavailable() -> None:
    with short_dir() as directory:
        path = os.path.join(directory, "dead.sock")
        dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        dead.bind(path)
        dead.close()  # the file stays, nothing listens: ECONNREFUSED
        with pytest.raises(ApiUnavailable):
            request(path, "GET", "/_ping")
        assert not ping(path)


def test_silent_engine_times_out_as_unavailable() -> None:
    def handle(_conn: socket.socket, _request: bytes) -> None:
        time.sleep(1.0)

    with engine_server(handle) as server:
        started = time.monotonic()
        with pytest.raises(ApiUnavailable):
            request(server.path, "GET", "/_ping", timeout=0.2)
        assert time.monotonic() - started < 0.9


@pytest.mark.parametrize(
    "raw",
    [
        b"SSH-2.0-OpenSSH\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"",
    ],
)
def test_replies_that_are_not_http_are_unavailable(raw: bytes) -> None:
    def handle(conn: socket.socket, _request: bytes) -> None:
        conn.sendall(raw)

    with engine_server(handle) as server, pytest.raises(ApiUnavailable):
        request(server.path, "GET", "/x")


def test_ping_needs_ok() -> None:
    with engine_server(reply("200 OK", b"OK")) as server:
        assert ping(server.path)
    with engine_server(reply("200 OK", b"nope")) as server:
        assert not ping(server.path)
    with engine_server(reply("500 Internal Server Error", b"OK")) as server:
        assert not ping(server.path)


def test_quote_segment_cannot_add_a_path_or_query() -> None:
    assert engine_api.quote_segment("alca-box_1.x") == "alca-box_1.x"
    assert engine_api.quote_segment("../x?y z") == "..%2Fx%3Fy%20z"
    assert engine_api.quote_segment("\r\nX: y") == "%0D%0AX%3A%20y"
    with pytest.raises(ValueError, match="empty"):
        engine_api.quote_segment("")


def test_local_socket_docker_host() -> None:
    assert local_socket("docker", {"DOCKER_HOST": "unix:///x/d.sock"}) == "/x/d.sock"
    assert local_socket("docker", {"DOCKER_HOST": "tcp://10.0.0.1:2375"}) is None
    assert local_socket("docker", {"DOCKER_HOST": "ssh://me@host"}) is None
    assert local_socket("/usr/bin/docker", {"DOCKER_HOST": "unix://"}) is None


def _context(config: Path, name: str, host: str) -> None:
    digest = hashlib.sha256(name.encode()).hexdigest()
    meta = config / "contexts" / "meta" / digest
    meta.mkdir(parents=True)
    (meta / "meta.json").write_text(json.dumps({"Endpoints": {"docker": {"Host": host}}}))


def test_local_socket_docker_contexts(tmp_path: Path) -> None:
    env = {"DOCKER_CONFIG": str(tmp_path), "HOME": "/nonexistent"}
    assert local_socket("docker", env) == "/var/run/docker.sock"  # no config.json
    _context(tmp_path, "colima", "unix:///home/me/.colima/docker.sock")
    _context(tmp_path, "far", "ssh://me@far")
    (tmp_path / "config.json").write_text(json.dumps({"currentContext": "colima"}))
    assert local_socket("docker", env) == "/home/me/.colima/docker.sock"
    assert local_socket("docker", {**env, "DOCKER_CONTEXT": "far"}) is None
    assert local_socket("docker", {**env, "DOCKER_CONTEXT": "default"}) == "/var/run/docker.sock"
    assert local_socket("docker", {**env, "DOCKER_CONTEXT": "missing"}) is None
    (tmp_path / "config.json").write_text("{not json")
    assert local_socket("docker", env) == "/var/run/docker.sock"


def test_local_socket_podman(monkeypatch: pytest.MonkeyPatch) -> None:
    assert local_socket("podman", {"CONTAINER_HOST": "unix:///p.sock"}) == "/p.sock"
    assert local_socket("podman", {"CONTAINER_HOST": "ssh://core@vm/run/p.sock"}) is None
    assert local_socket("podman", {"CONTAINER_CONNECTION": "vm"}) is None
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert local_socket("/usr/bin/podman", {}) == "/run/podman/podman.sock"
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    rootless = local_socket("podman", {"XDG_RUNTIME_DIR": "/run/user/1000"})
    assert rootless == "/run/user/1000/podman/podman.sock"
    assert local_socket("podman", {}) == "/run/user/1000/podman/podman.sock"
