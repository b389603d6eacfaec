"""Progress output of the real `alca up` / `alca down`, on a terminal and without one.

On a pseudo-terminal the long steps (network, rules, container creation, stopping) show a
spinner and end as `✓ text (1.2s)`; through pipes the output is the plain `→` lines it always
was, with no escape sequence; with -q there are no step lines at all. A tmux pane checks the
screen a person is left with: finished lines only, no spinner frame left behind.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import shlex
import shutil
import struct
import subprocess
import termios
import time
import uuid
from dataclasses import dataclass

import pytest

from tests.integration.lifecycle.helpers import (
    ALCA,
    COMMAND_TIMEOUT,
    IMAGE,
    Project,
    Projects,
    config_text,
)

pytestmark = pytest.mark.integration

ESCAPE = "\x1b"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
SGR = re.compile(r"\x1b\[[0-9;]*m")
HIDE_CURSOR = "\x1b[?25l"
SHOW_CURSOR = "\x1b[?25h"
REDRAW_LINE = "\r\x1b[2K"
SPINNER_FRAME = re.compile(r"^[\u2800-\u28ff] (?P<text>.+) \(\d+(\.\d)?s\)$")
ELAPSED = r"\(\d+\.\ds\)"
COLUMNS, ROWS = 120, 40


@dataclass(frozen=True)
class Screen:
    """What a terminal received from one `alca` command (stdout and stderr together)."""

    returncode: int
    raw: str

    @property
    def lines(self) -> list[str]:
        """Every line drawn, escape codes removed; a line redrawn in place counts each time."""
        text = ANSI.sub("", self.raw.replace("\r\n", "\n"))
        return [part for line in text.split("\n") for part in line.split("\r") if part.strip()]

    def frames(self, text: str) -> list[str]:
        return [
            line
            for line in self.lines
            if (match := SPINNER_FRAME.match(line)) and match["text"] == text
        ]


def on_terminal(project: Project, *args: str, timeout: float = COMMAND_TIMEOUT) -> Screen:
    """Run `alca args` with stdin, stdout and stderr on a pseudo-terminal; read what it drew.

    (`helpers.run_alca` puts only stdin on a terminal and captures the output through pipes,
    which is the non-terminal case.)
    """
    leader, follower = os.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
    try:
        process = subprocess.Popen(
            [*ALCA, *args],
            cwd=project.root,
            env=project.env(TERM="xterm-256color"),
            stdin=follower,
            stdout=follower,
            stderr=follower,
            start_new_session=True,  # the pty becomes its controlling terminal, as in a shell
        )
    finally:
        os.close(follower)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.5)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: every writer has closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        else:
            process.kill()
            raise AssertionError(f"alca {' '.join(args)} did not finish in {timeout}s")
        returncode = process.wait(timeout=30)
    finally:
        os.close(leader)
    return Screen(returncode, b"".join(chunks).decode(errors="replace"))


def assert_cursor_restored(screen: Screen) -> None:
    assert screen.raw.count(HIDE_CURSOR) >= 1, screen.raw
    assert screen.raw.rfind(SHOW_CURSOR) > screen.raw.rfind(HIDE_CURSOR), screen.raw


def network_line(lines: list[str], prefix: str) -> str:
    found = [line for line in lines if line.startswith(prefix)]
    assert len(found) == 1, lines
    return found[0]


# --- on a terminal -------------------------------------------------------------------------------


def test_terminal_shows_spinners_and_timed_finished_lines(projects: Projects) -> None:
    project = projects.new(config=config_text(projects.engine))
    up = on_terminal(project, "up", "--yes")
    assert up.returncode == 0, up.raw
    name = project.container_name
    creating = f"Creating container: {name}"

    assert_cursor_restored(up)
    assert REDRAW_LINE in up.raw
    assert up.frames(creating), up.lines  # the spinner, with the elapsed time
    assert any(re.fullmatch(rf"✓ {re.escape(creating)} {ELAPSED}", line) for line in up.lines)
    network = network_line(up.lines, "✓ Creating network: ")
    assert re.fullmatch(rf"✓ Creating network: alca-\S+ \(\S+\) {ELAPSED}", network)
    assert any(re.fullmatch(rf"✓ Registering the network \(LAN access allowed\) {ELAPSED}", line)
               for line in up.lines)  # fmt: skip
    assert f"→ {creating}" not in up.lines  # the spinner replaced the plain line
    assert "→ Container started" in up.lines  # short steps keep their plain line
    assert up.lines[-1] == "✓ Environment ready"
    assert not SGR.search(up.raw), "NO_COLOR is set: no colour codes"
    assert project.container_running()

    down = on_terminal(project, "down")
    assert down.returncode == 0, down.raw
    assert_cursor_restored(down)
    assert down.frames("Stopping container...")
    assert any(re.fullmatch(rf"✓ Stopping container {ELAPSED}", line) for line in down.lines)
    assert "→ Stopping container..." not in down.lines
    assert down.lines[-1] == "✓ Container stopped"
    assert project.inspect() is None


def test_without_a_terminal_the_lines_are_plain(projects: Projects) -> None:
    project = projects.new(config=config_text(projects.engine))
    up = project.ok("up", "--yes")  # stdin, stdout and stderr are pipes
    name = project.container_name
    assert ESCAPE not in up.output
    assert not re.search(r"[\u2800-\u28ff]", up.output)
    steps = up.progress_lines
    network = network_line(steps, "→ Creating network: ")
    assert re.fullmatch(r"→ Creating network: alca-\S+ \(\S+\)", network)
    expected_order = [
        network,
        "→ Registering the network (LAN access allowed)...",
        f"→ Creating container: {name}",
        "→ Container started",
        "✓ Environment ready",
    ]
    assert [line for line in steps if line in expected_order] == expected_order, steps
    assert not any(re.search(ELAPSED, line) for line in steps), steps  # nothing added

    down = project.ok("down")
    assert ESCAPE not in down.output
    assert down.progress_lines[-2:] == ["→ Stopping container...", "✓ Container stopped"]

    # Stopped container, started again: its own plain line.
    project.ok("up", "--yes")
    subprocess.run([project.engine, "stop", name], capture_output=True, timeout=60, check=True)
    started = project.ok("up")
    assert f"→ Starting stopped container: {name}" in started.progress_lines
    assert ESCAPE not in started.output


def test_quiet_shows_no_steps_even_on_a_terminal(projects: Projects) -> None:
    project = projects.new(config=config_text(projects.engine))
    project.approve()
    up = on_terminal(project, "up", "-q")
    assert up.returncode == 0, up.raw
    assert project.container_running()
    assert HIDE_CURSOR not in up.raw
    assert not any(line.startswith(("→", "✓", "✗")) for line in up.lines), up.lines
    assert not re.search(r"[\u2800-\u28ff]", up.raw)

    down = on_terminal(project, "down", "-q")
    assert down.returncode == 0, down.raw
    assert down.raw == ""
    assert project.inspect() is None

    piped = project.ok("up", "-q")
    assert piped.progress_lines == []
    assert ESCAPE not in piped.output


def test_a_failed_step_on_a_terminal_ends_with_a_cross(projects: Projects) -> None:
    project = projects.new(config=config_text(projects.engine))
    project.write_config(config_text(projects.engine).replace(IMAGE, "localhost/alca-none:x"))
    project.approve()
    failed = on_terminal(project, "up")
    assert failed.returncode != 0
    creating = f"Creating container: {project.container_name}"
    assert_cursor_restored(failed)
    assert f"✗ {creating}" in failed.lines, failed.lines
    assert not any(line.startswith(f"✓ {creating}") for line in failed.lines)


# --- the screen left behind, in a real terminal emulator ----------------------------------------


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_tmux_screen_keeps_only_finished_lines(projects: Projects) -> None:
    project = projects.new(config=config_text(projects.engine))
    project.approve()
    socket = f"alca-progress-{uuid.uuid4().hex[:8]}"  # a private tmux server, ended below
    tmux = ["tmux", "-L", socket, "-f", "/dev/null"]
    command = shlex.join([*ALCA, "up"]) + "; echo ALCA-EXIT=$?; sleep 300"
    env = project.env()
    subprocess.run(
        [*tmux, "new-session", "-d", "-s", "p", "-x", str(COLUMNS), "-y", str(ROWS),
         "-c", str(project.root), command],
        env=env, check=True, timeout=30,
    )  # fmt: skip
    try:
        screen = ""
        deadline = time.monotonic() + COMMAND_TIMEOUT
        while time.monotonic() < deadline and "ALCA-EXIT=" not in screen:
            time.sleep(0.3)
            screen = subprocess.run(
                [*tmux, "capture-pane", "-p", "-J", "-t", "p"],
                capture_output=True, text=True, check=True, timeout=30,
            ).stdout  # fmt: skip
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True, timeout=30, check=False)
    lines = [line.rstrip() for line in screen.splitlines() if line.strip()]
    assert "ALCA-EXIT=0" in lines, screen
    name = project.container_name
    assert any(
        re.fullmatch(rf"✓ Creating container: {re.escape(name)} {ELAPSED}", line) for line in lines
    ), screen
    assert not any(re.match(r"[\u2800-\u28ff] ", line) for line in lines), screen  # no leftovers
    assert lines[lines.index("ALCA-EXIT=0") - 1] == "✓ Environment ready", screen
