"""Progress for long steps: a spinner on a terminal, the plain `→` line elsewhere, none with -q."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import threading
import time

import pytest

from alcatraz.app import App
from alcatraz.progress import Step, animated, elapsed_text, finished_text
from tests.fakes import FakeClock, FakeTTY, make_app

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
HIDE_CURSOR = "\x1b[?25l"
SHOW_CURSOR = "\x1b[?25h"
TERMINAL = {"TERM": "xterm-256color"}


def visible(raw: str) -> list[str]:
    """What stays on the screen, roughly: escape codes removed, the last redraw of each line."""
    lines = []
    for line in ANSI.sub("", raw).split("\n"):
        lines.append(line.split("\r")[-1])
    return [line for line in lines if line.strip()]


def app_for(stdout: io.StringIO, *, quiet: bool = False, **environ: str) -> App:
    return make_app(stdout=stdout, environ=environ, quiet=quiet)


def no_spinner_threads() -> bool:
    """rich's refresh thread ends when the spinner stops (give it a moment to exit)."""
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        if not any(type(t).__name__ == "_RefreshThread" for t in threading.enumerate()):
            return True
        time.sleep(0.02)
    return False


# --- helpers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0.0s"), (0.04, "0.0s"), (1.25, "1.2s"), (59.9, "59.9s"), (60, "1m00s"), (125.7, "2m05s")],
)
def test_elapsed_text(seconds: float, text: str) -> None:
    assert elapsed_text(seconds) == text


@pytest.mark.parametrize(
    ("text", "finished"),
    [
        ("Waiting for file sync to complete...", "Waiting for file sync to complete"),
        ("Stopping container…", "Stopping container"),
        ("Creating container: alca-1", "Creating container: alca-1"),
        ("...", "..."),
    ],
)
def test_finished_text(text: str, finished: str) -> None:
    assert finished_text(text) == finished


@pytest.mark.parametrize(
    ("environ", "tty", "expected"),
    [
        ({"TERM": "xterm"}, True, True),
        ({}, True, True),  # no TERM at all (e.g. under a bare pty) is not "dumb"
        ({"TERM": "dumb"}, True, False),
        ({"TERM": "unknown"}, True, False),
        ({"TERM": "xterm", "ALCA_DEBUG": "1"}, True, False),
        ({"TERM": "xterm", "ALCA_DEBUG": "0"}, True, True),
        ({"TERM": "xterm", "NO_COLOR": "1", "CI": "true"}, True, True),
        ({"TERM": "xterm"}, False, False),
    ],
)
def test_animated_only_on_a_capable_terminal(
    environ: dict[str, str], tty: bool, expected: bool
) -> None:
    stream = FakeTTY() if tty else io.StringIO()
    assert animated(stream, environ) is expected


def test_a_closed_or_odd_stream_is_not_a_terminal() -> None:
    closed = io.StringIO()
    closed.close()
    assert animated(closed, TERMINAL) is False
    assert animated(object(), TERMINAL) is False  # type: ignore[arg-type]


# --- without a terminal: exactly the old lines ---------------------------------------------------


def test_plain_output_is_the_old_step_line() -> None:
    out = io.StringIO()
    app = app_for(out, **TERMINAL)
    app.step("Detecting runtime...")
    with app.progress("Creating container: alca-abc"):
        pass
    app.step("Container started")
    app.done("Environment ready")
    assert out.getvalue() == (
        "→ Detecting runtime...\n"
        "→ Creating container: alca-abc\n"
        "→ Container started\n"
        "✓ Environment ready\n"
    )


def test_plain_output_is_written_before_the_work_starts() -> None:
    out = io.StringIO()
    app = app_for(out)
    with app.progress("Waiting for file sync to complete..."):
        seen_during = out.getvalue()
    assert seen_during == "→ Waiting for file sync to complete...\n"
    assert out.getvalue() == seen_during  # nothing is added at the end


def test_plain_output_on_error_adds_nothing_and_reraises() -> None:
    out = io.StringIO()
    app = app_for(out)
    with pytest.raises(RuntimeError, match="pull failed"), app.progress("Creating container: c"):
        raise RuntimeError("pull failed")
    assert out.getvalue() == "→ Creating container: c\n"
    assert app._step is None


@pytest.mark.parametrize("env", [{"TERM": "dumb"}, {"TERM": "xterm", "ALCA_DEBUG": "1"}])
def test_terminal_that_cannot_animate_gets_plain_lines(env: dict[str, str]) -> None:
    out = FakeTTY()
    with app_for(out, **env).progress("Applying network isolation rules..."):
        pass
    assert out.getvalue() == "→ Applying network isolation rules...\n"


# --- quiet: nothing at all --------------------------------------------------------------------


@pytest.mark.parametrize("stream", [io.StringIO, FakeTTY])
def test_quiet_prints_nothing(stream: type[io.StringIO]) -> None:
    out = stream()
    app = app_for(out, quiet=True, **TERMINAL)
    with app.progress("Creating container: c"):
        app.step("inside")
    with pytest.raises(ValueError), app.progress("Stopping container..."):
        raise ValueError("boom")
    assert out.getvalue() == ""


# --- on a terminal: a spinner, then one final line ------------------------------------------------


def test_terminal_shows_spinner_then_final_line_with_elapsed_time() -> None:
    out = FakeTTY()
    clock = FakeClock(now=1000.0)  # the spinner's thread only reads it
    step = Step(out, "Creating container: alca-abc", environ=TERMINAL, clock=clock)
    with step:
        assert step.live
        clock.now += 1.25
        time.sleep(0.25)  # a few redraws
        during = out.getvalue()
    raw = out.getvalue()
    assert not step.live
    assert "→" not in raw  # the spinner replaces the plain line
    assert during.startswith(HIDE_CURSOR)
    assert "Creating container: alca-abc (" in ANSI.sub("", during)
    assert "\r\x1b[2K" in raw  # the spinner line is redrawn in place
    assert raw.rfind(SHOW_CURSOR) > raw.rfind(HIDE_CURSOR)  # the cursor is back
    assert visible(raw)[-1] == "✓ Creating container: alca-abc (1.2s)"
    assert raw.endswith("\n")
    assert "\x1b[32m✓" in raw  # green, since NO_COLOR is not set
    assert no_spinner_threads()


def test_spinner_frames_animate() -> None:
    out = FakeTTY()
    with Step(out, "Waiting for file sync to complete...", environ=TERMINAL):
        time.sleep(0.5)
    shown = ANSI.sub("", out.getvalue())
    frames = set(re.findall(r"([\u2800-\u28ff]) Waiting for file sync", shown))
    assert len(frames) >= 2, out.getvalue()
    assert visible(out.getvalue())[-1].startswith("✓ Waiting for file sync to complete (")


def test_no_color_keeps_the_spinner_but_drops_colour() -> None:
    out = FakeTTY()
    with Step(out, "Creating network: n", environ={**TERMINAL, "NO_COLOR": "1"}):
        time.sleep(0.15)
    raw = out.getvalue()
    assert HIDE_CURSOR in raw
    assert SHOW_CURSOR in raw
    assert not re.search(r"\x1b\[[0-9;]*m", raw), repr(raw)  # no SGR colour codes
    assert visible(raw)[-1].startswith("✓ Creating network: n (")


def test_terminal_error_leaves_a_cross_and_reraises() -> None:
    out = FakeTTY()
    app = app_for(out, **TERMINAL)
    with pytest.raises(RuntimeError, match="no such image"), app.progress("Creating container: c"):
        time.sleep(0.05)
        raise RuntimeError("no such image")
    raw = out.getvalue()
    assert visible(raw)[-1] == "✗ Creating container: c"
    assert "✓" not in raw
    assert raw.rfind(SHOW_CURSOR) > raw.rfind(HIDE_CURSOR)
    assert app._step is None
    assert no_spinner_threads()


def test_keyboard_interrupt_stops_the_spinner_and_restores_the_cursor() -> None:
    out = FakeTTY()
    app = app_for(out, **TERMINAL)
    with pytest.raises(KeyboardInterrupt), app.progress("Waiting for file sync to complete..."):
        time.sleep(0.05)
        raise KeyboardInterrupt
    raw = out.getvalue()
    assert visible(raw)[-1] == "✗ Waiting for file sync to complete (interrupted)"
    assert raw.rfind(SHOW_CURSOR) > raw.rfind(HIDE_CURSOR)
    assert no_spinner_threads()
    # The app is usable afterwards, with plain lines again outside a step.
    app.step("next")
    assert out.getvalue().endswith("→ next\n")


def test_lines_written_during_a_step_appear_above_the_spinner() -> None:
    out = FakeTTY()
    err = io.StringIO()
    app = make_app(stdout=out, stderr=err, environ=TERMINAL)
    at_warning: list[str] = []

    class Recording(io.StringIO):
        def write(self, text: str) -> int:
            at_warning.append(out.getvalue())
            return super().write(text)

    app.stderr = Recording()
    with app.progress("Stopping container..."):
        time.sleep(0.05)
        app.warn("could not remove the firewall rules")
        app.step("This directory replaced the sandbox's original one")
    raw = out.getvalue()
    # The spinner was taken off the screen (cursor shown again) before the warning.
    before = at_warning[0]
    assert before.rfind(SHOW_CURSOR) > before.rfind(HIDE_CURSOR)
    assert app.stderr.getvalue() == "Warning: could not remove the firewall rules\n"
    screen = visible(raw)
    assert "→ This directory replaced the sandbox's original one" in screen
    assert screen[-1].startswith("✓ Stopping container (")
    assert no_spinner_threads()


def test_nested_progress_is_a_plain_step_inside_the_outer_one() -> None:
    out = io.StringIO()
    app = app_for(out)
    with app.progress("outer"), app.progress("inner"):
        pass
    assert out.getvalue() == "→ outer\n→ inner\n"

    tty = FakeTTY()
    app = app_for(tty, **TERMINAL)
    with app.progress("outer"), app.progress("inner"):
        time.sleep(0.05)
    screen = visible(tty.getvalue())
    assert "→ inner" in screen
    assert screen[-1].startswith("✓ outer (")


def test_a_prompt_during_a_step_is_shown_without_the_spinner() -> None:
    out = FakeTTY()
    app = make_app(stdin=FakeTTY("y\n"), stdout=out, environ=TERMINAL)
    with app.progress("Applying network isolation rules..."):
        assert app.confirm("Install now?") is True
    assert "Install now? [y/N] " in ANSI.sub("", out.getvalue())


# --- rich is imported only for a spinner ------------------------------------------------------


def _modules_loaded_by(code: str) -> list[str]:
    probe = (
        "import io, json, sys\n"
        "from alcatraz.app import App\n"
        f"{code}\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'rich')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    loaded: list[str] = json.loads(done.stdout.splitlines()[-1])
    return loaded


def test_plain_and_quiet_output_never_import_rich() -> None:
    plain = (
        "app = App(stdout=io.StringIO(), environ={'TERM': 'xterm'})\n"
        "with app.progress('x'): pass\n"
        "quiet = App(stdout=io.StringIO(), environ={'TERM': 'xterm'}, quiet=True)\n"
        "with quiet.progress('x'): pass\n"
    )
    assert _modules_loaded_by(plain) == []


def test_a_terminal_imports_rich() -> None:
    tty = (
        "class T(io.StringIO):\n"
        "    def isatty(self): return True\n"
        "app = App(stdout=T(), environ={'TERM': 'xterm'})\n"
        "with app.progress('x'): pass\n"
    )
    assert "rich.live" in _modules_loaded_by(tty)
