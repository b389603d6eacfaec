"""The host side of branch sandboxes with real git: the copy holds tracked files only and
borrows the user's objects; the agent's commits come back fast-forward only, checked.

The "sandbox" here is a local stand-in (`env -C COPY git …`), so these run without an
engine; tests/integration/test_branch_sandboxes.py drives the same code on Docker and Podman.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from alcatraz.errors import RefusedError, UsageError
from alcatraz.proc import Result
from alcatraz.sandbox import branchgit
from alcatraz.sandbox.branchname import BranchPaths
from tests.fakes import make_app

AGENT = ["-c", "user.name=agent", "-c", "user.email=agent@example.invalid"]


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(root), *AGENT, *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


class LocalSandbox:
    """Stands in for a `Runtime`: runs the command in the copy on this host."""

    executable = "env"

    def exec_argv(
        self, name: str, command: Sequence[str], *, workdir: str | None = None, **_: object
    ) -> list[str]:
        return ["-C", str(workdir), *command]

    def exec_capture(
        self, name: str, command: Sequence[str], *, workdir: str | None = None, **_: object
    ) -> Result:
        done = subprocess.run(list(command), cwd=workdir, capture_output=True, text=True)
        return Result(tuple(command), done.returncode, done.stdout, done.stderr)


@pytest.fixture
def user(tmp_path: Path) -> Path:
    root = tmp_path / "user"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "README").write_text("hello\n")
    git(root, "add", "README")
    git(root, "commit", "-qm", "base")
    (root / ".env").write_text("TOKEN=secret\n")  # untracked
    return root


def made_copy(user: Path, tmp_path: Path, name: str = "agent/a") -> tuple[BranchPaths, str]:
    app = make_app(user)
    paths = BranchPaths.of(tmp_path / "alca", user, name)
    base = branchgit.start_commit(app, user, name, None)
    branchgit.create_copy(app, user, paths, name, base)
    return paths, base


def back(user: Path, paths: BranchPaths, name: str, base: str) -> str | None:
    sandbox = LocalSandbox()
    return branchgit.bring_back(
        make_app(user),
        sandbox,
        "c",
        str(paths.work),
        user,
        paths,
        name,
        base,  # type: ignore[arg-type]
    )


def agent_commit(copy: Path, message: str) -> str:
    (copy / f"{message}.txt").write_text(message)
    git(copy, "add", ".")
    git(copy, "commit", "-qm", message)
    return git(copy, "rev-parse", "HEAD")


def test_the_copy_holds_tracked_files_and_borrows_the_objects(user: Path, tmp_path: Path) -> None:
    paths, base = made_copy(user, tmp_path)
    copy = paths.work
    assert (copy / "README").read_text() == "hello\n"
    assert not (copy / ".env").exists()
    alternates = (copy / ".git/objects/info/alternates").read_text().strip()
    assert alternates == str((user / ".git/objects").resolve())
    assert git(copy, "rev-parse", "--abbrev-ref", "HEAD") == "agent/a"
    assert git(copy, "rev-parse", "HEAD") == base
    assert git(copy, "remote") == ""
    assert not list((copy / ".git/objects/pack").glob("*.pack"))  # nothing copied
    assert not (copy / ".git/hooks").exists()


def test_commits_come_back_as_the_branch(user: Path, tmp_path: Path) -> None:
    paths, base = made_copy(user, tmp_path)
    first = agent_commit(paths.work, "one")
    assert back(user, paths, "agent/a", base) == first
    assert git(user, "rev-parse", "refs/heads/agent/a") == first
    assert back(user, paths, "agent/a", base) is None  # nothing new
    second = agent_commit(paths.work, "two")
    assert back(user, paths, "agent/a", base) == second
    assert git(user, "rev-list", "--count", f"{base}..agent/a") == "2"
    git(user, "fsck", "--strict")
    assert git(user, "for-each-ref", "refs/alca") == ""  # no leftover


def test_a_non_fast_forward_is_refused_and_the_work_kept(user: Path, tmp_path: Path) -> None:
    paths, base = made_copy(user, tmp_path)
    agent_commit(paths.work, "one")
    back(user, paths, "agent/a", base)
    git(user, "checkout", "-q", "agent/a")
    (user / "mine").write_text("x")
    git(user, "add", "mine")
    git(user, "commit", "-qm", "the user's own")
    git(user, "checkout", "-q", "main")
    users = git(user, "rev-parse", "agent/a")
    agents = agent_commit(paths.work, "two")
    with pytest.raises(RefusedError) as refused:
        back(user, paths, "agent/a", base)
    assert "not a fast-forward" in refused.value.message
    assert "refs/alca/branches/agent/a" in str(refused.value.hint)
    assert git(user, "rev-parse", "agent/a") == users  # not moved
    assert git(user, "rev-parse", "refs/alca/branches/agent/a") == agents


def test_a_checked_out_branch_is_not_moved(user: Path, tmp_path: Path) -> None:
    paths, base = made_copy(user, tmp_path)
    agent_commit(paths.work, "one")
    back(user, paths, "agent/a", base)
    git(user, "checkout", "-q", "agent/a")
    before = git(user, "rev-parse", "HEAD")
    agent_commit(paths.work, "two")
    with pytest.raises(RefusedError, match="checked out"):
        back(user, paths, "agent/a", base)
    assert git(user, "rev-parse", "HEAD") == before


def test_malformed_objects_from_the_sandbox_are_refused(user: Path, tmp_path: Path) -> None:
    paths, base = made_copy(user, tmp_path)
    tree = git(paths.work, "rev-parse", "HEAD^{tree}")
    body = f"tree {tree}\nparent {base}\nauthor x <x> not-a-date\ncommitter c <c@x> 1 +0000\n\nm\n"
    made = subprocess.run(
        ["git", "-C", str(paths.work), "hash-object", "-t", "commit", "-w", "--literally",
         "--stdin"],
        input=body, capture_output=True, text=True, check=True,
    )  # fmt: skip
    git(paths.work, "update-ref", "refs/heads/agent/a", made.stdout.strip())
    with pytest.raises(RefusedError, match="object checks"):
        back(user, paths, "agent/a", base)
    assert subprocess.run(["git", "-C", str(user), "rev-parse", "-q", "--verify",
                           "refs/heads/agent/a"], capture_output=True).returncode != 0  # fmt: skip
    git(user, "fsck")


class TruncatingSandbox(LocalSandbox):
    """A sandbox whose pack stops 20 bytes short (no trailer): index-pack fails at the end."""

    def exec_argv(
        self, name: str, command: Sequence[str], *, workdir: str | None = None, **_: object
    ) -> list[str]:
        return ["sh", "-c", 'cd "$1" && shift && "$@" | head -c -20', "sh", str(workdir),
                *command]  # fmt: skip


def test_a_refused_pack_leaves_nothing_in_the_user_repository(user: Path, tmp_path: Path) -> None:
    paths, base = made_copy(user, tmp_path)
    (paths.work / "big").write_bytes(os.urandom(1 << 20))
    git(paths.work, "add", "big")
    git(paths.work, "commit", "-qm", "big")
    pack_dir = user / ".git" / "objects" / "pack"
    before = sorted(os.listdir(pack_dir))
    with pytest.raises(RefusedError, match="object checks"):
        branchgit.bring_back(
            make_app(user), TruncatingSandbox(), "c", str(paths.work), user, paths,  # type: ignore[arg-type]
            "agent/a", base,
        )  # fmt: skip
    # git's own `index-pack --stdin` spooled it to objects/pack/tmp_pack_* and left it there.
    assert sorted(os.listdir(pack_dir)) == before
    assert os.listdir(paths.incoming) == []


def test_commits_come_back_as_a_pack_beside_the_others(user: Path, tmp_path: Path) -> None:
    paths, base = made_copy(user, tmp_path)
    made = agent_commit(paths.work, "one")
    assert back(user, paths, "agent/a", base) == made
    packs = [n for n in os.listdir(user / ".git" / "objects" / "pack") if n.endswith(".idx")]
    assert len(packs) == 1 and packs[0].startswith("pack-")
    assert all(not n.startswith("tmp") for n in os.listdir(user / ".git" / "objects" / "pack"))
    assert os.listdir(paths.incoming) == []
    git(user, "fsck", "--strict")


def test_a_missing_branch_in_the_copy_is_refused(user: Path, tmp_path: Path) -> None:
    paths, base = made_copy(user, tmp_path)
    git(paths.work, "checkout", "-q", "--detach")
    git(paths.work, "branch", "-D", "agent/a")
    with pytest.raises(RefusedError, match="no branch"):
        back(user, paths, "agent/a", base)


def test_gc_in_the_copy_leaves_the_user_repository_intact(user: Path, tmp_path: Path) -> None:
    paths, base = made_copy(user, tmp_path)
    agent_commit(paths.work, "one")
    git(paths.work, "gc", "--prune=now", "--quiet")
    git(user, "fsck", "--strict")
    assert git(user, "cat-file", "-t", base) == "commit"


def test_start_commit(user: Path, tmp_path: Path) -> None:
    app = make_app(user)
    head = git(user, "rev-parse", "HEAD")
    assert branchgit.start_commit(app, user, "new", None) == head
    assert branchgit.start_commit(app, user, "new", "main") == head
    with pytest.raises(UsageError, match="not a commit"):
        branchgit.start_commit(app, user, "new", "--all")
    with pytest.raises(UsageError, match="already exists"):
        branchgit.start_commit(app, user, "main", "main")
    assert branchgit.start_commit(app, user, "main", None) == head


def test_what_a_killed_bring_back_left_is_removed(tmp_path: Path) -> None:
    """A pack of a process that is gone (or of an earlier process with this pid) goes; a
    running one's stays."""
    gone = subprocess.Popen(["true"])
    gone.wait()
    alive = subprocess.Popen(["sleep", "30"])
    try:
        names = [f"{gone.pid}.pack", f"{gone.pid}-checked.idx", f"{os.getpid()}.pack",
                 f"{alive.pid}.pack", "notes.txt"]  # fmt: skip
        for name in names:
            (tmp_path / name).write_bytes(b"x")
        branchgit.remove_stale_incoming(tmp_path)
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
            [f"{alive.pid}.pack", "notes.txt"]
        )
    finally:
        alive.kill()
        alive.wait()
