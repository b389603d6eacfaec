"""`exec` through the engine's API: what `docker|podman exec -i [-t]` does, without the CLI.

Why: the CLI is a second process start (Docker ~22 ms, Podman ~90 ms) on every `alca run`.
The calls are `POST /containers/{name}/exec`, `POST /exec/{id}/start` with the connection
hijacked (`Connection: Upgrade`, `Upgrade: tcp`), then `GET /exec/{id}/json` for the exit
code. Without a TTY the stream is multiplexed in 8-byte-headed frames (stream, 0, 0, 0,
big-endian length); with one it is the raw terminal stream both ways, the local terminal
is in raw mode (`engine_tty`) and its size follows SIGWINCH. Standard library only: `alca
run` imports it.

Failures are split by whether the command can have run: `NotStarted` (the caller may use
the CLI instead, or report a missing container) and `ExecLost` (never retried).
"""

from __future__ import annotations

import _socket  # not `socket`: its enums and `selectors` cost ~5 ms on the run path
import os
import select
import time

from alcatraz.runtime.engine_api import (
    ApiError,
    ApiUnavailable,
    call,
    connect,
    decode_reply,
    encode_request,
    quote_segment,
    read_body,
    read_head,
    request,
)

TYPE_CHECKING = False  # not `from typing import ...`: typing costs ~5 ms on the run path
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from alcatraz.runtime.engine_tty import Terminal

_READ_SIZE = 65536
_CONTROL_TIMEOUT = 30.0  # create, start's reply, inspect: each answers in milliseconds
_EXIT_WAIT = 10.0  # how long the exec may still report Running after its stream ended


class NotStarted(Exception):
    """Nothing ran in the container. `cause` says why: an `ApiUnavailable` (no engine on the
    socket) or an `ApiError` (404: no such container, 409: it is not running, ...)."""

    def __init__(self, cause: ApiUnavailable | ApiError) -> None:
        super().__init__(str(cause))
        self.cause = cause


class ExecLost(Exception):
    """The exec was started but its stream or exit status was lost: never run it again."""


def exec_config(
    command: Sequence[str],
    env: Sequence[str],
    workdir: str,
    tty: bool,
    console_size: tuple[int, int] | None = None,
) -> dict[str, object]:
    """The body of `POST /containers/{name}/exec`, as `docker exec -i [-t] -e -w` sends it.

    `console_size` (rows, columns): engines from Docker API 1.42 on size the terminal before
    the command starts; older ones ignore it and get the resize right after the start.
    """
    config: dict[str, object] = {
        "AttachStdin": True,
        "AttachStdout": True,
        "AttachStderr": True,
        "Tty": tty,
        "Cmd": list(command),
    }
    if env:
        config["Env"] = list(env)
    if workdir:
        config["WorkingDir"] = workdir
    if tty and console_size is not None:
        config["ConsoleSize"] = list(console_size)
    return config


def _create(sock: _socket.socket, container: str, config: object) -> str:
    created = call(sock, "POST", f"/containers/{quote_segment(container)}/exec", config)
    exec_id = created.get("Id") if isinstance(created, dict) else None
    if not isinstance(exec_id, str) or not exec_id:
        raise ApiUnavailable("the engine's reply to exec create has no Id")
    return exec_id


def _start_body(config: dict[str, object]) -> dict[str, object]:
    """`Detach`, `Tty` and the terminal's size: Docker reads it as `ConsoleSize` (API 1.42+),
    Podman as `h`/`w`; each ignores the other's, and without it the command's first look at
    its terminal may find no size at all."""
    body: dict[str, object] = {"Detach": False, "Tty": config["Tty"]}
    size = config.get("ConsoleSize")
    if isinstance(size, list):
        body.update(ConsoleSize=size, h=size[0], w=size[1])
    return body


def _start(sock: _socket.socket, exec_id: str, config: dict[str, object]) -> bytes:
    """Start the exec on `sock` and hijack it; the bytes already read past the reply head.

    Only an HTTP error means the command did not start (`ApiError`); once the request is
    on its way, a broken connection may have started it (`ExecLost`).
    """
    try:
        sock.sendall(
            encode_request(
                "POST",
                f"/exec/{quote_segment(exec_id)}/start",
                _start_body(config),
                "Connection: Upgrade\r\nUpgrade: tcp\r\n",
            )
        )
        status, headers, rest = read_head(sock)
        if status in (101, 200):
            return rest
        raw = read_body(sock, status, headers, rest)
    except (OSError, ApiUnavailable) as error:
        raise ExecLost(
            f"the connection to the engine broke as the command started: {error}"
        ) from None
    decode_reply(status if status >= 400 else 502, raw)  # raises ApiError
    raise ApiError(status, "unexpected reply to exec start")


def exit_code(socket_path: str, exec_id: str) -> int:
    """The exec's exit code, polled while the engine still reports it Running (it may, for a
    moment, after the stream closed)."""
    deadline = time.monotonic() + _EXIT_WAIT
    pause = 0.001
    while True:
        try:
            info = request(socket_path, "GET", f"/exec/{quote_segment(exec_id)}/json")
        except (ApiUnavailable, ApiError) as error:
            raise ExecLost(f"the command's exit status could not be read: {error}") from None
        if not isinstance(info, dict):
            raise ExecLost("the engine's reply to exec inspect is not an object")
        code = info.get("ExitCode")
        if not info.get("Running") and isinstance(code, int) and not isinstance(code, bool):
            return code
        if time.monotonic() > deadline:
            raise ExecLost("the command's stream ended but the engine still reports it running")
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def write_all(fd: int, data: bytes | memoryview) -> None:
    """Write everything, also to a descriptor someone left non-blocking."""
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            select.select([], [fd], [])


class _Demux:
    """Splits the multiplexed stream into stdout and stderr (stream 3, the engine's own
    errors, goes to stderr too). A frame's payload is passed on as it arrives, so a header
    claiming 4 GiB never makes us hold more than one read; only a split header waits."""

    def __init__(self, out_fd: int, err_fd: int) -> None:
        self.out_fd, self.err_fd = out_fd, err_fd
        self.buffer = bytearray()
        self.left = 0  # payload bytes of the current frame still to come
        self.fd = out_fd

    def feed(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        start = 0
        while start < len(buffer):
            if self.left:
                end = min(len(buffer), start + self.left)
                write_all(self.fd, memoryview(buffer)[start:end])
                self.left -= end - start
                start = end
            elif len(buffer) - start >= 8:
                self.fd = self.out_fd if buffer[start] in (0, 1) else self.err_fd
                self.left = int.from_bytes(buffer[start + 4 : start + 8], "big")
                start += 8
            else:
                break
        del buffer[:start]


class _Stream:
    """Copies stdin up the hijacked socket and the socket's bytes down, until the engine
    closes it. Sending never blocks, so a command that answers as much as it is fed (`cat`)
    cannot deadlock us against the engine."""

    def __init__(self, sock: _socket.socket, stdin_fd: int | None, deliver: _Demux | int) -> None:
        self.sock = sock
        self.stdin_fd = stdin_fd
        self.deliver = deliver
        self.pending = b""
        self.stdin_open = stdin_fd is not None
        if not self.stdin_open:
            self._half_close()

    def _half_close(self) -> None:
        try:  # noqa: SIM105 - contextlib stays off the run path (~4 ms)
            self.sock.shutdown(_socket.SHUT_WR)
        except OSError:
            pass  # the engine already closed: the read side sees the end next

    def _read_stdin(self, fd: int) -> None:
        try:
            data = os.read(fd, _READ_SIZE)
        except BlockingIOError:
            return
        except OSError:  # EIO: the terminal hung up; EBADF: stdin was closed
            data = b""
        if data:
            self.pending = data
            self._send()
        else:
            self.stdin_open = False
            self._half_close()

    def _send(self) -> None:
        try:
            sent = self.sock.send(self.pending)
        except BlockingIOError:
            return
        except OSError:  # the engine stopped reading stdin: drop it, keep the output coming
            sent, self.stdin_open = len(self.pending), False
        self.pending = self.pending[sent:]
        if not self.pending and not self.stdin_open:
            self._half_close()

    def _receive(self) -> bool:
        try:
            data = self.sock.recv(_READ_SIZE)
        except BlockingIOError:
            return True
        except OSError:
            return False
        if not data:
            return False
        self._deliver(data)
        return True

    def _deliver(self, data: bytes) -> None:
        if isinstance(self.deliver, int):
            write_all(self.deliver, data)
        else:
            self.deliver.feed(data)

    def run(self, rest: bytes, terminal: Terminal | None = None) -> None:
        """Until the engine closes the stream; `terminal` wakes the loop for resizes."""
        self._deliver(rest)
        self.sock.setblocking(False)
        wake = terminal.wake_fd if terminal is not None else -1
        while True:
            readers: list[int | _socket.socket] = [self.sock]
            if self.stdin_fd is not None and self.stdin_open and not self.pending:
                readers.append(self.stdin_fd)
            if wake >= 0:
                readers.append(wake)
            writers = [self.sock] if self.pending else []
            timeout = terminal.timeout() if terminal is not None else None
            readable, writable, _ = select.select(readers, writers, [], timeout)
            if self.sock in readable and not self._receive():
                return
            if writable:
                self._send()
            if self.stdin_fd is not None and self.stdin_fd in readable:
                self._read_stdin(self.stdin_fd)
            if terminal is not None:
                terminal.tick(wake in readable)


def _fill_closed_standard_fds() -> None:
    """A closed 0, 1 or 2 would go to the engine's socket (the lowest free descriptor), and
    the stream would be copied into itself: point them at /dev/null first. For stdin that
    is an immediate end of input, as `docker exec -i ... <&-` gets."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)


def run_exec(
    socket_path: str,
    container: str,
    command: Sequence[str],
    *,
    env: Sequence[str] = (),
    workdir: str = "",
    tty: bool = False,
    fds: tuple[int | None, int, int] = (0, 1, 2),
    announce: Callable[[], None] | None = None,
) -> int:
    """Run `command` in `container` attached to `fds` (stdin, stdout, stderr); its exit code.

    `NotStarted` before anything ran, `ExecLost` after. With `tty`, stdin must be a
    terminal: it is put in raw mode for the command's life and always restored.
    `announce` is called once the exec has started, before any of its output.
    """
    stdin_fd, out_fd, err_fd = fds
    _fill_closed_standard_fds()
    try:
        sock = connect(socket_path, _CONTROL_TIMEOUT)
    except ApiUnavailable as error:
        raise NotStarted(error) from None
    try:
        size = None
        if tty:
            from alcatraz.runtime.engine_tty import terminal_size

            size = terminal_size(out_fd, stdin_fd if stdin_fd is not None else 0)
        config = exec_config(command, env, workdir, tty, size)
        try:
            exec_id = _create(sock, container, config)
            rest = _start(sock, exec_id, config)
        except (ApiUnavailable, ApiError) as error:
            raise NotStarted(error) from None
        if announce is not None:
            announce()
        sock.settimeout(None)
        if not tty:
            _Stream(sock, stdin_fd, _Demux(out_fd, err_fd)).run(rest)
        else:
            from alcatraz.runtime.engine_tty import Terminal

            with Terminal(stdin_fd or 0, out_fd, socket_path, exec_id) as terminal:
                _Stream(sock, stdin_fd, out_fd).run(rest, terminal)
    finally:
        sock.close()
    return exit_code(socket_path, exec_id)
