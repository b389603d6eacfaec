"""`alca run` through the engine's API: which path it takes, when it falls back, how it ends.

The engine is a real Unix-socket server (tests/unit/runtime/engine_server.py); the calls
that end the process (`os._exit`, death by SIGPIPE) run in a child interpreter.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap

import pytest

from alcatraz.errors import AlcaError, UsageError
from alcatraz.sandbox import enter
from alcatraz.statefile import RunSpec
from tests.unit.runtime.engine_server import FakeExecEngine, engine_server, frame, short_dir

SPEC = RunSpec(
    executable="docker",
    container="alca-box",
    workdir="/workspace",
    project_root="/p",
    api_socket="/run/engine.sock",
)
PARTS = (["true"], [], "/workspace")


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, "/run/engine.sock"), ("auto", "/run/engine.sock"), ("0", ""), ("off", "")],
)
def test_alca_engine_api_chooses_the_path(
    monkeypatch: pytest.MonkeyPatch, value: str | None, expected: str
) -> None:
    if value is None:
        monkeypatch.delenv("ALCA_ENGINE_API", raising=False)
    else:
        monkeypatch.setenv("ALCA_ENGINE_API", value)
    assert enter.api_socket(SPEC) == expected
    assert enter.api_socket(SPEC._replace(api_socket="")) == ""


def test_cli_forced_and_unknown_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALCA_ENGINE_API", "cli")
    assert enter.api_socket(SPEC) == ""
    monkeypatch.setenv("ALCA_ENGINE_API", "yes\x1b[2J")
    with pytest.raises(UsageError, match="ALCA_ENGINE_API") as caught:
        enter.api_socket(SPEC)
    assert "\x1b" not in caught.value.message


def test_no_engine_on_the_socket_returns_to_fall_back_to_the_cli() -> None:
    with short_dir() as directory:
        spec = SPEC._replace(api_socket=os.path.join(directory, "gone.sock"))
        assert enter.exec_api(spec, spec.api_socket, PARTS, False) is None


def test_exec_create_refused_for_another_reason_falls_back() -> None:
    engine = FakeExecEngine(lambda c, t: None, create_status="500 Internal Server Error")
    with engine_server(engine) as server:
        assert enter.exec_api(SPEC, server.path, PARTS, False) is None


@pytest.mark.parametrize("status", ["404 Not Found", "409 Conflict"])
def test_missing_or_stopped_container_says_run_up(status: str) -> None:
    body = b'{"message": "Container alca-box is not running\\u001b]0;x\\u0007"}'
    engine = FakeExecEngine(lambda c, t: None, create_status=status, create_body=body)
    with engine_server(engine) as server, pytest.raises(AlcaError) as caught:
        enter.exec_api(SPEC, server.path, PARTS, False)
    assert "alca up" in (caught.value.hint or "")
    assert "is not running" in caught.value.message
    assert "\x1b" not in caught.value.message and "\x07" not in caught.value.message


CHILD = textwrap.dedent(
    """
    import sys
    from alcatraz.sandbox import enter
    from alcatraz.statefile import RunSpec
    spec = RunSpec("docker", "alca-box", "/workspace", "/p", api_socket=sys.argv[1])
    enter.exec_api(spec, sys.argv[1], (["cmd"], [], "/workspace"), False)
    print("fell back", flush=True)
    """
)


def _child(path: str, stdout: int = subprocess.PIPE) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-c", CHILD, path],
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=subprocess.PIPE,
        timeout=30,
        check=False,
    )


def test_it_leaves_with_the_commands_status_and_output(monkeypatch: pytest.MonkeyPatch) -> None:
    def play(conn: socket.socket, _tty: bool) -> None:
        conn.sendall(frame(1, b"out\n") + frame(2, b"err\n"))

    monkeypatch.setenv("ALCA_DEBUG", "1")
    with engine_server(FakeExecEngine(play, exit_code=300)) as server:
        done = _child(server.path)
    assert done.returncode == 300 & 0xFF
    assert done.stdout == b"out\n"
    assert done.stderr == f"→ Engine API: exec in alca-box via {server.path}\nerr\n".encode()


def test_a_closed_stdout_ends_it_by_sigpipe_quietly() -> None:
    def play(conn: socket.socket, _tty: bool) -> None:
        for _ in range(64):
            conn.sendall(frame(1, b"y\n" * 32768))

    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        with engine_server(FakeExecEngine(play)) as server:
            done = _child(server.path, stdout=write_end)
    finally:
        os.close(write_end)
    assert done.returncode == -13
    assert done.stderr == b""


def test_a_closed_stdin_is_an_empty_one_not_the_engines_socket() -> None:
    """With fd 0 closed the socket would become fd 0 and be read as stdin (a hang)."""

    def echo(conn: socket.socket, _tty: bool) -> None:
        while chunk := conn.recv(65536):
            conn.sendall(frame(1, chunk))
        conn.sendall(frame(1, b"done\n"))

    with engine_server(FakeExecEngine(echo, exit_code=0)) as server:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, server.path],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=30,
            check=False,
            preexec_fn=lambda: os.close(0),
        )
    assert (done.returncode, done.stdout) == (0, b"done\n")


def test_a_start_refused_falls_back_without_naming_the_api_path(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An HTTP error from the start means it never ran: the CLI may try, and the debug log
    names only the path that ran (`→ Executing:` comes from the CLI path)."""

    def refuse_start(conn: socket.socket, request: bytes) -> None:
        body = b'{"Id": "e1"}'
        conn.sendall(f"HTTP/1.1 201 Created\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
        conn.recv(65536)  # the start
        error = b'{"message": "boom"}'
        conn.sendall(
            f"HTTP/1.1 500 Internal Server Error\r\nContent-Length: {len(error)}\r\n\r\n".encode()
            + error
        )

    monkeypatch.setenv("ALCA_DEBUG", "1")
    with engine_server(refuse_start) as server:
        assert enter.exec_api(SPEC, server.path, PARTS, False) is None
    assert "Engine API" not in capsys.readouterr().err
