"""Parallel agents on one repository (issue 18): a sandbox per branch, results back as branches.

Real Docker and Podman, both isolation layers on, the Debian image (it has git), the project
bind-mounted. Two branch sandboxes run at once on private copies: a commit in each comes
back as its branch; neither can write the user's checkout, the user's `.git` or the other
copy; `git gc --prune=now` inside leaves the user's repository fsck-clean; the untracked
`.env` is never inside; a non-fast-forward is refused; uncommitted work survives `down`.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.isolation_helpers import (
    ALCA,
    REFUSED,
    Outcome,
    Project,
    Workspace,
    helper_workspace,
    remove_container,
    sh,
)

pytestmark = pytest.mark.integration

DEBIAN = "localhost/alca-test/debian:trixie"
ONE, TWO = "agent/one", "agent/two"
AGENT = "git -c user.name=agent -c user.email=agent@example.invalid"


def git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=u", "-c", "user.email=u@example.invalid", *args],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def has_ref(root: Path, ref: str) -> bool:
    found = subprocess.run(["git", "-C", str(root), "rev-parse", "-q", "--verify", ref])
    return found.returncode == 0


@pytest.fixture(scope="module")
def workspace() -> Iterator[Workspace]:
    with helper_workspace("branches", ALCA_TEST_HOST_LAYER_ONLY="") as ws:
        yield ws


class Repo:
    """The user's repository and its branch sandboxes, driven through `alca … -b`."""

    def __init__(self, workspace: Workspace, engine: str) -> None:
        self.project = Project(workspace, engine, workspace.base / f"repo-{engine}")
        self.root = self.project.root
        self.engine = engine

    def alca(self, *args: str) -> Outcome:
        return self.project.alca(*args, timeout=300)

    def ok(self, *args: str) -> Outcome:
        done = self.alca(*args)
        assert done.returncode == 0, str(done)
        return done

    def inside(self, branch: str, script: str) -> Outcome:
        """`alca run -b BRANCH sh -c SCRIPT` (what the agent does), commits back after it."""
        return self.alca("run", "-b", branch, "sh", "-c", script)

    def status(self, branch: str) -> dict[str, object]:
        data: dict[str, object] = json.loads(self.ok("status", "-b", branch, "--json").stdout)
        return data

    def copy(self, branch: str) -> Path:
        return Path(str(self.status(branch)["copy"]))

    def objects(self) -> Path:
        return (self.root / ".git" / "objects").resolve()


@pytest.fixture(scope="module")
def repo(engine: object, workspace: Workspace) -> Iterator[Repo]:
    engine_name = str(getattr(engine, "executable", engine))
    found = subprocess.run([engine_name, "image", "inspect", DEBIAN], capture_output=True)
    assert found.returncode == 0, f"{engine_name} has no {DEBIAN}: run scripts/setup-test-env.sh"
    repo = Repo(workspace, engine_name)
    root = repo.root
    (root / ".alca.toml").write_text(f'image = "{DEBIAN}"\nruntime = "{engine_name}"\n')
    (root / "README").write_text("the user's project\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", ".alca.toml", "README")
    git(root, "commit", "-qm", "the user's commit")
    (root / ".env").write_text("API_TOKEN=host-secret\n")  # untracked
    repo.ok("trust", "--yes")
    copies: list[Path] = []
    try:
        for branch in (ONE, TWO):
            repo.ok("up", "-b", branch)
            copies.append(repo.copy(branch))
        yield repo
    finally:
        problems = []
        for branch in (ONE, TWO):
            done = repo.alca("down", "-b", branch, "--force", "--purge")
            if done.returncode != 0 and "no branch sandbox" not in done.output:
                problems.append(str(done))
        for copy in copies:
            label = f"label=alca.project.path={copy}"
            ps = [engine_name, "ps", "-a", "--filter", label, "--format", "{{.Names}}"]
            for name in sh(ps).stdout.split():
                problems.append(f"container {name} was left behind; removed")
                remove_container(engine_name, name)
            if copy.exists():
                problems.append(f"copy {copy} was left behind")
        assert not problems, "\n".join(problems)


def test_each_branch_has_its_own_sandbox_on_a_copy_of_tracked_files(repo: Repo) -> None:
    one, two = repo.status(ONE), repo.status(TWO)
    assert one["status"] == two["status"] == "running", (one, two)
    assert one["container"] != two["container"]
    assert one["isolation"] == "enforced"
    assert one["copy"] != two["copy"]
    listing = repo.inside(ONE, "ls -a /workspace && git branch --show-current && git status -s")
    assert listing.returncode == 0, listing.stderr
    names = listing.stdout.split()
    assert "README" in names and ".alca.toml" in names  # the positive control
    assert ".env" not in names
    assert ONE in names
    assert not (Path(str(one["copy"])) / ".env").exists()


def test_a_commit_in_each_comes_back_as_its_branch(repo: Repo) -> None:
    main = git(repo.root, "rev-parse", "main")
    for branch in (ONE, TWO):
        slug = branch.replace("/", "-")
        done = repo.inside(
            branch,
            f"echo {slug} > {slug}.txt && git add {slug}.txt && {AGENT} commit -qm 'from {slug}'"
            " && git status --porcelain && git log --oneline -1 && git diff HEAD~1 --stat",
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"from {slug}" in git(repo.root, "log", "-1", "--format=%s", branch)
        assert git(repo.root, "rev-parse", f"{branch}~1") == main
    assert git(repo.root, "rev-parse", "main") == main  # nothing else moved
    assert git(repo.root, "status", "--porcelain") == "?? .env"  # the checkout untouched
    assert repo.status(ONE)["ahead"] == 1
    listed = repo.ok("list").stdout
    assert ONE in listed and TWO in listed, listed
    containers = json.loads(repo.ok("list", "--json").stdout)
    branches = {row["branch"]: (row["name"], row["ahead"]) for row in containers}
    assert branches[ONE] == (repo.status(ONE)["container"], 1), containers
    assert branches[TWO] == (repo.status(TWO)["container"], 1), containers


def test_an_agent_cannot_write_the_users_checkout_git_or_the_other_copy(repo: Repo) -> None:
    objects, other = repo.objects(), repo.copy(TWO)
    before = sorted(p.name for p in objects.iterdir())
    attacks = {
        "checkout": f"echo pwned > {repo.root}/README",
        "new file in the checkout": f"touch {repo.root}/pwned",
        "objects": f"touch {objects}/pwned",
        "an object dir": f"mkdir -p {objects}/ff && touch {objects}/ff/pwned",
        "the user's alternates": f"echo /tmp > {objects}/info/alternates",
        "the user's config": f"echo '[core]' >> {repo.root}/.git/config",
        "the user's hooks": f"mkdir -p {repo.root}/.git/hooks && touch {repo.root}/.git/hooks/x",
        "the other copy": f"touch {other}/pwned",
        "the other copy's git": f"touch {other}/.git/pwned",
    }
    for what, script in attacks.items():
        repo.inside(ONE, script)  # fails inside, or lands in the container's own filesystem
        assert (repo.root / "README").read_text() == "the user's project\n", what
    assert not (repo.root / "pwned").exists()
    assert sorted(p.name for p in objects.iterdir()) == before
    assert not (objects / "info" / "alternates").exists()
    assert "[core]\n[core]" not in (repo.root / ".git" / "config").read_text()
    assert not (repo.root / ".git" / "hooks" / "x").exists()
    assert not (other / "pwned").exists() and not (other / ".git" / "pwned").exists()
    readonly = repo.inside(ONE, f"touch {objects}/pwned")
    assert readonly.returncode != 0  # the objects are there, read-only
    config = repo.inside(ONE, "echo 'image = \"evil\"' >> /workspace/.alca.toml")
    assert config.returncode != 0, str(config)  # the copy's config is read-only too
    assert "evil" not in (repo.copy(ONE) / ".alca.toml").read_text()
    seen = repo.inside(ONE, f"test -d {objects}/pack && ! test -e {other}")
    assert seen.returncode == 0, seen.stderr  # the positive control: objects seen, copy not
    git(repo.root, "fsck", "--strict")


def test_gc_inside_leaves_the_user_repository_fsck_clean(repo: Repo) -> None:
    done = repo.inside(TWO, "git gc --prune=now --quiet && git fsck && git log --oneline")
    assert done.returncode == 0, done.stdout + done.stderr
    git(repo.root, "fsck", "--strict")
    again = repo.inside(TWO, f"echo more > more.txt && git add more.txt && {AGENT} commit -qm more")
    assert again.returncode == 0, again.stdout + again.stderr
    assert git(repo.root, "log", "-1", "--format=%s", TWO) == "more"
    git(repo.root, "fsck", "--strict")


def test_a_non_fast_forward_is_refused(repo: Repo) -> None:
    users_tip = git(repo.root, "commit-tree", "-p", TWO, "-m", "the user's own", f"{TWO}^{{tree}}")
    git(repo.root, "update-ref", f"refs/heads/{TWO}", users_tip)
    done = repo.inside(TWO, f"{AGENT} commit -q --allow-empty -m diverged")
    assert done.returncode == REFUSED, done.stdout + done.stderr
    assert "not a fast-forward" in done.stderr
    assert git(repo.root, "rev-parse", TWO) == users_tip
    kept = f"refs/alca/branches/{TWO}"
    assert git(repo.root, "log", "-1", "--format=%s", kept) == "diverged"
    git(repo.root, "update-ref", "-d", kept)


def test_down_keeps_uncommitted_work(repo: Repo) -> None:
    assert repo.inside(ONE, "echo draft > draft.txt").returncode == 0
    copy = repo.copy(ONE)
    refused = repo.alca("down", "-b", ONE, "--purge")
    assert refused.returncode == REFUSED, str(refused)
    assert "uncommitted" in refused.stderr
    assert repo.status(ONE)["status"] == "running"
    repo.ok("down", "-b", ONE, "--force")  # the sandbox goes, the copy stays
    assert (copy / "draft.txt").read_text() == "draft\n"
    assert repo.status(ONE)["status"] == "absent"
    cannot_tell = repo.alca("down", "-b", ONE, "--purge")
    assert cannot_tell.returncode == REFUSED, str(cannot_tell)
    assert (copy / "draft.txt").exists()
    repo.ok("up", "-b", ONE)  # back on the same copy
    assert repo.inside(ONE, "cat draft.txt").stdout.strip() == "draft"
    assert not has_ref(repo.root, f"refs/alca/branches/{ONE}")


def test_four_branch_sandboxes_built_at_once_do_not_interfere(repo: Repo) -> None:
    branches = [f"agent/p{i}" for i in range(4)]
    env = repo.project.ws.env()
    try:
        started = [
            subprocess.Popen(
                [*ALCA, "up", "-b", branch],
                cwd=repo.root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for branch in branches
        ]
        outputs = [child.communicate(timeout=600)[0] for child in started]
        for child, output in zip(started, outputs, strict=True):
            assert child.returncode == 0, output
        containers = {repo.status(branch)["container"] for branch in branches}
        assert len(containers) == 4
        for branch in branches:
            done = repo.inside(branch, f"{AGENT} commit -q --allow-empty -m 'from {branch}'")
            assert done.returncode == 0, str(done)
        for branch in branches:
            assert git(repo.root, "log", "-1", "--format=%s", branch) == f"from {branch}"
    finally:
        for branch in branches:
            done = repo.alca("down", "-b", branch, "--force", "--purge")
            assert done.returncode == 0 or "no branch sandbox" in done.output, str(done)
