"""Hostile project paths and garbage arguments (plan §3, §2.0 item 7).

Paths with spaces and quotes, a newline with `$(...)` and backticks, and unicode in NFD
go through trust/up/run/status/down on Docker. Each works or fails with a clear message,
no `/tmp/pwned-*` marker is ever created, and (with LAN isolation on, rules persisted in
temporary files) no nft statement or persisted rule file carries the path. Garbage
arguments exit 64 with one message, no traceback, and create nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import unicodedata
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from alcatraz import state
from tests.integration.lifecycle.helpers import (
    ALCA,
    IMAGE,
    Outcome,
    names_with_project_path,
    remove_container,
    remove_project_networks,
    remove_rules,
    run_alca,
)

MARK = uuid.uuid4().hex[:12]
PWNED = Path(f"/tmp/pwned-{MARK}")
PWNED_BT = Path(f"/tmp/pwned-{MARK}-bt")


def pwned_markers() -> list[Path]:
    return sorted(Path("/tmp").glob(f"pwned-{MARK}*"))


class Base:
    """A short base directory with its own alca home and nftables persistence files."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="asec-", dir="/tmp"))
        self.home = self.base / "home"
        self.home.mkdir()
        self.roots: list[Path] = []

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ALCA_")}
        env.update(
            HOME=str(self.home),
            ALCA_HOME=str(self.home / ".alcatraz"),
            ALCA_NFT_CONF=str(self.base / "nftables.conf"),
            ALCA_NFT_DIR=str(self.base / "nftables.d"),
            NO_COLOR="1",
        )
        return env

    def alca(self, *args: str, cwd: Path | None = None, timeout: float = 120) -> Outcome:
        return run_alca(args, cwd=cwd or self.base, env=self.env(), tty_input=None, timeout=timeout)

    def cleanup(self) -> None:
        for root in self.roots:
            recorded = (
                state.read_json(state.project_dir(self.home / ".alcatraz", root) / "state.json")
                or {}
            )
            if root.is_dir() and recorded.get("project_id"):
                self.alca("down", "-q", cwd=root)
            for name in names_with_project_path("docker", root):
                remove_container("docker", name)
            ids = remove_project_networks("docker", root)
            for project_id in {*ids, str(recorded.get("project_id") or "")} - {""}:
                remove_rules(project_id)
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture
def base() -> Iterator[Base]:
    made = Base()
    try:
        yield made
    finally:
        made.cleanup()


def assert_clean_failure(outcome: Outcome) -> None:
    assert "Traceback" not in outcome.output, str(outcome)
    assert outcome.stderr.strip(), f"failed without a message:\n{outcome}"


NAMES = {
    "spaces-quotes": "my proj 'single' \"double\"",
    # nested directories, so that the whole path reads `...$(touch /tmp/pwned-...)`...`
    "newline-subst-backticks": f"p\nx$(touch {PWNED})`touch {PWNED_BT}`;x",
    "unicode-nfd": unicodedata.normalize("NFD", "café-ünï-日本"),
}


def nft_ruleset() -> str:
    done = subprocess.run(
        ["nft", "list", "ruleset"], capture_output=True, text=True, timeout=30, check=False
    )
    return done.stdout


@pytest.mark.integration
@pytest.mark.docker
@pytest.mark.parametrize("kind", list(NAMES))
def test_hostile_project_path_full_cycle(kind: str, docker: str, base: Base) -> None:
    isolated = kind == "newline-subst-backticks"
    root = base.base / NAMES[kind].lstrip("/")
    root.mkdir(parents=True)
    base.roots.append(root)
    lan = "[]" if isolated else '["*"]'
    (root / ".alca.toml").write_text(
        f'image = "{IMAGE}"\nruntime = "{docker}"\n[network]\nlan-access = {lan}\n'
    )
    if isolated:
        helper = base.alca("network-helper", "install", "--yes")
        assert helper.returncode == 0, str(helper)
    steps = [("trust", "--yes"), ("up",), ("run", "echo", "ok"), ("status",), ("down",)]
    for step in steps:
        outcome = base.alca(*step, cwd=root)
        if outcome.returncode != 0:
            assert_clean_failure(outcome)
            print(f"\n[{kind}] alca {' '.join(step)} refused: {outcome.stderr.strip()}")
            break
        if step[0] == "run":
            assert outcome.stdout.strip() == "ok", str(outcome)
        if step[0] == "up" and isolated:
            ruleset = nft_ruleset()
            persisted = "".join(
                p.read_text(errors="replace")
                for p in (base.base / "nftables.d").rglob("*")
                if p.is_file()
            )
            for text in (ruleset, persisted):
                assert MARK not in text and "touch" not in text, "the path reached the rules"
                assert str(root) not in text
            assert "alca" in ruleset, "isolation on, but no alca table was loaded"
        assert not pwned_markers(), f"command injection via the path at `alca {step[0]}`"
    assert not pwned_markers()
    # nothing outside the project and alca's home was created in the base directory
    assert sorted(p.name for p in base.base.iterdir()) <= sorted(
        ["home", NAMES[kind].split("/")[0], "nftables.conf", "nftables.d"]
    )


GARBAGE = [
    ("up", "--nope"),
    ("run",),
    ("network-helper", "frob"),
    ("config", "show", "extra"),
    ("init", "-t", ""),
    ("--nope",),
    ("down", "--force", "--force-harder"),
    ("net", "log", "--lines", "many"),
    ("status", "--json", "--xml"),
    ("trust", "extra-arg"),
    ("list", "$(touch /tmp/pwned-{MARK})"),
]


@pytest.mark.parametrize("args", GARBAGE, ids=lambda a: " ".join(a) or "empty")
def test_garbage_arguments_exit_64_cleanly_and_create_nothing(args: tuple[str, ...]) -> None:
    args = tuple(a.replace("{MARK}", MARK) for a in args)
    base = Path(tempfile.mkdtemp(prefix="asec-g-", dir="/tmp"))
    try:
        work = base / "work"
        work.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith("ALCA_")}
        env.update(HOME=str(base / "home"), ALCA_HOME=str(base / "alca"), NO_COLOR="1")
        done = subprocess.run(
            [*ALCA, *args], cwd=work, env=env, stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert done.returncode == 64, f"exit {done.returncode}\n{done.stdout}{done.stderr}"
        assert "Traceback" not in done.stdout + done.stderr
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert 1 <= len(lines) <= 3, done.stderr  # the error, and at most a Fix: hint
        assert sum(not line.startswith(" ") for line in lines) == 1, done.stderr
        assert sorted(p.name for p in base.iterdir()) == ["work"], "something was created"
        assert list(work.iterdir()) == []
        assert not pwned_markers()
    finally:
        shutil.rmtree(base, ignore_errors=True)
