"""Helpers for tests/integration/test_run_terminal.py: `alca run` beside the engine's own exec.

A command runs either through pipes (`piped`) or on a pseudo-terminal that is its
controlling terminal (`on_pty`), the way a shell starts it: its own session, the pty's
foreground process group, so the kernel delivers SIGWINCH on a resize. A pty session is
driven by `Step`s: wait until some output has appeared, then resize the window or type.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import socket
import struct
import subprocess
import termios
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.integration.lifecycle.helpers import ALCA, Project

ROWS, COLUMNS = 33, 97
"""The window size every pty session starts with (unusual numbers, not a default)."""

PTY_TIMEOUT = 30.0

SETTLED_SIZE = (
    "i=0; s=; while [ $i -lt 30 ]; do s=$(stty size 2>/dev/null);"
    " case $s in [1-9]*' '[1-9]*) break;; esac; usleep 100000; i=$((i+1)); done;"
    ' echo "size=$s"'
)
"""Print the terminal size once the client has set it (up to 3 s).

`docker exec -it` itself sets the size only after the command started (Docker 20.10 has
no size in exec-create), so an immediate `stty size` there mostly sees none yet (busybox
prints nothing and exits 0).
"""

WAIT_FOR_Q = 'while :; do x=; read -t 1 x; [ "$x" = q ] && exit 0; done'
"""Keep the shell alive (so traps run) until a line `q` is typed."""


def set_window(fd: int, rows: int, columns: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))


def mode_of(attrs: list[object]) -> list[object]:
    """The terminal flags and control characters, without the line speeds."""
    iflag, oflag, cflag, lflag, _ispeed, _ospeed, cc = attrs
    return [iflag, oflag, cflag, lflag, list(cc)]  # type: ignore[call-overload]


def is_raw(attrs: list[object]) -> bool:
    """No line editing, echo, signals from keys, CR translation or output processing."""
    iflag, oflag, _cflag, lflag = (int(x) for x in attrs[:4])  # type: ignore[call-overload]
    lflag_off = termios.ICANON | termios.ECHO | termios.ISIG | termios.IEXTEN
    return not (lflag & lflag_off or iflag & (termios.ICRNL | termios.IXON)) and not (
        oflag & termios.OPOST
    )


@dataclass(frozen=True)
class Step:
    """When `after` has appeared in the output, `act(leader, follower)`."""

    after: bytes
    act: Callable[[int, int], None]


def typing(data: bytes) -> Callable[[int, int], None]:
    return lambda leader, _follower: _write_all(leader, data)


def resizing(rows: int, columns: int) -> Callable[[int, int], None]:
    return lambda leader, _follower: set_window(leader, rows, columns)


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data) :]


@dataclass
class PtyResult:
    """What a command on a pty did: exit status, everything drawn, the terminal modes."""

    returncode: int
    output: bytes
    elapsed: float
    mode_before: list[object]
    mode_after: list[object]
    modes_seen: list[list[object]] = field(default_factory=list)  # at each step

    @property
    def text(self) -> str:
        return self.output.decode(errors="replace").replace("\r\n", "\n")

    def __str__(self) -> str:
        return f"exit {self.returncode} after {self.elapsed:.1f}s, output {self.output!r}"


def _make_controlling_terminal() -> None:
    """In the child, after setsid: stdin's pty becomes its controlling terminal."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def on_pty(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: dict[str, str],
    steps: Sequence[Step] = (),
    timeout: float = PTY_TIMEOUT,
) -> PtyResult:
    """Run `argv` with stdin, stdout and stderr on a fresh pty and play `steps` in order."""
    leader, follower = os.openpty()
    set_window(follower, ROWS, COLUMNS)
    before = mode_of(termios.tcgetattr(follower))
    pending = list(steps)
    seen: list[list[object]] = []
    output = b""
    started = time.monotonic()
    process = subprocess.Popen(
        list(argv), cwd=cwd, env=env, stdin=follower, stdout=follower, stderr=follower,
        start_new_session=True, preexec_fn=_make_controlling_terminal,
    )  # fmt: skip
    try:
        while process.poll() is None:
            if time.monotonic() - started > timeout:
                process.kill()
                raise AssertionError(f"{argv} did not end in {timeout}s: {output!r}")
            output += _read_some(leader, 0.05)
            while pending and pending[0].after in output:
                seen.append(mode_of(termios.tcgetattr(follower)))
                pending.pop(0).act(leader, follower)
        output += _drain(leader)
        after = mode_of(termios.tcgetattr(follower))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
        os.close(leader)
        os.close(follower)
    assert not pending, f"never saw {pending[0].after!r} in {output!r}"
    elapsed = time.monotonic() - started
    return PtyResult(process.returncode, output, elapsed, before, after, seen)


def _read_some(fd: int, wait: float) -> bytes:
    ready, _, _ = select.select([fd], [], [], wait)
    if not ready:
        return b""
    try:
        return os.read(fd, 65536)
    except OSError:
        return b""


def _drain(fd: int) -> bytes:
    """What is still buffered once the command ended (the parent holds the follower open)."""
    data = b""
    while chunk := _read_some(fd, 0.2):
        data += chunk
    return data


@dataclass(frozen=True)
class Piped:
    returncode: int
    stdout: bytes
    stderr: bytes

    def __str__(self) -> str:
        return f"exit {self.returncode}, stdout {self.stdout[:300]!r}, stderr {self.stderr!r}"


def piped(
    argv: Sequence[str], *, cwd: Path, env: dict[str, str], data: bytes | None = None
) -> Piped:
    """Run `argv` without a terminal: stdin is `data` (or empty), output captured apart."""
    done = subprocess.run(
        list(argv), cwd=cwd, env=env, input=data if data is not None else b"",
        capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    return Piped(done.returncode, done.stdout, done.stderr)


# --- the two ways in: `alca run` and the engine's exec ---------------------------------------


@dataclass(frozen=True)
class Way:
    """How a command is started in the sandbox: `alca run` on one path, or the engine."""

    label: str
    argv: Callable[[Sequence[str], bool], list[str]]
    env: dict[str, str]


def alca_way(project: Project, path: str) -> Way:
    """`alca run` on `path`: "api" (the default choice) or "cli" (forced)."""
    extra = {"ALCA_ENGINE_API": "cli"} if path == "cli" else {}
    return Way(
        f"alca run ({path})",
        lambda command, _tty: [*ALCA, "run", *command],
        project.env(TERM="xterm", **extra),
    )


def engine_way(project: Project) -> Way:
    """The engine's own `exec -i[t]` in the same container and directory."""
    container = project.container_name

    def argv(command: Sequence[str], tty: bool) -> list[str]:
        flags = ["-it"] if tty else ["-i"]
        return [project.engine, "exec", *flags, "-w", "/workspace", container, *command]

    return Way(f"{project.engine} exec", argv, project.env(TERM="xterm"))


def run_way(way: Way, project: Project, command: Sequence[str], tty: bool) -> int:
    """The exit status of `command` started `way`, on a pty or through pipes."""
    argv = way.argv(command, tty)
    if tty:
        return on_pty(argv, cwd=project.root, env=way.env).returncode
    return piped(argv, cwd=project.root, env=way.env).returncode


# --- which path `alca run` should take ---------------------------------------------------------


def local_api_socket(engine: str, environ: dict[str, str]) -> str | None:
    """Where this machine's engine API socket is (local Unix sockets only), as `up` finds it."""
    host = environ.get("DOCKER_HOST" if engine == "docker" else "CONTAINER_HOST", "")
    if host:
        return host.removeprefix("unix://") if host.startswith("unix://") else None
    if engine == "docker":
        return "/var/run/docker.sock"
    if os.geteuid() == 0:
        return "/run/podman/podman.sock"
    runtime_dir = environ.get("XDG_RUNTIME_DIR", "")
    return f"{runtime_dir}/podman/podman.sock" if runtime_dir else None


def api_answers(engine: str, environ: dict[str, str]) -> bool:
    """Whether the engine's API socket answers `GET /_ping` with 200 (what `up` checks)."""
    path = local_api_socket(engine, environ)
    if path is None:
        return False
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(2.0)
        sock.connect(path)
        sock.sendall(b"GET /_ping HTTP/1.1\r\nHost: engine\r\nConnection: close\r\n\r\n")
        head = sock.recv(64)
        return head.startswith((b"HTTP/1.1 200", b"HTTP/1.0 200"))
    return False
