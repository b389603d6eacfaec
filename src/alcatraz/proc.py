"""The one seam between alcatraz and other programs (docker, podman, nft, mutagen, git).

Every command is an argv list, never a shell string. Under `ALCA_DEBUG` each command is
logged to stderr exactly as run. A failure carries the command and its stderr so the
error message explains itself. `exec_replace` hands the process over (for `alca run`).

`subprocess` is imported lazily: `alca run` only needs `os.execvp`.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TextIO

from alcatraz.errors import AlcaError, UnavailableError
from alcatraz.printable import printable_lines

if TYPE_CHECKING:
    import subprocess
    import threading
    from typing import NoReturn


def debug_enabled() -> bool:
    return os.environ.get("ALCA_DEBUG", "") not in ("", "0")


def log_command(argv: Sequence[str]) -> None:
    if debug_enabled():
        sys.stderr.write("→ Executing: " + printable_lines(shlex.join(argv)) + "\n")
        sys.stderr.flush()


def log_request(text: str) -> None:
    """An engine API request under `ALCA_DEBUG`, beside the commands `log_command` shows."""
    if debug_enabled():
        sys.stderr.write("→ Engine API: " + printable_lines(text) + "\n")
        sys.stderr.flush()


@dataclass(frozen=True)
class Result:
    """What a finished command returned."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class CommandFailed(AlcaError):
    """A program exited non-zero where success was required."""

    def __init__(self, result: Result, summary: str | None = None, hint: str | None = None):
        detail = printable_lines(result.stderr.strip() or result.stdout.strip() or "(no output)")
        if len(detail) > 2000:
            detail = detail[:2000] + " …"
        head = summary or f"{result.argv[0]} failed"
        super().__init__(
            f"{head} (exit {result.returncode}): {detail}\n"
            f"  command: {printable_lines(shlex.join(result.argv))}",
            hint,
        )
        self.result = result


class Runner(Protocol):
    """Runs programs; tests may substitute a recording fake."""

    def run(
        self,
        argv: Sequence[str],
        *,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        timeout: float | None = None,
        check: bool = False,
    ) -> Result: ...

    def stream(
        self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: str | None = None
    ) -> int: ...


class SubprocessRunner:
    """The real implementation."""

    def run(
        self,
        argv: Sequence[str],
        *,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        timeout: float | None = None,
        check: bool = False,
    ) -> Result:
        import subprocess

        args = tuple(argv)
        log_command(args)
        try:
            completed = subprocess.run(
                args,
                input=None if input is None else input.encode(),
                capture_output=True,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                timeout=timeout,
                check=False,
                stdin=None if input is not None else subprocess.DEVNULL,
            )
        except FileNotFoundError:
            raise UnavailableError(
                f"{args[0]} is not installed (not found on PATH)",
                hint=f"install {args[0]}, or fix PATH",
            ) from None
        except subprocess.TimeoutExpired:
            raise AlcaError(
                f"{args[0]} did not finish within {timeout:.0f} s\n  command: {shlex.join(args)}",
                hint="check that the program is healthy (e.g. the engine daemon is running)",
            ) from None
        # Bytes, decoded here: text mode would turn a CR into a line break (a forged line in
        # an engine error) and fail on a name that is not UTF-8.
        stdout = completed.stdout.decode("utf-8", "replace")
        stderr = completed.stderr.decode("utf-8", "replace")
        result = Result(args, completed.returncode, stdout, stderr)
        if debug_enabled() and stderr.strip():
            shown = printable_lines(stderr.strip()).replace("\n", "\n  ")
            sys.stderr.write("  stderr: " + shown + "\n")
        if check and not result.ok:
            raise CommandFailed(result)
        return result

    def stream(
        self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: str | None = None
    ) -> int:
        """Run with output shown as it comes (setup commands, hooks); returns the exit code.

        The output is the sandbox's (the agent can replace any program a setup command runs),
        so it passes through `printable_lines` on its way to our stdout and stderr.
        """
        import subprocess
        import threading

        args = tuple(argv)
        log_command(args)
        pipe = subprocess.PIPE
        try:
            child = subprocess.Popen(
                args, env=dict(env) if env is not None else None, cwd=cwd, stdout=pipe, stderr=pipe
            )
        except FileNotFoundError:
            raise UnavailableError(
                f"{args[0]} is not installed (not found on PATH)", hint=f"install {args[0]}"
            ) from None
        with child:
            pairs = ((child.stdout, sys.stdout), (child.stderr, sys.stderr))
            pumps = [
                threading.Thread(target=_pump, args=(output.fileno(), target))
                for output, target in pairs
                if output is not None
            ]
            for pump in pumps:
                pump.start()
            try:
                return child.wait()
            finally:
                for pump in pumps:
                    pump.join()


def _pump(source: int, target: TextIO) -> None:
    """Copy a child's output to `target` as it arrives, made printable."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
    while chunk := os.read(source, 65536):
        target.write(printable_lines(decoder.decode(chunk)))
        target.flush()
    target.write(printable_lines(decoder.decode(b"", final=True)))
    target.flush()


def exec_replace(argv: Sequence[str]) -> NoReturn:
    """Become `argv` (TTY, signals and exit status pass through untouched)."""
    args = list(argv)
    log_command(args)
    try:
        os.execvp(args[0], args)  # noqa: S606 - argv list, no shell
    except FileNotFoundError:
        raise UnavailableError(
            f"{args[0]} is not installed (not found on PATH)", hint=f"install {args[0]}"
        ) from None


def run_binary(
    argv: Sequence[str],
    *,
    stdin: int | None = None,
    input: bytes = b"",
    output: int | None = None,
    limit: int = 1 << 20,
    timeout: float | None = None,
) -> Result:
    """Run `argv` on bytes: stdin from the open file `stdin` (else `input`), stdout to the open
    file `output` (else captured as text), at most `limit` bytes of it.

    For data too large for memory, or not text (a pack read from a sandbox): past `limit` the
    program is killed and the result fails (exit -1, "output over the limit"); so it is past
    `timeout` (exit -1, "timed out"), even while it sends nothing. Of stderr only the first
    64 KiB are kept, the rest read and dropped: a sandbox cannot fill the disk through it.
    """
    import subprocess
    import tempfile
    import threading

    args = tuple(argv)
    log_command(args)
    with contextlib.ExitStack() as stack:
        given = stack.enter_context(tempfile.TemporaryFile()) if stdin is None else None
        if given is not None:
            given.write(input)
            given.seek(0)
        source = stdin if given is None else given.fileno()
        error_read, error_write = os.pipe()  # ours, not Popen's: the reader thread closes it
        try:
            child = subprocess.Popen(args, stdin=source, stdout=subprocess.PIPE, stderr=error_write)
        except FileNotFoundError:
            os.close(error_read)
            raise UnavailableError(f"{args[0]} is not installed (not found on PATH)") from None
        finally:
            os.close(error_write)
        errors = bytearray()
        reader = threading.Thread(target=_keep_head, args=(error_read, errors), daemon=True)
        reader.start()
        expired = threading.Event()
        watchdog = threading.Timer(timeout or 0.0, _expire, args=(child, expired))
        if timeout is not None:
            watchdog.start()
        try:
            captured, code = _drain(child, output, limit)
            if code is not None:
                code = child.wait()
        finally:
            watchdog.cancel()
            if child.poll() is None:  # interrupted (^C): the program must not outlive us
                child.kill()
            reader.join()
    text = bytes(errors).decode("utf-8", "replace")
    if expired.is_set():
        return Result(args, -1, "", f"timed out after {timeout:g} seconds")
    if code is None:
        return Result(args, -1, "", f"output over the limit of {limit} bytes")
    return Result(args, code, captured.decode("utf-8", "replace"), text)


_STDERR_KEPT = 65536


def _keep_head(fd: int, kept: bytearray) -> None:
    """Read the pipe `fd` to its end (the program never blocks on it), keeping its first
    bytes; then close it."""
    try:
        while chunk := os.read(fd, _READ_CHUNK):
            room = _STDERR_KEPT - len(kept)
            if room > 0:
                kept += chunk[:room]
    finally:
        os.close(fd)


def _expire(child: subprocess.Popen[bytes], expired: threading.Event) -> None:
    if child.poll() is None:
        expired.set()
        child.kill()


_READ_CHUNK = 1 << 16


def _drain(
    child: subprocess.Popen[bytes], output: int | None, limit: int
) -> tuple[bytes, int | None]:
    """(captured stdout, 0), or (b"", None) once more than `limit` bytes came (child killed)."""
    captured = bytearray()
    written = 0
    sink = os.fdopen(os.dup(output), "wb") if output is not None else None
    with child, contextlib.ExitStack() as stack:
        if sink is not None:
            stack.enter_context(sink)
        stream = child.stdout
        if stream is None:
            return b"", 0
        while chunk := stream.read(1 << 20):
            written += len(chunk)
            if written > limit:
                child.kill()
                return b"", None
            if sink is not None:
                sink.write(chunk)
            else:
                captured += chunk
    return bytes(captured), 0


def run_attached(argv: Sequence[str]) -> int:
    """Run `argv` on this terminal (stdin, stdout, stderr, TTY shared) and return its exit
    status: `exec_replace` for when alcatraz has work left after the command."""
    import subprocess

    args = tuple(argv)
    log_command(args)
    try:
        return subprocess.call(args)
    except FileNotFoundError:
        raise UnavailableError(f"{args[0]} is not installed (not found on PATH)") from None
