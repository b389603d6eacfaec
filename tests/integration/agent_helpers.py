"""What the agent-preset tests (issue 16) know about each agent, and how they watch it.

Each `AgentCase` is what a user does with one preset: the image that meets its runtime,
the command that prints its version, its non-interactive mode and the error it prints when
its API is unreachable (these machines reach no model API), and the first screen of its
interactive UI. The patterns were read off the agents themselves, on the host and in a
sandbox; a new agent release that changes them fails the test, which is the point.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

TRIXIE = "localhost/alca-test/debian:trixie"  # Node.js 20 and npm
BOOKWORM = "localhost/alca-test/debian:bookworm"  # Python 3.11

#: What a broken install or start prints, whatever the agent (never its own API error).
CRASHES = re.compile(
    r"Cannot find module|command not found|: not found|Segmentation fault|Illegal instruction|"
    r"ERR_REQUIRE_ESM|SyntaxError|Traceback \(most recent call last\)|ModuleNotFoundError|"
    r"ImportError|GLIBC_[0-9.]+' not found|error while loading shared libraries"
)


@dataclass(frozen=True)
class AgentCase:
    name: str  # the preset
    image: str
    version_pattern: str  # in `<command> --version`
    headless: tuple[str, ...]  # the non-interactive mode, as `alca run` arguments
    api_error: str  # what the agent prints when its API cannot be reached
    key: str  # an API-key variable of the preset, passed by name
    screen: str  # on the first screen of `alca run <command>` under a TTY
    # what the preset's install step prints when it installs the agent (npm's, by default)
    installed: str = r"added \d+ packages?"
    login: str = "{}\n"  # the host login file, as the agent writes it (no real account here)

    def __str__(self) -> str:
        return self.name


AGENTS: tuple[AgentCase, ...] = (
    AgentCase(
        name="claude",
        image=TRIXIE,
        version_pattern=r"\d+\.\d+\.\d+ \(Claude Code\)",
        # without retries it reports the unreachable API in seconds instead of minutes
        headless=("env", "CLAUDE_CODE_MAX_RETRIES=0", "claude", "-p", "hello"),
        api_error=r"API Error: .*(reach|connect)",
        key="ANTHROPIC_API_KEY",
        screen=r"Welcome to Claude Code",
    ),
    AgentCase(
        name="codex",
        image=TRIXIE,
        version_pattern=r"codex-cli \d+\.\d+\.\d+",
        headless=("codex", "exec", "--skip-git-repo-check", "hello"),
        api_error=r"stream disconnected|failed to lookup address|Reconnecting",
        key="OPENAI_API_KEY",
        # logged in with an API key: its prompt, or first whether to trust the folder
        screen=r"Welcome to Codex|Trust this folder|OpenAI Codex \(v\d",
        # what `codex login --with-api-key` writes
        login='{\n  "auth_mode": "apikey",\n  "OPENAI_API_KEY": "sk-alca-test-login"\n}\n',
    ),
    AgentCase(
        name="gemini",
        image=TRIXIE,
        version_pattern=r"^\d+\.\d+\.\d+",
        headless=("gemini", "-p", "hello"),
        api_error=r"fetch failed|Attempt \d+ failed",
        key="GEMINI_API_KEY",
        screen=r"Gemini CLI v\d|Tips for getting started",
    ),
    AgentCase(
        name="aider",
        image=BOOKWORM,
        version_pattern=r"aider \d+\.\d+\.\d+",
        headless=("aider", "--message", "hello"),
        api_error=r"litellm\.\w+Error|Connection error|APIConnectionError",
        key="OPENAI_API_KEY",
        # its first question: add .aider* to .gitignore, or create a repository
        screen=r"Aider v\d|\.gitignore|git repo",
        installed=r"installed package aider-chat",
    ),
    AgentCase(
        name="opencode",
        image=TRIXIE,
        version_pattern=r"^\d+\.\d+\.\d+",
        # without --print-logs it prints nothing until its retries end
        headless=("opencode", "run", "--print-logs", "hello"),
        api_error=r"AI_APICallError|Cannot connect",
        key="ANTHROPIC_API_KEY",
        screen=r"Ask anything",
    ),
)


def is_file_source(source: str) -> bool:
    """Whether a preset's host mount names a file (`settings.json`, `.aider.conf.yml`)
    rather than a directory (`commands`, `.config/opencode`)."""
    return "." in Path(source).name.lstrip(".")


def host_file_text(name: str) -> str:
    """What a user's agent file holds, parseable as its kind (agents refuse to start on a
    settings file they cannot parse)."""
    if name.endswith(".json"):
        return "{}\n"
    if name == ".aider.model.settings.yml":
        return "[]\n"
    if name.endswith((".yml", ".yaml")):
        return "dark-mode: true\n"
    return f"# the host's {name}, which the host agent reads\n"


def snapshot(root: Path) -> dict[str, str]:
    """Every entry below `root`: its kind, mode and content (what a host agent would read)."""
    seen: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        relative = str(path.relative_to(root))
        if path.is_symlink():
            seen[relative] = f"link {os.readlink(path)}"
        elif path.is_dir():
            seen[relative] = f"dir {oct(info.st_mode)}"
        else:
            seen[relative] = f"file {oct(info.st_mode)} {path.read_bytes()!r}"
    return seen


@dataclass(frozen=True)
class Watched:
    matched: bool
    output: str
    seconds: float


def run_until(
    argv: Sequence[str], pattern: str, *, cwd: Path, env: Mapping[str, str], limit: float
) -> Watched:
    """Run `argv` until its output matches `pattern` (then stop it) or it ends, or `limit`.

    The agents retry an unreachable API for minutes; the first error they print is the
    answer the test needs. The process group is stopped; the command inside the sandbox is
    itself bounded by `timeout`, and `down` ends whatever is left.
    """
    started = time.monotonic()
    wanted = re.compile(pattern)
    with tempfile.TemporaryFile() as sink:
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        output = ""
        try:
            while time.monotonic() - started < limit:
                ended = proc.poll() is not None
                sink.seek(0)
                output = sink.read().decode("utf-8", "replace")
                if wanted.search(output) or ended:
                    break
                time.sleep(0.5)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
    return Watched(bool(wanted.search(output)), output, time.monotonic() - started)


def first_screen(
    argv: Sequence[str],
    pattern: str,
    *,
    cwd: Path,
    env: Mapping[str, str],
    limit: float,
    poll: float = 0.5,
) -> Watched:
    """The rendered screen of `argv` in a 120x36 terminal (tmux), once `pattern` is on it.

    tmux renders what the agent draws (cursor moves, redraws), so the check reads the
    screen a user would see, not the raw escape sequences. A private server (its own
    socket, no user config), killed afterwards.
    """
    tmux = shutil.which("tmux")
    assert tmux, "tmux is missing: scripts/setup-test-env.sh installs it"
    started = time.monotonic()
    wanted = re.compile(pattern)
    with tempfile.TemporaryDirectory(prefix="alca-tty-") as scratch:
        base = [tmux, "-S", str(Path(scratch) / "socket"), "-f", "/dev/null"]
        command = shlex.join(argv) + "; echo; echo '[exited '$?']'; sleep 30"
        subprocess.run(
            [*base, "new-session", "-d", "-x", "120", "-y", "36", "-c", str(cwd), command],
            env={**env, "TERM": "xterm-256color"},
            check=True,
            timeout=30,
        )
        screen = ""
        try:
            while time.monotonic() - started < limit:
                shown = subprocess.run(
                    [*base, "capture-pane", "-p"], capture_output=True, text=True, timeout=30
                )
                screen = shown.stdout
                if wanted.search(screen) or "[exited " in screen:
                    break
                time.sleep(poll)
        finally:
            subprocess.run([*base, "kill-server"], capture_output=True, timeout=30)
    return Watched(bool(wanted.search(screen)), screen, time.monotonic() - started)
