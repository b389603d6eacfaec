"""`proc.run_binary` moves bytes (a pack from a sandbox) through files, never more than the
limit; `proc.run_attached` hands the terminal over and returns the exit status."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from alcatraz import proc
from alcatraz.errors import UnavailableError


def test_stdout_goes_to_the_file_byte_for_byte(tmp_path: Path) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB, not text
    out = tmp_path / "out"
    fd = os.open(out, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        done = proc.run_binary(["cat"], input=data, output=fd, limit=len(data))
    finally:
        os.close(fd)
    assert done.ok, done
    assert out.read_bytes() == data


def test_stdin_from_a_file_and_stdout_captured(tmp_path: Path) -> None:
    source = tmp_path / "in"
    source.write_bytes(b"hello\n")
    fd = os.open(source, os.O_RDONLY)
    try:
        done = proc.run_binary(["cat"], stdin=fd)
    finally:
        os.close(fd)
    assert (done.returncode, done.stdout) == (0, "hello\n")


def test_output_over_the_limit_kills_and_fails(tmp_path: Path) -> None:
    fd = os.open(tmp_path / "out", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        done = proc.run_binary(["yes"], output=fd, limit=1 << 20)
    finally:
        os.close(fd)
    assert done.returncode == -1 and "over the limit" in done.stderr
    assert (tmp_path / "out").stat().st_size <= 1 << 20


def test_exit_status_and_stderr() -> None:
    done = proc.run_binary(["sh", "-c", "echo oops >&2; exit 3"])
    assert (done.returncode, done.stderr) == (3, "oops\n")
    assert proc.run_attached(["sh", "-c", "exit 5"]) == 5


def test_a_missing_program() -> None:
    with pytest.raises(UnavailableError):
        proc.run_binary(["alca-no-such-program"])
    with pytest.raises(UnavailableError):
        proc.run_attached(["alca-no-such-program"])


def test_a_program_that_never_finishes_is_killed_at_the_timeout() -> None:
    # A sandbox's `git pack-objects` replaced by one that sends nothing and never exits.
    started = time.monotonic()
    done = proc.run_binary(["sh", "-c", "exec sleep 30"], timeout=0.5)
    assert time.monotonic() - started < 10
    assert not done.ok and "timed out" in done.stderr


def test_a_flood_on_stderr_is_never_written_to_disk(tmp_path: Path) -> None:
    # Files the child could grow are capped at 1 MiB (RLIMIT_FSIZE, inherited); a pipe is
    # not a file. Before the fix stderr went to a temporary file, so the flood failed.
    script = (
        "import resource\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))\n"
        "from alcatraz import proc\n"
        "done = proc.run_binary(['sh', '-c', 'yes E | head -c 8000000 >&2'])\n"
        "print(done.returncode, len(done.stderr), done.stderr.count('E'))\n"
    )
    ran = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert ran.stdout.split() == ["0", "65536", "32768"], ran.stderr
