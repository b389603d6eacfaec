"""The local terminal during a TTY exec over the engine's API: raw mode and window size.

What `docker exec -it` does on its side: the terminal goes raw (every key, Ctrl-C and Ctrl-Z
included, is a byte for the command's own terminal), the exec's terminal gets our window
size at start and on every SIGWINCH, and the terminal is restored however we leave: normal
end, error, Ctrl-C sent from outside, SIGTERM or SIGHUP (after restoring, those signals are
raised again with their default action, so the caller dies of them as the CLI would).
Imported only for a TTY exec.
"""

from __future__ import annotations

import os
import signal
import termios
import time

from alcatraz.runtime.engine_api import ApiError, ApiUnavailable, quote_segment, request

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import FrameType, TracebackType
    from typing import Any

_RESIZE_TRIES = 5  # the engine may refuse a resize for a moment right after the start
_RESIZE_TIMEOUT = 2.0
_FATAL = (signal.SIGTERM, signal.SIGHUP)


class _Killed(BaseException):
    """A terminating signal arrived: unwind (restoring the terminal), then die of it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_killed(signum: int, _frame: FrameType | None) -> None:
    raise _Killed(signum)


def _ignore(_signum: int, _frame: FrameType | None) -> None:
    return None  # the wake-up descriptor carries the news to the copy loop


def raw_attributes(attributes: list[Any]) -> list[Any]:
    """`cfmakeraw`, as the engines' CLIs apply it: no echo, no line editing, no signals
    from keys, no output processing, 8-bit characters, reads return after one byte."""
    iflag, oflag, cflag, lflag = (int(value) for value in attributes[:4])
    iflag &= ~(
        termios.IGNBRK
        | termios.BRKINT
        | termios.PARMRK
        | termios.ISTRIP
        | termios.INLCR
        | termios.IGNCR
        | termios.ICRNL
        | termios.IXON
    )
    oflag &= ~termios.OPOST
    lflag &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG | termios.IEXTEN)
    cflag = (cflag & ~(termios.CSIZE | termios.PARENB)) | termios.CS8
    control = list(attributes[6])
    control[termios.VMIN] = 1
    control[termios.VTIME] = 0
    return [iflag, oflag, cflag, lflag, attributes[4], attributes[5], control]


def terminal_size(*fds: int) -> tuple[int, int] | None:
    """(rows, columns) of the first of `fds` that is a sized terminal, as the CLIs read it
    (stdout's first); None when none is."""
    for fd in fds:
        try:
            columns, lines = os.get_terminal_size(fd)
        except OSError:
            continue
        if columns > 0 and lines > 0:
            return lines, columns
    return None


class Terminal:
    """Context manager around a TTY exec's copy loop (see the module's docstring)."""

    def __init__(self, in_fd: int, out_fd: int, socket_path: str, exec_id: str) -> None:
        self.in_fd, self.out_fd = in_fd, out_fd
        self.socket_path, self.exec_path = socket_path, f"/exec/{quote_segment(exec_id)}"
        self.saved: list[Any] | None = None
        self.wake_fd = -1
        self._wake_write = -1
        self._handlers: dict[int, object] = {}
        self._old_wakeup = -1
        self._tries_left = _RESIZE_TRIES
        self._resize_at: float | None = time.monotonic()
        self._last_size: tuple[int, int] | None = None

    def __enter__(self) -> Terminal:
        try:
            self.saved = termios.tcgetattr(self.in_fd)
        except termios.error:
            self.saved = None  # not a terminal after all: nothing to make raw or restore
        self.wake_fd, self._wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._old_wakeup = signal.set_wakeup_fd(self._wake_write, warn_on_full_buffer=False)
        self._handlers[signal.SIGWINCH] = signal.signal(signal.SIGWINCH, _ignore)
        for signum in _FATAL:
            self._handlers[signum] = signal.signal(signum, _raise_killed)
        if self.saved is not None:
            termios.tcsetattr(self.in_fd, termios.TCSANOW, raw_attributes(self.saved))
        self.tick(False)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self.saved is not None:
            try:  # noqa: SIM105 - contextlib stays off the run path
                termios.tcsetattr(self.in_fd, termios.TCSADRAIN, self.saved)
            except termios.error:
                pass  # the terminal is gone (hung up): nothing left to restore
        signal.set_wakeup_fd(self._old_wakeup)
        for signum, handler in self._handlers.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        os.close(self.wake_fd)
        os.close(self._wake_write)
        if isinstance(error, _Killed):
            signal.signal(error.signum, signal.SIG_DFL)
            os.kill(os.getpid(), error.signum)

    def timeout(self) -> float | None:
        """How long the copy loop may wait before a resize is due (None: no resize due)."""
        if self._resize_at is None:
            return None
        return max(0.0, self._resize_at - time.monotonic())

    def tick(self, woke: bool) -> None:
        """After each wait of the copy loop: a SIGWINCH came (`woke`) or a retry is due."""
        if woke:
            try:
                while os.read(self.wake_fd, 512):
                    pass
            except BlockingIOError:
                pass
            self._tries_left, self._resize_at = _RESIZE_TRIES, time.monotonic()
        if self._resize_at is None or self._resize_at > time.monotonic():
            return
        if self._resize():
            self._resize_at = None
            return
        self._tries_left -= 1
        wait = 0.01 * (_RESIZE_TRIES - self._tries_left)
        self._resize_at = time.monotonic() + wait if self._tries_left > 0 else None

    def _resize(self) -> bool:
        """Give the exec's terminal our size; False when the engine refused (retried)."""
        size = terminal_size(self.out_fd, self.in_fd)
        if size is None or size == self._last_size:
            return True
        try:
            request(
                self.socket_path,
                "POST",
                f"{self.exec_path}/resize?h={size[0]}&w={size[1]}",
                timeout=_RESIZE_TIMEOUT,
            )
        except (ApiError, ApiUnavailable):
            return False
        self._last_size = size
        return True
