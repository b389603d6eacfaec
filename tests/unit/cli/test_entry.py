"""The console script leaves with `os._exit`: every byte written, the exit code kept."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import alcatraz

SRC = str(Path(alcatraz.__file__).parent.parent)


def entry(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONPATH": SRC, "ALCA_HOME": "/nonexistent-alca-home"}
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-m", "alcatraz", *args], env=env, timeout=60, **kwargs
    )


def test_buffered_output_is_written_before_leaving() -> None:
    """`--help` output goes through a pipe (block-buffered): all of it must arrive."""
    done = entry(["--help"], capture_output=True)
    assert done.returncode == 0
    assert b"usage" in done.stdout.lower()
    assert len(done.stdout) > 500


def test_the_exit_code_is_kept() -> None:
    done = entry(["no-such-command"], capture_output=True)
    assert done.returncode == 64
    assert done.stderr


def test_a_reader_that_went_away_is_no_traceback() -> None:
    reader, writer = os.pipe()
    os.close(reader)
    try:
        done = entry(["--help"], stdout=writer, stderr=subprocess.PIPE)
    finally:
        os.close(writer)
    assert b"Traceback" not in done.stderr
    assert done.returncode == 0
