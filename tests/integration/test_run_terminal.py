"""`alca run` behaves as the engine's own `exec -i[t]` does (issue 17), on both of its paths.

Every case runs on Docker and Podman, and on both ways `alca run` can reach the engine: the
default (its API when `up` found a socket that answers) and the CLI forced with
`ALCA_ENGINE_API=cli`. Where it makes sense the same command also runs through
`<engine> exec -i[t]` and the two must agree. Terminal cases run on a real pty that is the
command's controlling terminal: window size and resize (SIGWINCH), Ctrl-C, Ctrl-Z, raw
mode while the command runs and the modes restored after, stdin EOF. Without a terminal:
exit statuses, 10 MiB of binary output and of stdin byte for byte, stdout and stderr apart,
a reader that stops early. `ALCA_DEBUG=1` must name the path taken, and an unknown
`ALCA_ENGINE_API` value is a usage error. One sandbox per engine serves the whole module.
"""

from __future__ import annotations

import functools
import hashlib
import os
import subprocess
from collections.abc import Iterator

import pytest

from alcatraz.runtime.cli_compat import CliRuntime
from tests.integration.lifecycle.helpers import Project, Projects, config_text
from tests.integration.run_terminal_helpers import (
    COLUMNS,
    ROWS,
    SETTLED_SIZE,
    WAIT_FOR_Q,
    PtyResult,
    Step,
    Way,
    alca_way,
    api_answers,
    engine_way,
    is_raw,
    on_pty,
    piped,
    resizing,
    run_way,
    typing,
)

pytestmark = pytest.mark.integration

BLOB_SIZE = 10 * 1024 * 1024
EXIT_CASES = {
    "true": (["true"], 0),
    "false": (["sh", "-c", "exit 1"], 1),
    "not-executable": (["sh", "-c", "/etc/passwd"], 126),
    "missing": (["sh", "-c", "no-such-command-here"], 127),
    "sigint": (["sh", "-c", "kill -INT $$"], 130),
    "sigkill": (["sh", "-c", "kill -9 $$"], 137),
}
"""Statuses a shell reports, the same whatever starts it."""

DIRECT_CASES = {"missing": ["no-such-command-here"], "not-executable": ["/etc/passwd"]}
"""Failures of the exec itself; each engine has its own status (Docker 20.10 reports 126 for
a missing command, Podman 127), which `alca run` must pass on unchanged."""


@pytest.fixture(scope="module")
def sandbox(engine: CliRuntime) -> Iterator[Project]:
    """One running sandbox per engine for the module (isolation off: not what is tested)."""
    made = Projects(engine.executable)
    try:
        project = made.new("run", config=config_text(engine.executable))
        project.start()
        yield project
    finally:
        made.cleanup()


@pytest.fixture(params=["api", "cli"], ids=["default-path", "forced-cli"])
def alca(request: pytest.FixtureRequest, sandbox: Project) -> Way:
    return alca_way(sandbox, request.param)


@functools.cache
def engine_status(project: Project, command: tuple[str, ...], tty: bool) -> int:
    """The engine's own exit status for a command (asked once per sandbox and mode)."""
    return run_way(engine_way(project), project, command, tty)


def pty_run(way: Way, project: Project, command: list[str], *steps: Step) -> PtyResult:
    return on_pty(way.argv(command, True), cwd=project.root, env=way.env, steps=steps)


def both_on_pty(
    alca: Way, project: Project, command: list[str], *steps: Step
) -> tuple[PtyResult, PtyResult]:
    """The same command and keystrokes through `alca run` and through the engine's exec."""
    mine = pty_run(alca, project, command, *steps)
    theirs = pty_run(engine_way(project), project, command, *steps)
    return mine, theirs


# --- the path taken ------------------------------------------------------------------------------


def test_debug_names_the_path_taken(alca: Way, sandbox: Project) -> None:
    """API by default when the engine's socket answers; the CLI when forced (or no socket)."""
    done = piped(alca.argv(["true"], False), cwd=sandbox.root, env={**alca.env, "ALCA_DEBUG": "1"})
    assert done.returncode == 0, str(done)
    lines = done.stderr.decode(errors="replace").splitlines()
    via_api = [line for line in lines if line.startswith("→ Engine API: exec in ")]
    via_cli = [line for line in lines if line.startswith("→ Executing: ")]
    forced = alca.env.get("ALCA_ENGINE_API") == "cli"
    if not forced and api_answers(sandbox.engine, alca.env):
        assert len(via_api) == 1 and not via_cli, f"{alca.label} should use the API: {lines}"
        assert sandbox.container_name in via_api[0], lines
    else:
        assert len(via_cli) == 1 and not via_api, f"{alca.label} should exec the CLI: {lines}"
        assert f"{sandbox.engine} exec -i " in via_cli[0], lines


def test_an_unknown_engine_api_choice_is_a_usage_error(sandbox: Project) -> None:
    """`ALCA_ENGINE_API` takes auto, or 0/off/cli; anything else names the variable, runs
    nothing."""
    env = sandbox.env(ALCA_ENGINE_API="sometimes")
    done = piped(alca_way(sandbox, "api").argv(["touch", "ran"], False), cwd=sandbox.root,
                 env=env)  # fmt: skip
    assert done.returncode == 64, str(done)
    assert b"ALCA_ENGINE_API" in done.stderr
    assert not (sandbox.root / "ran").exists()
    for accepted in ("auto", "0", "off", "cli"):
        ok = piped(alca_way(sandbox, "api").argv(["true"], False), cwd=sandbox.root,
                   env=sandbox.env(ALCA_ENGINE_API=accepted))  # fmt: skip
        assert ok.returncode == 0, f"ALCA_ENGINE_API={accepted}: {ok}"


# --- on a terminal -------------------------------------------------------------------------------


def test_window_size_is_the_terminals(alca: Way, sandbox: Project) -> None:
    mine, theirs = both_on_pty(alca, sandbox, ["sh", "-c", SETTLED_SIZE])
    assert f"size={ROWS} {COLUMNS}" in mine.text, str(mine)
    assert (mine.returncode, mine.text) == (theirs.returncode, theirs.text)


def test_resize_reaches_the_command(alca: Way, sandbox: Project) -> None:
    """A resize of the outer terminal: the command gets SIGWINCH and sees the new size.

    The first resize waits until the start size has arrived inside: `docker exec -it` sets
    it (retrying) only after the start and misses a SIGWINCH that comes before that."""
    script = f"trap 'echo winch=$(stty size)' WINCH; {SETTLED_SIZE}; echo ready; {WAIT_FOR_Q}"
    steps = (
        Step(b"ready", resizing(21, 55)),
        Step(b"winch=21 55", resizing(44, 101)),
        Step(b"winch=44 101", typing(b"q\r")),
    )
    mine, theirs = both_on_pty(alca, sandbox, ["sh", "-c", script], *steps)
    assert mine.returncode == 0 == theirs.returncode, f"{mine}\n{theirs}"


def test_raw_mode_while_running_restored_after_and_eof(alca: Way, sandbox: Project) -> None:
    """Raw while the command runs (as the engine sets it), as before once it ended; ^D ends
    `cat` through the sandbox's own terminal."""
    steps = (Step(b"ready", typing(b"hello\r")), Step(b"hello\r\nhello", typing(b"\x04")))
    mine, theirs = both_on_pty(alca, sandbox, ["sh", "-c", "echo ready; exec cat"], *steps)
    assert mine.returncode == 0, str(mine)
    assert all(is_raw(mode) for mode in mine.modes_seen), mine.modes_seen
    assert not is_raw(mine.mode_before)
    assert mine.mode_after == mine.mode_before
    assert mine.modes_seen == theirs.modes_seen
    assert theirs.mode_after == theirs.mode_before


def test_ctrl_c_interrupts_the_command(alca: Way, sandbox: Project) -> None:
    """^C is a byte for the sandbox's terminal, whose SIGINT ends `sleep`: status 130 (not
    the client killed by a local SIGINT, which would be -2)."""
    command = ["sh", "-c", "echo ready; exec sleep 31"]
    mine, theirs = both_on_pty(alca, sandbox, command, Step(b"ready", typing(b"\x03")))
    assert mine.returncode == 130 == theirs.returncode, f"{mine}\n{theirs}"
    assert mine.elapsed < 20, str(mine)
    assert is_raw(mine.modes_seen[0])
    left = piped(engine_way(sandbox).argv(["ps", "-o", "args"], False), cwd=sandbox.root,
                 env=alca.env)  # fmt: skip
    assert b"sleep 31" not in left.stdout, str(left)


def test_ctrl_z_reaches_the_command(alca: Way, sandbox: Project) -> None:
    """^Z becomes SIGTSTP inside: a shell trapping it reports it and exits with 7."""
    script = f"trap 'echo got-tstp; exit 7' TSTP; echo ready; {WAIT_FOR_Q}"
    mine, theirs = both_on_pty(alca, sandbox, ["sh", "-c", script], Step(b"ready", typing(b"\x1a")))
    assert mine.returncode == 7 == theirs.returncode, f"{mine}\n{theirs}"
    assert "got-tstp" in mine.text


@pytest.mark.parametrize("case", sorted(EXIT_CASES))
def test_exit_status_on_a_terminal(alca: Way, sandbox: Project, case: str) -> None:
    command, expected = EXIT_CASES[case]
    got = run_way(alca, sandbox, command, tty=True)
    reference = engine_status(sandbox, tuple(command), True)
    assert got == expected == reference


@pytest.mark.parametrize("case", sorted(DIRECT_CASES))
@pytest.mark.parametrize("tty", [True, False], ids=["tty", "pipes"])
def test_exec_failure_status_is_the_engines(
    alca: Way, sandbox: Project, case: str, tty: bool
) -> None:
    command = DIRECT_CASES[case]
    got = run_way(alca, sandbox, command, tty=tty)
    reference = engine_status(sandbox, tuple(command), tty)
    assert got == reference
    assert got in (126, 127)


# --- without a terminal --------------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(EXIT_CASES))
def test_exit_status_without_a_terminal(alca: Way, sandbox: Project, case: str) -> None:
    command, expected = EXIT_CASES[case]
    got = run_way(alca, sandbox, command, tty=False)
    reference = engine_status(sandbox, tuple(command), False)
    assert got == expected == reference


@pytest.fixture(scope="module")
def blob(sandbox: Project) -> bytes:
    """10 MiB of random bytes in the workspace (every byte value, no line structure)."""
    data = os.urandom(BLOB_SIZE)
    (sandbox.root / "blob.bin").write_bytes(data)
    return data


def test_binary_output_is_byte_exact(alca: Way, sandbox: Project, blob: bytes) -> None:
    done = piped(alca.argv(["cat", "blob.bin"], False), cwd=sandbox.root, env=alca.env)
    assert done.returncode == 0, str(done)
    assert len(done.stdout) == BLOB_SIZE
    assert done.stdout == blob
    assert done.stderr == b""


def test_stdin_is_byte_exact_and_eof_ends_cat(alca: Way, sandbox: Project, blob: bytes) -> None:
    done = piped(alca.argv(["cat"], False), cwd=sandbox.root, env=alca.env, data=blob)
    assert done.returncode == 0, str(done)
    assert done.stdout == blob
    short = piped(alca.argv(["sha256sum"], False), cwd=sandbox.root, env=alca.env, data=b"x")
    assert short.stdout.split()[0] == hashlib.sha256(b"x").hexdigest().encode(), str(short)


def test_stdout_and_stderr_stay_apart(alca: Way, sandbox: Project) -> None:
    script = 'i=0; while [ $i -lt 2000 ]; do echo "out $i"; echo "err $i" >&2; i=$((i+1)); done'
    command = ["sh", "-c", script]
    mine = piped(alca.argv(command, False), cwd=sandbox.root, env=alca.env)
    theirs = piped(engine_way(sandbox).argv(command, False), cwd=sandbox.root, env=alca.env)
    assert mine.stdout == "".join(f"out {i}\n" for i in range(2000)).encode()
    assert mine.stderr == "".join(f"err {i}\n" for i in range(2000)).encode()
    assert (mine.stdout, mine.stderr) == (theirs.stdout, theirs.stderr)


def test_a_reader_that_stops_early_ends_it_quietly(alca: Way, sandbox: Project) -> None:
    """`alca run … | head -c 10`: ten bytes, then alca ends without a word on stderr."""
    command = ["sh", "-c", "yes | head -c 50000000"]
    producer = subprocess.Popen(
        alca.argv(command, False), cwd=sandbox.root, env=alca.env,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert producer.stdout is not None and producer.stderr is not None
    head = subprocess.run(
        ["head", "-c", "10"], stdin=producer.stdout, capture_output=True, timeout=60, check=True
    )
    producer.stdout.close()
    try:
        errors = producer.stderr.read()
        producer.wait(timeout=60)
    finally:
        if producer.poll() is None:
            producer.kill()
            producer.wait()
    assert head.stdout == b"y\ny\ny\ny\ny\n"
    assert errors == b"", errors
