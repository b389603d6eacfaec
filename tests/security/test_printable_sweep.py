"""Hostile text never reaches the terminal raw, through every command (issue 13, item 5).

The agent controls names and bytes the host shows: file names in the project (an include
file, a sync conflict, a path Mutagen cannot carry), config values in a file it wrote, the
output of a setup command whose programs it replaced. The project's own directory carries
the same characters (a project the agent created inside another one). Every command a user
runs against such a project (`trust`, `up` on a terminal, `status`, `list`, `net log`,
`doctor`, `sync check`, `run`'s conflict banner, errors) must show them escaped (and
`net log` the names the sandbox queried, from the egress daemon's events): no ESC,
BEL, C1 control, bidi override, stray carriage return or non-UTF-8 byte in its output, and
the escaped form where the name is shown (so the check cannot pass by printing nothing).

Docker and Podman, each with a bind-mounted and a synced workspace.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from alcatraz.printable import printable
from tests.integration.conftest import engine_problem
from tests.integration.lifecycle.helpers import engine_cli
from tests.integration.sync_helpers import (
    WORKSPACE_MODES,
    SyncProject,
    SyncWorkspace,
    config,
    write,
)

pytestmark = pytest.mark.integration


#: In the project directory's name: conceal, a terminal title (OSC ... BEL), a bidi
#: override and a carriage return.
NAME = "\x1b[8m\x1b]0;PWN\x07\u202e\r"
#: Never in any output, as raw bytes (a CR is checked separately: a pty adds its own).
RAW = (b"\x1b[8m", b"\x1b]0;", b"\x07", "\u202e".encode(), b"\x9b", b"\xff")
#: What the setup command prints (the agent can replace any program it runs).
SETUP_OUTPUT = r"setup\033]0;PWN\007\302\233\342\200\256\r\377\n"
SETUP_SHOWN = "setup\\x1b]0;PWN\\x07\\x9b\\u202e\\r\\xff"
HOSTILE_VALUE = r'"v\u001b]0;PWN\u0007\u202e"'  # TOML escapes
CONFLICT = "c\x1b]0;PWN\x07\u202e"
TTY_TIMEOUT = 240.0


def alca_bytes(project: SyncProject, *args: str, cwd: Path | None = None) -> tuple[int, bytes]:
    """`alca args`, stdout and stderr as bytes (text mode would hide a CR)."""
    done = subprocess.run(
        [project.workspace.alca, *args],
        cwd=cwd or project.root,
        env=project.workspace.env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=180,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


def alca_on_a_terminal(project: SyncProject, *args: str) -> tuple[int, bytes]:
    """`alca args` with stdin, stdout and stderr on a pseudo-terminal (spinners on)."""
    leader, follower = os.openpty()
    env = project.workspace.env()
    env.pop("NO_COLOR", None)
    child = subprocess.Popen(
        [project.workspace.alca, *args],
        cwd=project.root,
        env=env,
        stdin=follower,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    output = b""
    deadline = time.monotonic() + TTY_TIMEOUT
    try:
        # Until alca exits: a daemon it started (Mutagen's) may hold the terminal open.
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                output += chunk
            elif child.poll() is not None:
                break
        else:
            child.kill()
            pytest.fail(f"alca {' '.join(args)} did not finish on a terminal:\n{output!r}")
    finally:
        os.close(leader)
    return child.wait(timeout=30), output


class Screen:
    """Collects every command's output and what was wrong with it."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def check(
        self,
        what: str,
        outcome: tuple[int, bytes],
        *,
        shown: tuple[str, ...] = (),
        tty: bool = False,
    ) -> bytes:
        code, output = outcome
        raw = [marker for marker in RAW if marker in output]
        if not tty and b"\r" in output:
            raw.append(b"\r")
        if raw:
            self.problems.append(f"{what} (exit {code}): raw {raw} in {output!r}")
        if b"Traceback" in output:
            self.problems.append(f"{what} (exit {code}): a traceback: {output!r}")
        for text in shown:
            if text.encode() not in output:
                self.problems.append(f"{what} (exit {code}): {text!r} not shown in {output!r}")
        return output


def make_conflict(project: SyncProject, name: str) -> None:
    """`name` changed on both sides while the session is paused (argv, never a shell line)."""
    write(project.root, {name: "base"})
    project.flush()
    project.pause(0)
    (project.root / name).write_text("host")
    inside = [
        "exec",
        project.container,
        "sh",
        "-c",
        'printf ctr > "$1"',
        "sh",
        f"/workspace/{name}",
    ]
    assert engine_cli(project.engine, *inside).returncode == 0
    project.resume(0)
    project.flush()


@pytest.fixture(params=WORKSPACE_MODES)
def workspace(request: pytest.FixtureRequest) -> Iterator[tuple[SyncWorkspace, str]]:
    engine, mode = request.param
    problem = engine_problem(engine)
    if problem:
        pytest.skip(problem)
    ws = SyncWorkspace(engine)
    try:
        yield ws, mode
    finally:
        ws.cleanup()


def test_hostile_text_reaches_no_terminal_raw(workspace: tuple[SyncWorkspace, str]) -> None:
    ws, mode = workspace
    text = config(ws.engine, exclude='["**/.env"]' if mode == "sync" else "", up="")
    # a TOML literal string: the shell gets the backslashes, printf turns them into bytes
    setup = f"includes = [\"./.alca.*.toml\"]\n\n[commands]\nup = '''printf \"{SETUP_OUTPUT}\"'''\n"
    text = text.replace("\n[network]", setup + "\n[network]")
    project = ws.project(f"sweep-{NAME}", text)
    screen = Screen()
    name_shown = printable(NAME)

    # errors: an include whose name is not UTF-8 (and holds an escape) is refused by name
    bad = os.path.join(os.fsencode(project.root), b".alca.x\x1b]0;PWN\x07\xff.toml")
    with open(bad, "w") as handle:
        handle.write("[envs]\nA = 1\n")
    refused = alca_bytes(project, "trust")
    assert refused[0] == 78, refused
    screen.check("trust, hostile include name", refused, shown=(".alca.x\\x1b]0;PWN\\x07\\xff",))
    os.unlink(bad)

    # trust: the diff shows the project path and the include's value escaped
    write(project.root, {".alca.hostile.toml": f"[envs]\nHOSTILE = {HOSTILE_VALUE}\n"})
    unapproved = alca_bytes(project, "trust")
    assert unapproved[0] == 77, unapproved
    screen.check("trust", unapproved, shown=(name_shown, "v\\u001b]0;PWN"))
    screen.check("trust --yes", alca_bytes(project, "trust", "--yes"))

    # up on a terminal: the setup command's output, streamed, comes out escaped
    up = alca_on_a_terminal(project, "up")
    assert up[0] == 0, up
    screen.check("up on a terminal", up, shown=(SETUP_SHOWN,), tty=True)

    if mode == "sync":
        make_conflict(project, CONFLICT)
        inside = ["exec", project.container, "sh", "-c", 'printf x > "$(printf "$1")"', "sh"]
        assert (
            engine_cli(ws.engine, *inside, "/workspace/skip\\377\\033]0;PWN\\007").returncode == 0
        )
        project.flush()
        conflict_shown = ("c\\x1b]0;PWN\\x07\\u202e",)
        screen.check(
            "sync check", alca_bytes(project, "experimental", "sync", "check"), shown=conflict_shown
        )
        screen.check(
            "run (conflict banner)", alca_bytes(project, "run", "true"), shown=conflict_shown
        )
        screen.check("status (sync)", alca_bytes(project, "status"), shown=("not synced: skip",))
    else:
        screen.check("sync check", alca_bytes(project, "experimental", "sync", "check"))

    # net log: names the sandbox queried or presented reach the egress events as sent
    refused = f"evil{NAME}.test"
    events = [
        {"t": 1767225600, "kind": "dns-refused", "name": refused, "qtype": "A"},
        {
            "t": 1767225601,
            "kind": "check-refused",
            "name": refused,
            "address": "203.0.113.9",
            "port": 443,
            "why": "sni",
        },
        {"t": 1767225602, "kind": "dns-allowed", "name": refused, "addresses": ["203.0.113.9"]},
    ]
    (project.state_dir / "egress-events.jsonl").write_text(
        "".join(json.dumps(event) + "\n" for event in events)
    )
    # isolation is off in this config (lan-access = ["*"]): only --json carries the events
    refused_json = json.dumps(refused)[1:-1]

    for args, shown in (
        (("status",), (name_shown,)),
        (("status", "--json"), ()),
        (("list",), (name_shown,)),
        (("list", "--json"), ()),
        (("net", "log"), ()),
        (("net", "log", "--json"), (refused_json,)),
        (("doctor",), (name_shown,)),
    ):
        screen.check(" ".join(args), alca_bytes(project, *args), shown=shown)

    # errors: `run` outside any project names the hostile directory it started in
    elsewhere = ws.base / f"nowhere-{NAME}"
    elsewhere.mkdir()
    lost = alca_bytes(project, "run", "true", cwd=elsewhere)
    assert lost[0] == 66, lost
    screen.check("run outside a project", lost, shown=(printable(f"nowhere-{NAME}"),))

    screen.check("down", alca_bytes(project, "down", "--force"))
    assert not screen.problems, "\n".join(screen.problems)
