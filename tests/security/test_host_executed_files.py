"""Files the host executes later stay read-only inside the sandbox (issue 13, items 8 and 10).

The agent (through `alca run`) tries to write, append to, create under, rename, delete,
replace (by rename, by a symlink) and hard-link into every protected path of two projects:
one where the paths exist (a git repository with a hook, `core.hooksPath` naming a
directory that does not exist yet, `.envrc`, `.vscode/`, `.idea/`, `.alca/`, a `Makefile`
added with `workdir_protect`) and one where none exists (no `.git` at all). Then the host
tree must be exactly as before, except the one path opted out with `workdir_unprotect`,
which the agent must be able to write (so the attack is shown to work where allowed).

Variants beyond the literal case: `.git` renamed away and recreated with a hook and an
fsmonitor config; the parent of the hooks directory renamed and recreated; a symlink in
place of `.vscode`; the container stopped, a protected file created on the host meanwhile,
then started again and attacked again.

Modes: Docker and Podman, each with a bind-mounted and a synced (`workdir_exclude`)
workspace. Everyday git inside is checked with the host's own git binary mounted read-only
(the test images are busybox), when the host has one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.conftest import engine_problem
from tests.integration.lifecycle.helpers import engine_cli
from tests.integration.sync_helpers import SyncProject, SyncWorkspace, config, write

pytestmark = pytest.mark.integration

MODES = [
    pytest.param(("docker", "bind"), marks=pytest.mark.docker, id="docker-bind"),
    pytest.param(("docker", "sync"), marks=pytest.mark.docker, id="docker-sync"),
    pytest.param(("podman", "bind"), marks=pytest.mark.podman, id="podman-bind"),
    pytest.param(("podman", "sync"), marks=pytest.mark.podman, id="podman-sync"),
]
EXCLUDE = '["**/.env"]'
HOST_HOOK = "#!/bin/sh\necho host hook"
EVIL = "evil"

#: Protected paths of the project where they exist (True = a directory).
EXISTING = {
    ".git/config": False,
    ".git/hooks": True,
    ".envrc": False,
    ".vscode": True,
    ".idea": True,
    ".alca": True,
    "Makefile": False,
}
#: ... and those absent there: placeholders.
ABSENT_IN_REPO = {
    ".git/worktrees": True,
    ".git/modules": True,
    ".git/config.worktree": False,
    "tools/hooks": True,  # core.hooksPath
}
#: Protected paths of the project that has none of them (no `.git` either).
ABSENT = {".git": True, ".envrc": False, ".vscode": True, ".idea": True, ".alca": True}
OPTED_OUT = ".devcontainer"
#: A bind-mounted workspace gets no placeholder file outside .git/ (it would show in `git
#: status`): a missing `.envrc` stays creatable there, direnv's own `allow` guards it.
NOT_PLACED_WHEN_BOUND = (".envrc",)


def absent_for(mode: str) -> dict[str, bool]:
    if mode == "sync":
        return ABSENT
    return {k: v for k, v in ABSENT.items() if k not in NOT_PLACED_WHEN_BOUND}


def attack_script(paths: dict[str, bool]) -> str:
    """Every way of changing each path; prints `CHANGED <what>` for each that worked."""
    lines = [
        "cd /workspace || exit 3",
        "mkdir -p scratch && echo evil > scratch/x && echo evil > /tmp/x",
        't() { if sh -c "$2" >/dev/null 2>&1; then echo "CHANGED $1: $2"; fi; }',
    ]
    for path, _directory in paths.items():
        for attack in (
            f"echo evil > {path}",
            f"echo evil >> {path}",
            f"echo evil > {path}/evil",
            f"mkdir -p {path}/sub",
            f"mv {path} {path}.moved",
            f"rm -r {path}",  # -f would succeed on a name that is not there
            f"rm -rf {path}; ln -s /etc {path}",
            f"ln -sfn /etc/passwd {path}",
            f"mv -f scratch/x {path}",
            f"cp /tmp/x scratch/y && mv -f scratch/y {path}",
            f"ln scratch/x {path}/hard",
            f"touch {path}/new",
            f"chmod 777 {path}",
        ):
            lines.append(f"t {path} '{attack}'")
    lines.append("echo ATTACK-DONE")
    return "\n".join(lines) + "\n"


def host_tree(root: Path, skip: tuple[str, ...] = ("scratch", OPTED_OUT)) -> dict[str, str]:
    """Every path under `root` with its type and content, except `skip` and git's own
    object store (nothing in the attacks writes there; a flush may pack refs)."""
    tree: dict[str, str] = {}
    for directory, dirs, files in os.walk(root, followlinks=False):
        rel_dir = os.path.relpath(directory, root)
        if rel_dir == ".":
            dirs[:] = [d for d in dirs if d not in skip]
        for name in sorted(dirs + files):
            path = Path(directory) / name
            rel = os.path.normpath(os.path.join(rel_dir, name))
            if rel.startswith((".git/objects", ".git/logs", ".git/index")):
                continue
            if path.is_symlink():
                tree[rel] = "-> " + os.readlink(path)
            elif path.is_dir():
                tree[rel] = "dir"
            else:
                tree[rel] = path.read_bytes().decode(errors="replace")
    return tree


def host_git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=True, timeout=30
    )
    return done.stdout


def make_repo(root: Path) -> None:
    host_git(root, "init", "-q", "-b", "main")
    host_git(root, "config", "user.email", "dev@example.invalid")
    host_git(root, "config", "user.name", "dev")
    host_git(root, "config", "core.hooksPath", "tools/hooks")
    write(root, {".git/hooks/pre-commit": HOST_HOOK})
    host_git(root, "add", "-A")
    host_git(root, "commit", "-qm", "initial")


@dataclass
class Sandbox:
    engine: str
    mode: str
    workspace: SyncWorkspace
    full: SyncProject
    empty: SyncProject
    before: dict[str, dict[str, str]]

    def settle(self) -> None:
        """Let the sync carry whatever the agent managed to change to the host."""
        if self.mode == "sync":
            self.full.flush()
            self.empty.flush()

    def attack(self, project: SyncProject, script: str) -> str:
        outcome = project.alca("run", "sh", "-c", script, timeout=120)
        self.settle()
        return outcome.stdout


def _project(workspace: SyncWorkspace, name: str, mode: str, top: str) -> SyncProject:
    text = config(workspace.engine, exclude=EXCLUDE if mode == "sync" else "")
    return workspace.project(name, top + text, {".env": "SECRET=1", "src/a.txt": "a"})


@pytest.fixture(scope="module", params=MODES)
def sandbox(request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    engine, mode = request.param
    problem = engine_problem(engine) or (None if shutil.which("git") else "no git on the host")
    if problem:
        pytest.skip(problem)
    workspace = SyncWorkspace(engine)
    try:
        full = _project(
            workspace,
            "full",
            mode,
            f'workdir_protect = ["Makefile"]\nworkdir_unprotect = ["{OPTED_OUT}/"]\n',
        )
        write(
            full.root,
            {
                ".envrc": "export HOST=1",
                ".vscode/tasks.json": '{"host": true}',
                ".idea/workspace.xml": "<host/>",
                ".alca/notes.txt": "host notes",
                "Makefile": "all:\n\techo host",
                "tools/build.sh": "echo build",
            },
        )
        make_repo(full.root)
        empty = _project(workspace, "empty", mode, "")
        for project in (full, empty):
            project.ok("up", "--yes")
        sandbox = Sandbox(engine, mode, workspace, full, empty, {})
        sandbox.settle()
        sandbox.before = {"full": host_tree(full.root), "empty": host_tree(empty.root)}
        yield sandbox
    finally:
        workspace.cleanup()


def _changed(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("CHANGED")]


def test_existing_paths_cannot_be_changed(sandbox: Sandbox) -> None:
    output = sandbox.attack(sandbox.full, attack_script(EXISTING))
    assert "ATTACK-DONE" in output, output
    assert _changed(output) == []
    assert host_tree(sandbox.full.root) == sandbox.before["full"]
    assert (sandbox.full.root / ".git/hooks/pre-commit").read_text().strip() == HOST_HOOK


def test_existing_paths_stay_readable_inside(sandbox: Sandbox) -> None:
    seen = sandbox.full.inside(
        "cat /workspace/.git/hooks/pre-commit /workspace/.envrc /workspace/.vscode/tasks.json"
    )
    assert "host hook" in seen and "export HOST=1" in seen and '"host"' in seen


def test_absent_paths_cannot_be_created(sandbox: Sandbox) -> None:
    output = sandbox.attack(sandbox.full, attack_script(ABSENT_IN_REPO))
    assert _changed(output) == []
    output = sandbox.attack(sandbox.empty, attack_script(absent_for(sandbox.mode)))
    assert "ATTACK-DONE" in output, output
    assert _changed(output) == []
    assert host_tree(sandbox.full.root) == sandbox.before["full"]
    assert host_tree(sandbox.empty.root) == sandbox.before["empty"]
    assert not (sandbox.empty.root / ".git" / "HEAD").exists()


def test_what_the_host_sees_of_absent_paths(sandbox: Sandbox) -> None:
    """Bind mount: empty placeholders (a mount point inside a bind mount is a host path).
    Synced: nothing at all."""
    root = sandbox.empty.root
    if sandbox.mode != "sync":
        for name in NOT_PLACED_WHEN_BOUND:
            assert not os.path.lexists(root / name), name
    for name, directory in absent_for(sandbox.mode).items():
        path = root / name
        if sandbox.mode == "sync":
            assert not os.path.lexists(path), name
            continue
        assert not path.is_symlink() and (path.is_dir() if directory else path.is_file()), name
        assert (list(path.iterdir()) == []) if directory else path.stat().st_size == 0


def test_opted_out_path_is_writable(sandbox: Sandbox) -> None:
    sandbox.full.sh(f"mkdir -p {OPTED_OUT} && echo agent > {OPTED_OUT}/devcontainer.json")
    sandbox.settle()
    written = sandbox.full.root / OPTED_OUT / "devcontainer.json"
    assert written.read_text() == "agent\n"
    # The same write to a protected sibling still fails.
    outcome = sandbox.full.alca("run", "sh", "-c", "echo agent > .idea/workspace.xml")
    assert outcome.returncode != 0


def test_git_directory_renamed_away_and_recreated(sandbox: Sandbox) -> None:
    script = (
        "cd /workspace; mv .git .git.away; mkdir -p .git/hooks;"
        " echo 'echo pwned' > .git/hooks/post-checkout; chmod +x .git/hooks/post-checkout;"
        " printf '[core]\\n\\tfsmonitor = touch /tmp/pwned\\n' > .git/config; echo DONE"
    )
    sandbox.attack(sandbox.full, script)
    root = sandbox.full.root
    assert not (root / ".git/hooks/post-checkout").exists()
    assert "fsmonitor" not in (root / ".git/config").read_text()
    assert (root / ".git/hooks/pre-commit").read_text().strip() == HOST_HOOK
    if sandbox.mode == "bind":  # `.git` is a mount point: it cannot move at all
        assert not (root / ".git.away").exists()
        assert host_tree(root) == sandbox.before["full"]
    if sandbox.mode == "bind":  # synced, the move carried git's objects away from the host
        assert "fsmonitor" not in host_git(root, "config", "--list", "--local")


def test_hooks_directory_parent_renamed_and_recreated(sandbox: Sandbox) -> None:
    script = (
        "cd /workspace; mv tools tools.away; mkdir -p tools/hooks;"
        " echo 'echo pwned' > tools/hooks/pre-commit; echo DONE"
    )
    sandbox.attack(sandbox.full, script)
    hook = sandbox.full.root / "tools/hooks/pre-commit"
    assert not hook.exists(), "the agent's hook reached core.hooksPath on the host"
    if sandbox.mode == "bind":
        assert host_tree(sandbox.full.root) == sandbox.before["full"]


def test_symlink_in_place_of_vscode(sandbox: Sandbox) -> None:
    script = (
        "cd /workspace; rm -rf .vscode; ln -sfn /etc .vscode;"
        " mv .vscode .vscode.old; ln -s ../outside .vscode; echo DONE"
    )
    for project in (sandbox.full, sandbox.empty):
        sandbox.attack(project, script)
        path = project.root / ".vscode"
        assert not path.is_symlink(), f"{path} became a symlink on the host"
        assert not (project.root / ".vscode.old").exists()
    assert (sandbox.full.root / ".vscode/tasks.json").read_text() == '{"host": true}\n'


def test_created_on_the_host_while_stopped_then_restarted(sandbox: Sandbox) -> None:
    project = sandbox.empty
    engine_cli(sandbox.engine, "stop", "-t", "0", project.container)
    write(project.root, {".vscode/settings.json": '{"host": 1}', ".idea/x.xml": "<host/>"})
    project.ok("up", "--yes")  # starts the stopped container again
    assert project.container_state() == "running"
    paths = {".vscode/settings.json": False, ".idea/x.xml": False, ".envrc": False}
    if sandbox.mode != "sync":  # no .envrc placeholder in a bind mount (NOT_PLACED_WHEN_BOUND)
        paths = {k: v for k, v in paths.items() if k not in NOT_PLACED_WHEN_BOUND}
    output = sandbox.attack(project, attack_script(paths))
    assert _changed(output) == []
    assert (project.root / ".vscode/settings.json").read_text() == '{"host": 1}\n'
    assert (project.root / ".idea/x.xml").read_text() == "<host/>\n"
    # The first project, restarted by the engine alone: `alca run` refuses it until `up`
    # has checked it again (decision 0010), and then it is still protected.
    engine_cli(sandbox.engine, "restart", "-t", "0", sandbox.full.container)
    refused = sandbox.full.alca("run", "true")
    assert refused.returncode == 77, str(refused)
    sandbox.full.ok("up", "--yes")
    output = sandbox.attack(sandbox.full, attack_script({".git/hooks": True, ".envrc": False}))
    assert _changed(output) == []
    root = sandbox.full.root
    assert (root / ".git/hooks/pre-commit").read_text().strip() == HOST_HOOK
    hooks = [p.name for p in (root / ".git/hooks").iterdir() if not p.name.endswith(".sample")]
    assert hooks == ["pre-commit"]
    assert (root / ".envrc").read_text() == "export HOST=1\n"


# --- everyday git inside, with .git/config and .git/hooks read-only ----------------------------

#: The host's git and what it links against, mounted read-only (the images are busybox).
GIT_MOUNTS = ("/usr/bin/git", "/usr/lib/git-core", "/lib64", "/lib/x86_64-linux-gnu")

EVERYDAY_GIT = r"""
set -e
cd /workspace
g() { git -c user.name=agent -c user.email=agent@example.invalid "$@"; }
g status --short
echo change >> src/a.txt
g diff --stat
g add -A
g commit -qm "agent change"
g branch feature
g checkout -q feature
echo more > src/b.txt
g add src/b.txt
g commit -qm "on feature"
g checkout -q main
g log --oneline --all | wc -l
g stash list
echo EVERYDAY-OK
if git config user.name someone 2>/dev/null; then echo CONFIG-WRITTEN; fi
if cp src/a.txt .git/hooks/post-commit 2>/dev/null; then echo HOOK-INSTALLED; fi
true
"""


def test_everyday_git_keeps_working(sandbox: Sandbox) -> None:
    missing = [m for m in GIT_MOUNTS if not os.path.exists(m)]
    if missing:
        pytest.skip(f"cannot lend the host's git to the busybox image: no {missing}")
    mounts = "mounts = [" + ", ".join(f'"{m}:{m}:ro"' for m in GIT_MOUNTS) + "]\n"
    text = config(sandbox.engine, exclude=EXCLUDE if sandbox.mode == "sync" else "", mounts=mounts)
    project = sandbox.workspace.project("gitwork", text, {"src/a.txt": "a"})
    make_repo(project.root)
    config_before = (project.root / ".git/config").read_text()
    project.ok("up", "--yes")
    outcome = project.alca("run", "sh", "-c", EVERYDAY_GIT, timeout=120)
    assert "EVERYDAY-OK" in outcome.stdout, str(outcome)
    assert "CONFIG-WRITTEN" not in outcome.stdout
    assert "HOOK-INSTALLED" not in outcome.stdout
    if sandbox.mode == "sync":
        project.flush()
    log = host_git(project.root, "log", "--oneline", "--all")
    assert "agent change" in log and "on feature" in log, log
    assert (project.root / ".git/config").read_text() == config_before
    assert not (project.root / ".git/hooks/post-commit").exists()
