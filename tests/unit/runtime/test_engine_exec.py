"""Exec over the engine API against a real Unix-socket engine: streams, stdin, exit codes,
what counts as started, and the terminal in TTY mode."""

from __future__ import annotations

import contextlib
import os
import pty
import socket
import subprocess
import sys
import termios
import textwrap
import threading
import time
from collections.abc import Callable

import pytest

from alcatraz.runtime import engine_exec
from alcatraz.runtime.engine_api import ApiError, ApiUnavailable
from alcatraz.runtime.engine_tty import raw_attributes
from tests.unit.runtime.engine_server import (
    FakeExecEngine,
    engine_server,
    frame,
    short_dir,
)


class _Pipe:
    """A pipe whose read end a thread drains (or whose write end a thread feeds), so the
    exec never blocks on a full pipe buffer."""

    def __init__(self, feed: bytes | None = None) -> None:
        self.read_fd, self.write_fd = os.pipe()
        self.data = b""
        target = self._drain if feed is None else self._feed
        self.thread = threading.Thread(target=target, args=(feed,), daemon=True)
        self.thread.start()

    def _drain(self, _feed: None) -> None:
        chunks = []
        while chunk := os.read(self.read_fd, 65536):
            chunks.append(chunk)
        os.close(self.read_fd)
        self.data = b"".join(chunks)

    def _feed(self, feed: bytes) -> None:
        view = memoryview(feed)
        while view:
            view = view[os.write(self.write_fd, view) :]
        os.close(self.write_fd)


def _run(engine: FakeExecEngine, stdin: bytes = b"", tty: bool = False) -> tuple[int, bytes, bytes]:
    """Run through the fake engine with `stdin` piped in; (exit code, stdout, stderr)."""
    source, out, err = _Pipe(stdin), _Pipe(), _Pipe()
    with engine_server(engine) as server:
        try:
            code = engine_exec.run_exec(
                server.path,
                "alca-box",
                ["cat"],
                env=["A=1"],
                workdir="/w",
                tty=tty,
                fds=(source.read_fd, out.write_fd, err.write_fd),
            )
        finally:
            for fd in (source.read_fd, out.write_fd, err.write_fd):
                os.close(fd)
    for pipe in (source, out, err):
        pipe.thread.join(10)
    return code, out.data, err.data


def _recv_all(conn: socket.socket) -> bytes:
    data = b""
    while chunk := conn.recv(65536):
        data += chunk
    return data


def test_frames_split_anywhere_reach_stdout_and_stderr_byte_exact() -> None:
    out = bytes(range(256)) * 400  # binary, 100 KiB
    stream = frame(1, out[:70000]) + frame(2, b"warn\n") + frame(1, out[70000:]) + frame(3, b"!")

    def play(conn: socket.socket, _tty: bool) -> None:
        for start in range(0, len(stream), 4093):  # headers split across reads too
            conn.sendall(stream[start : start + 4093])
            time.sleep(0.0005)

    engine = FakeExecEngine(play, exit_code=3)
    assert _run(engine) == (3, out, b"warn\n!")
    create = engine.bodies[0]
    assert create == {
        "AttachStdin": True,
        "AttachStdout": True,
        "AttachStderr": True,
        "Tty": False,
        "Cmd": ["cat"],
        "Env": ["A=1"],
        "WorkingDir": "/w",
    }
    assert engine.bodies[1] == {"Detach": False, "Tty": False}  # the start: no size
    assert engine.paths[:3] == ["/containers/alca-box/exec", "/exec/e1/start", "/exec/e1/json"]


def test_stdin_is_copied_up_and_half_closed_at_eof() -> None:
    """The engine reads stdin to its end *while* answering: a large `cat` cannot deadlock."""
    payload = os.urandom(3 * 1024 * 1024)

    def echo(conn: socket.socket, _tty: bool) -> None:
        while chunk := conn.recv(65536):
            conn.sendall(frame(1, chunk))

    assert _run(FakeExecEngine(echo), stdin=payload) == (0, payload, b"")


def test_tty_stream_is_copied_unframed() -> None:
    def play(conn: socket.socket, tty: bool) -> None:
        assert tty
        conn.sendall(b"\x01\x00raw\r\n" + _recv_all(conn))

    code, out, _ = _run(FakeExecEngine(play, exit_code=0), stdin=b"typed", tty=True)
    assert (code, out) == (0, b"\x01\x00raw\r\ntyped")


def test_exit_code_is_polled_while_the_exec_still_runs() -> None:
    engine = FakeExecEngine(lambda conn, _tty: None, exit_code=137, running=3)
    assert _run(engine)[0] == 137
    assert engine.paths.count("/exec/e1/json") == 4


@pytest.mark.parametrize(
    ("status", "body"),
    [("404 Not Found", b'{"message": "No such container: alca-box"}'), ("409 Conflict", b"{}")],
)
def test_missing_or_stopped_container_is_not_started(status: str, body: bytes) -> None:
    engine = FakeExecEngine(lambda conn, _tty: None, create_status=status, create_body=body)
    with pytest.raises(engine_exec.NotStarted) as caught:
        _run(engine)
    assert isinstance(caught.value.cause, ApiError)
    assert caught.value.cause.status == int(status[:3])
    assert not any(path.endswith("/start") for path in engine.paths)


def test_no_engine_on_the_socket_is_not_started() -> None:
    with short_dir() as directory, pytest.raises(engine_exec.NotStarted) as caught:
        engine_exec.run_exec(os.path.join(directory, "none.sock"), "box", ["true"])
    assert isinstance(caught.value.cause, ApiUnavailable)


def test_a_connection_lost_at_start_is_never_not_started() -> None:
    """The engine may have started the command: the caller must not run it again."""

    def hang_up(conn: socket.socket, request: bytes) -> None:
        if b"/exec HTTP" in request:
            body = b'{"Id": "e1"}'
            conn.sendall(f"HTTP/1.1 201 Created\r\nContent-Length: {len(body)}\r\n\r\n".encode())
            conn.sendall(body)
            conn.recv(65536)  # the start request, then the line drops

    with engine_server(hang_up) as server, pytest.raises(engine_exec.ExecLost):
        engine_exec.run_exec(server.path, "box", ["true"], fds=(None, 1, 2))


def test_exec_id_and_container_cannot_escape_their_path_segment() -> None:
    engine = FakeExecEngine(lambda conn, _tty: None, create_body=b'{"Id": "../../x?y"}')
    _run(engine)
    assert "/exec/..%2F..%2Fx%3Fy/start" in engine.paths


def test_raw_attributes_are_cfmakeraw() -> None:
    attributes = [0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF, 0, 0, [b"\x00"] * 32]
    iflag, oflag, cflag, lflag, *_, control = raw_attributes(attributes)
    assert not iflag & (termios.ICRNL | termios.IXON | termios.ISTRIP | termios.BRKINT)
    assert not oflag & termios.OPOST
    assert not lflag & (termios.ECHO | termios.ICANON | termios.ISIG | termios.IEXTEN)
    assert cflag & termios.CSIZE == termios.CS8 and not cflag & termios.PARENB
    assert (control[termios.VMIN], control[termios.VTIME]) == (1, 0)


def _tty_run(play: Callable[[socket.socket, bool], None]) -> tuple[FakeExecEngine, list[object]]:
    """A TTY exec on a real pseudo-terminal sized 33x120; the attributes it had during."""
    master, slave = pty.openpty()
    os.set_blocking(master, False)
    termios.tcsetattr(slave, termios.TCSANOW, termios.tcgetattr(slave))
    os.system(f"stty cols 120 rows 33 < {os.ttyname(slave)}")  # noqa: S605 - fixed text
    seen: list[object] = []

    def watch(conn: socket.socket, tty: bool) -> None:
        deadline = time.monotonic() + 2  # the client goes raw once it has the start's reply
        while termios.tcgetattr(slave)[3] & termios.ICANON and time.monotonic() < deadline:
            time.sleep(0.005)
        seen.append(termios.tcgetattr(slave))
        play(conn, tty)

    engine = FakeExecEngine(watch, exit_code=5)
    before = termios.tcgetattr(slave)
    try:
        with engine_server(engine) as server:
            code = engine_exec.run_exec(
                server.path, "box", ["sh"], tty=True, fds=(slave, slave, slave)
            )
        assert code == 5
        assert termios.tcgetattr(slave) == before  # restored
    finally:
        os.close(master)
        os.close(slave)
    return engine, seen


def test_tty_mode_is_raw_while_running_restored_after_and_sized() -> None:
    def play(conn: socket.socket, _tty: bool) -> None:
        time.sleep(0.1)  # the resize arrives on its own connection meanwhile

    engine, seen = _tty_run(play)
    during = seen[0]
    assert isinstance(during, list)
    assert not during[3] & (termios.ICANON | termios.ECHO | termios.ISIG)
    assert engine.bodies[0]["Tty"] is True
    assert engine.bodies[0]["ConsoleSize"] == [33, 120]  # Docker API 1.42+
    start = engine.bodies[1]
    assert (start["ConsoleSize"], start["h"], start["w"]) == ([33, 120], 33, 120)  # Podman
    assert "/exec/e1/resize?h=33&w=120" in engine.paths  # older engines


def test_terminal_is_restored_when_killed_by_sigterm() -> None:
    """The caller dies of SIGTERM as the CLI would, with the terminal back as it was."""
    script = textwrap.dedent(
        """
        import os, sys, termios
        from alcatraz.runtime import engine_exec
        fd = os.open(sys.argv[2], os.O_RDWR | os.O_NOCTTY)
        print("raw" if not termios.tcgetattr(fd)[3] & termios.ICANON else "cooked", flush=True)
        engine_exec.run_exec(sys.argv[1], "box", ["sh"], tty=True, fds=(fd, fd, fd))
        """
    )
    master, slave = pty.openpty()
    before = termios.tcgetattr(slave)

    def hold(conn: socket.socket, _tty: bool) -> None:
        time.sleep(5)

    try:
        with engine_server(FakeExecEngine(hold)) as server:
            child = subprocess.Popen(
                [sys.executable, "-c", script, server.path, os.ttyname(slave)],
                stdout=subprocess.PIPE,
            )
            assert child.stdout is not None
            assert child.stdout.readline() == b"cooked\n"
            deadline = time.monotonic() + 5
            while termios.tcgetattr(slave)[3] & termios.ICANON:
                assert time.monotonic() < deadline, "never went raw"
                time.sleep(0.01)
            child.terminate()
            assert child.wait(5) == -15
        assert termios.tcgetattr(slave) == before
    finally:
        os.close(master)
        os.close(slave)


def test_a_frame_claiming_4_gib_is_passed_on_as_it_comes_not_held() -> None:
    # A hostile engine's header says 0xFFFFFFFF bytes follow: what did come must be written
    # at once, and the demultiplexer must not grow towards 4 GiB waiting for the rest.
    out_read, out_write = os.pipe()
    err_read, err_write = os.pipe()
    os.set_blocking(out_read, False)
    try:
        demux = engine_exec._Demux(out_write, err_write)
        demux.feed(frame(2, b"e") + b"\x01\x00\x00\x00" + b"\xff\xff")
        demux.feed(b"\xff\xff" + b"x" * 1000)
        demux.feed(b"y" * 1000)
        written = b""
        with contextlib.suppress(BlockingIOError):
            written = os.read(out_read, 65536)
        assert written == b"x" * 1000 + b"y" * 1000
        assert os.read(err_read, 100) == b"e"
        assert len(demux.buffer) == 0
    finally:
        for fd in (out_read, out_write, err_read, err_write):
            os.close(fd)
