"""No `alca` command deletes or rewrites a user's project file (plan §4.7), on Docker.

A project with a pre-written .alca.toml (init is left out: it writes .alca.toml and
.gitignore by design) and a mix of files: text, binary, executable, nested, a symlink, an
empty directory, an excluded `.env`, an untracked `.git`. The snapshot (content hashes,
modes, link targets) before and after trust, up, run (read-only commands, and one that
writes `agent-wrote.txt` through the sandbox), status, list, cleanup (no -y: it removes
nothing without asking), net log, doctor, down, is identical except for that one file.
Both with a plain bind mount and with a synced workdir (`workdir_exclude`).
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.sync_helpers import SyncProject, SyncWorkspace, config

pytestmark = [pytest.mark.integration, pytest.mark.docker]

FILES = {
    "README.md": "# project\n",
    "src/app.py": "print('hello')\n",
    "src/deep/er/module.py": "X = 1\n",
    ".env": "SECRET=do-not-touch\n",
    ".git/HEAD": "ref: refs/heads/main\n",
    ".git/config": "[core]\n\tbare = false\n",
    "notes with spaces.txt": "  leading and trailing spaces  \n\n",
    "crlf.txt": "line one\r\nline two\r\n",
}
WRITTEN_BY_TEST = {"agent-wrote.txt"}

READ_ONLY_COMMANDS = [
    ("trust", "--yes"),
    ("up",),
    ("run", "ls", "-la"),
    ("run", "sh", "-c", "cat README.md src/app.py >/dev/null; find . >/dev/null"),
    ("run", "sh", "-c", "echo by-the-agent > agent-wrote.txt"),
    ("status",),
    ("status", "--json"),
    ("list",),
    ("cleanup",),
    ("net", "log"),
    ("doctor",),
    ("up",),  # a second up reuses the container
    ("down",),
    ("trust", "--yes"),
    ("status",),
]


def populate(root: Path) -> None:
    for rel, content in FILES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode())
    (root / "data.bin").write_bytes(bytes(range(256)) * 64)
    script = root / "run.sh"
    script.write_text("#!/bin/sh\necho run\n")
    script.chmod(0o755)
    (root / "link-to-readme").symlink_to("README.md")
    (root / "empty-dir").mkdir()
    (root / "ro.txt").write_text("read only\n")
    (root / "ro.txt").chmod(0o444)


EMPTY_FILE = "file 644 " + hashlib.sha256(b"").hexdigest()


def snapshot(root: Path) -> dict[str, str]:
    shot: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            shot[rel] = f"link {os.readlink(path)}"
        elif stat.S_ISDIR(info.st_mode):
            shot[rel] = f"dir {stat.S_IMODE(info.st_mode):o}"
        else:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            shot[rel] = f"file {stat.S_IMODE(info.st_mode):o} {digest}"
    return shot


@pytest.fixture(params=["bind", "sync"])
def project(request: pytest.FixtureRequest, docker: str) -> Iterator[SyncProject]:
    workspace = SyncWorkspace(docker)
    try:
        exclude = '["**/.env"]' if request.param == "sync" else ""
        made = workspace.project("proj", config(docker, exclude=exclude))
        populate(made.root)
        yield made
    finally:
        workspace.cleanup()


def test_full_cycle_changes_no_user_file(
    project: SyncProject, record_property: pytest.RecordProperty
) -> None:
    before = snapshot(project.root)
    failures = []
    for args in READ_ONLY_COMMANDS:
        outcome = project.alca(*args, timeout=120)
        if outcome.returncode != 0 and args[:2] != ("net", "log") and args[0] != "doctor":
            failures.append(str(outcome))  # net log / doctor may report problems: not data
    after = snapshot(project.root)
    for written in WRITTEN_BY_TEST:
        assert written in after, "the agent's write did not reach the host"
        after.pop(written)
    changed = sorted(
        rel for rel in before.keys() | after.keys() if before.get(rel) != after.get(rel)
    )
    # Documented additions (docs/security.md, "Files the host executes"): a bind-mounted
    # workspace gets empty read-only placeholders where a protected path is missing, empty
    # directories and empty files inside .git/. Nothing else may appear, nothing may change.
    placeholders = {
        rel
        for rel in changed
        if rel not in before
        and (after[rel] == "dir 755" or (rel.startswith(".git/") and after[rel] == EMPTY_FILE))
    }
    changed = [rel for rel in changed if rel not in placeholders]
    record_property("changed_files", len(changed))
    details = {rel: (before.get(rel), after.get(rel)) for rel in changed}
    assert not changed, f"user files changed: {details}"
    assert not failures, "\n".join(failures)
