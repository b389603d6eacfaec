"""Progress for long steps: a spinner on a terminal, one plain line elsewhere, nothing with -q.

A `Step` wraps work that takes a while (an image pull, the first sync, loading firewall
rules). Where the output is not a terminal it prints exactly the `→ text` line the step
always printed (logs, CI and tests grep those). On a terminal it shows a spinner with the
elapsed time while the work runs, then leaves one line: `✓ text (1.2s)`, or `✗ text` when the
work raised. `rich` is imported only then: never for plain output, never on `alca run`.

Only wrap work whose child processes are captured: a spinner over a program that writes to
the terminal itself (`commands.up`, hooks) would garble both.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from rich.live import Live

#: Terminals that cannot move the cursor (rich calls an unset-but-unknown one "unknown").
DUMB_TERMINALS = ("dumb", "unknown")
REFRESH_PER_SECOND = 10


def animated(stream: TextIO, environ: Mapping[str, str]) -> bool:
    """Whether a spinner may be drawn on `stream`: a terminal that can redraw a line.

    `ALCA_DEBUG` logs every command on stderr as it runs; those lines and a spinner on the
    same terminal would overwrite each other, so debugging gets the plain lines.
    """
    if environ.get("TERM", "").lower() in DUMB_TERMINALS:
        return False
    if environ.get("ALCA_DEBUG", "") not in ("", "0"):
        return False
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def elapsed_text(seconds: float) -> str:
    """`0.4s`, `12.0s`, `2m05s`."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s"


def finished_text(text: str) -> str:
    """The step as a finished fact: `Waiting for file sync to complete` (no trailing dots)."""
    return text.rstrip(".…").rstrip() or text


class Step:
    """One long step, as a context manager; re-raises whatever the work raised."""

    def __init__(
        self,
        stream: TextIO,
        text: str,
        *,
        quiet: bool = False,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.text = text
        self.quiet = quiet
        self.environ: Mapping[str, str] = environ if environ is not None else {}
        self.clock = clock
        self.started_at = 0.0
        self._live: Live | None = None
        # NO_COLOR: no colour and no other text attributes either (dim, bold); the spinner stays.
        self._plain = bool(self.environ.get("NO_COLOR"))

    @property
    def live(self) -> bool:
        """Whether a spinner is on the screen right now."""
        return self._live is not None and self._live.is_started

    # -- context manager --------------------------------------------------------------------
    def __enter__(self) -> Step:
        self.started_at = self.clock()
        if self.quiet:
            return self
        if not animated(self.stream, self.environ):
            self.stream.write(f"→ {self.text}\n")
            self.stream.flush()
            return self
        self.stream.flush()  # earlier plain lines first
        self._live = self._make_live()
        self._live.start(refresh=True)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        live, self._live = self._live, None
        if live is None:
            return
        try:
            live.stop()  # the spinner line is erased and the cursor shown again
        finally:
            self._print_result(live, exc_type)

    # -- while it runs ----------------------------------------------------------------------
    @contextmanager
    def paused(self) -> Iterator[None]:
        """Take the spinner off the screen while something else writes to the terminal."""
        live = self._live
        if live is None or not live.is_started:
            yield
            return
        live.stop()
        try:
            yield
        finally:
            if self._live is live:
                live.start(refresh=True)

    # -- rich (imported here only) ----------------------------------------------------------
    def _make_live(self) -> Live:
        from rich.console import Console
        from rich.live import Live
        from rich.spinner import Spinner
        from rich.text import Text

        console = Console(
            file=self.stream,
            force_terminal=True,  # `animated` decided; rich need not guess again
            no_color=self._plain,
            highlight=False,
            markup=False,
            emoji=False,
            soft_wrap=True,
            _environ=dict(self.environ),
        )
        spinner = Spinner("dots", style=self._style("cyan"))

        def render() -> Any:
            elapsed = elapsed_text(self.clock() - self.started_at)
            line = Text.assemble(f"{self.text} ", (f"({elapsed})", self._style("dim")))
            line.no_wrap, line.overflow = True, "ellipsis"
            spinner.update(text=line)
            return spinner

        return Live(
            console=console,
            get_renderable=render,
            refresh_per_second=REFRESH_PER_SECOND,
            transient=True,
            redirect_stdout=False,  # alcatraz writes through App, which pauses the spinner
            redirect_stderr=False,
        )

    def _print_result(self, live: Live, exc_type: type[BaseException] | None) -> None:
        from rich.text import Text

        text = finished_text(self.text)
        dim = self._style("dim")
        if exc_type is None:
            elapsed = elapsed_text(self.clock() - self.started_at)
            line = Text.assemble(("✓", self._style("green")), f" {text} ", (f"({elapsed})", dim))
        elif issubclass(exc_type, KeyboardInterrupt):
            line = Text.assemble(("✗", self._style("red")), f" {text} ", ("(interrupted)", dim))
        else:
            line = Text.assemble(("✗", self._style("red")), f" {text}")
        live.console.print(line)
        self.stream.flush()

    def _style(self, name: str) -> str:
        return "" if self._plain else name
