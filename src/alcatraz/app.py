"""The injectable environment a command runs in: streams, TTY flags, env, cwd, runner.

Commands talk to the world only through this object, so tests can swap any part of it
(a fake TTY, a temporary HOME, a recording runner) without patching globals.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from alcatraz.paths import alca_home
from alcatraz.printable import printable_lines
from alcatraz.proc import Runner, SubprocessRunner

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from alcatraz.progress import Step


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
    _step: Step | None = field(default=None, init=False, repr=False, compare=False)

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

    @property
    def facts_home(self) -> Path | None:
        """Where engine facts may be cached (`runtime.engine_facts`): the home, but None
        when the runner is a stand-in, whose answers belong to no real engine."""
        return self.home if type(self.runner) is SubprocessRunner else None

    # -- output ---------------------------------------------------------------------------
    # Every line goes through `printable_lines`: text interpolated from the workspace, the
    # engine or Mutagen can never act on the terminal (names get `printable` where built).
    def step(self, text: str) -> None:
        """A progress step (`→ `), hidden by -q."""
        if not self.quiet:
            with self._quiet_screen():
                self.stdout.write(f"→ {printable_lines(text)}\n")
                self.stdout.flush()

    @contextmanager
    def progress(self, text: str) -> Iterator[None]:
        """A long step: `→ text` without a terminal, a spinner then `✓ text (1.2s)` on one.

        Hidden by -q. Never wrap a child process that writes to the terminal itself.
        """
        from alcatraz.progress import Step

        if self._step is not None:  # nested: the outer spinner already shows activity
            self.step(text)
            yield
            return
        step = Step(self.stdout, printable_lines(text), quiet=self.quiet, environ=self.environ)
        self._step = step
        try:
            with step:
                yield
        finally:
            self._step = None

    def done(self, text: str) -> None:
        """A completion line (`✓ `), hidden by -q."""
        if not self.quiet:
            with self._quiet_screen():
                self.stdout.write(f"✓ {printable_lines(text)}\n")
                self.stdout.flush()

    def out(self, text: str = "") -> None:
        """Regular output (the answer the user asked for); not hidden by -q."""
        with self._quiet_screen():
            self.stdout.write(printable_lines(text) + "\n")

    def info(self, text: str = "") -> None:
        """Informational output, hidden by -q."""
        if not self.quiet:
            with self._quiet_screen():
                self.stdout.write(printable_lines(text) + "\n")

    def write(self, text: str) -> None:
        """Part of a line on stdout (a prompt, `Removing x... ` before its result)."""
        with self._quiet_screen():
            self.stdout.write(printable_lines(text))
            self.stdout.flush()

    def err(self, text: str) -> None:
        """A line on stderr without a prefix (diffs, banners, counts), not hidden by -q."""
        with self._quiet_screen():
            self.stderr.write(printable_lines(text) + "\n")
            self.stderr.flush()

    def warn(self, text: str) -> None:
        with self._quiet_screen():
            self.stderr.write(f"Warning: {printable_lines(text)}\n")
            self.stderr.flush()

    def _quiet_screen(self) -> AbstractContextManager[None]:
        """Lift a running spinner off the terminal while a line is written."""
        if self._step is None:
            return nullcontext()
        return self._step.paused()

    def confirm(self, question: str, *, default: bool = False) -> bool:
        """Ask yes/no on a TTY; without one the answer is the default (never blocks CI)."""
        if not self.interactive:
            return default
        with self._quiet_screen():
            self.stdout.write(f"{printable_lines(question)} [{'Y/n' if default else 'y/N'}] ")
            self.stdout.flush()
            answer = self.stdin.readline().strip().lower()
        if not answer:
            return default
        return answer in ("y", "yes")
