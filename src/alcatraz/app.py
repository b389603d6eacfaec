"""The injectable environment a command runs in: streams, TTY flags, env, cwd, runner.

Commands talk to the world only through this object, so tests can swap any part of it
(a fake TTY, a temporary HOME, a recording runner) without patching globals.
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from alcatraz.paths import alca_home
from alcatraz.proc import Runner, SubprocessRunner


@dataclass
class App:
    """Everything a command may touch outside the pure core."""

    stdin: TextIO = field(default_factory=lambda: sys.stdin)
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    environ: MutableMapping[str, str] = field(default_factory=lambda: os.environ)
    cwd: Path = field(default_factory=Path.cwd)
    runner: Runner = field(default_factory=SubprocessRunner)
    quiet: bool = False

    @property
    def interactive(self) -> bool:
        """Prompts are shown only when a person can answer them."""
        try:
            return self.stdin.isatty()
        except (AttributeError, ValueError):
            return False

    @property
    def home(self) -> Path:
        return alca_home(dict(self.environ))

    # -- output ---------------------------------------------------------------------------
    def step(self, text: str) -> None:
        """A progress step (`→ `), hidden by -q."""
        if not self.quiet:
            self.stdout.write(f"→ {text}\n")
            self.stdout.flush()

    def done(self, text: str) -> None:
        """A completion line (`✓ `), hidden by -q."""
        if not self.quiet:
            self.stdout.write(f"✓ {text}\n")
            self.stdout.flush()

    def out(self, text: str = "") -> None:
        """Regular output (the answer the user asked for); not hidden by -q."""
        self.stdout.write(text + "\n")

    def info(self, text: str = "") -> None:
        """Informational output, hidden by -q."""
        if not self.quiet:
            self.stdout.write(text + "\n")

    def warn(self, text: str) -> None:
        self.stderr.write(f"Warning: {text}\n")
        self.stderr.flush()

    def confirm(self, question: str, *, default: bool = False) -> bool:
        """Ask yes/no on a TTY; without one the answer is the default (never blocks CI)."""
        if not self.interactive:
            return default
        self.stdout.write(f"{question} [{'Y/n' if default else 'y/N'}] ")
        self.stdout.flush()
        answer = self.stdin.readline().strip().lower()
        if not answer:
            return default
        return answer in ("y", "yes")
