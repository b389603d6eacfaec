"""File sync through `alca` (issue #5's acceptance), against Docker and Podman.

One sandbox per engine (module scope) serves the tests up to the final `down`; they run in
file order and each leaves it usable for the next. Its project hides `.env`, `secrets/` and
`*.pem` (workdir_exclude) and has a second, read-only mount hiding `*.key`; `commands.up`
copies synced files, so it proves they were there before it ran. Every `alca` runs with a
hostile `~/.mutagen.yml` and hostile `MUTAGEN_*` variables (see sync_helpers).

Agent-side actions go through `alca run`; the tests observe the container with
`<engine> exec` and alcatraz's Mutagen with `mutagen` pointed at alcatraz's data directory,
which they also use to pause a session, the only way to make a conflict happen for sure.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from alcatraz.network.plan import project_key
from alcatraz.runtime.cli_compat import CliRuntime
from tests.integration.lifecycle.helpers import (
    engine_cli,
    names_with_project_path,
    networks_with_project_path,
)
from tests.integration.sync_helpers import (
    SyncProject,
    SyncWorkspace,
    config,
    host_tree,
    path_without,
    wait_for,
    write,
)

pytestmark = pytest.mark.integration

EXCLUDE = '[".env", "secrets/", "*.pem"]'
SETUP = "cat /workspace/seed.txt /data/conf.txt > /tmp/setup-saw; ls -a /workspace > /tmp/setup-ls"
IGNORES_0 = [".env", "secrets/", "*.pem", "/.alca.toml", "/.alca.*.toml"]
FILES = {
    "seed.txt": "seed",  # *.txt is what the hostile ~/.mutagen.yml would hide
    ".envrc": "visible",
    "sub/ok.txt": "ok",
    "KEY.PEM": "case-sensitive, visible",
    ".env": "SECRET=host",
    "secrets/token": "tok",
    "sub/.env": "deep secret",
    "sub/secrets/x": "deep",
    "sub/a.pem": "pem",
}
HIDDEN = {".env", "secrets", "secrets/token", "sub/.env", "sub/secrets", "sub/secrets/x"}
HIDDEN |= {"sub/a.pem"}
DATA = {"conf.txt": "conf v1", "keep.txt": "keep", "id.key": "private key"}

USAGE = 64
UNAVAILABLE = 69
CONFIG_ERROR = 78


def visible(files: dict[str, str]) -> dict[str, str | None]:
    tree: dict[str, str | None] = {"sub": None}
    tree.update({k: v for k, v in files.items() if k not in HIDDEN})
    return tree


class Sandbox:
    def __init__(self, workspace: SyncWorkspace, project: SyncProject, data: Path) -> None:
        self.workspace = workspace
        self.project = project
        self.data = data
        self.up: str = ""
        self.restart_seconds: float | None = None


@pytest.fixture(scope="module")
def sandbox(engine: CliRuntime) -> Iterator[Sandbox]:
    workspace = SyncWorkspace(engine.executable)
    try:
        data = workspace.base / "data"
        write(data, DATA)
        mounts = (
            f'\n[[mounts]]\nsource = "{data}"\ntarget = "/data"\nreadonly = true\n'
            'exclude = ["*.key"]\n'
        )
        text = config(engine.executable, exclude=EXCLUDE, up=SETUP, mounts=mounts)
        project = workspace.project("p", text, FILES)
        box = Sandbox(workspace, project, data)
        project.ok("trust", "--yes")
        box.up = project.ok("up").output
        yield box
    finally:
        workspace.cleanup()


# --- excluded files, and what commands.up sees ---------------------------------------------


def test_up_hides_excluded_files_and_setup_sees_synced_ones(sandbox: Sandbox) -> None:
    project = sandbox.project
    inside = project.inside_tree("/workspace")
    inside.pop(".alca.toml")  # bind-mounted read-only, not synced
    for name in (".alca", ".devcontainer", ".git", ".idea", ".vscode"):
        # Missing protected paths: empty read-only placeholders from alcatraz's own
        # directory (docs/security.md, "Files the host executes"), never synced.
        assert inside.pop(name) is None, name
    assert inside == visible(FILES)
    assert project.inside_tree("/data") == {"conf.txt": "conf v1", "keep.txt": "keep"}
    # Synced and flushed before commands.up: it read a synced file of each mount.
    assert project.inside("cat /tmp/setup-saw") == "seed\nconf v1\n"
    assert ".env" not in project.inside("cat /tmp/setup-ls").split()
    lines = sandbox.up.splitlines()
    syncing = [i for i, line in enumerate(lines) if "Setting up file sync for" in line]
    assert len(syncing) == 2, sandbox.up
    waiting = lines.index("→ Waiting for file sync to complete...")
    assert max(syncing) < waiting < lines.index("→ Running setup command...")


def test_sessions_per_project_and_mount_untouched_by_user_mutagen_config(
    sandbox: Sandbox,
) -> None:
    project, workspace = sandbox.project, sandbox.workspace
    key = project_key(project.project_id)
    sessions = {s["name"]: s for s in project.sessions()}
    assert sorted(sessions) == [f"alca-{key}-0", f"alca-{key}-1"]
    for index, (target, mode, ignores, source) in enumerate(
        [
            ("/workspace", "two-way-safe", IGNORES_0, project.root),
            ("/data", "one-way-replica", ["*.key"], sandbox.data),
        ]
    ):
        session = sessions[f"alca-{key}-{index}"]
        assert session["labels"] == {"alca-project": project.project_id, "alca-mount": str(index)}
        assert session["mode"] == mode
        paths = session["ignore"]["paths"]
        assert paths[: len(ignores)] == ignores  # nothing added by ~/.mutagen.yml
        extras = paths[len(ignores) :]  # the workspace's protected names (protect.py)
        assert all(p.startswith("/") for p in extras), extras
        assert ("/.git/hooks" in extras) if index == 0 else extras == [], extras
        assert session["alpha"]["path"] == str(source)
        assert session["beta"]["path"] == target
        assert session["beta"]["host"] == project.container
    # The hostile MUTAGEN_* variables went nowhere: no daemon in MUTAGEN_DATA_DIRECTORY, the
    # fake `docker` in MUTAGEN_DOCKER_PATH never ran, the engine's own CLI is used.
    assert not (workspace.hostile / "data").exists()
    assert not workspace.fake_docker_ran
    link = workspace.data_dir / "bin" / "docker"
    assert os.path.realpath(link) == os.path.realpath(str(shutil.which(project.engine)))
    # status shows each session's health.
    status = project.ok("status")
    assert "File sync: 2/2 session(s) healthy, 0 conflicts" in status.stdout
    assert "  - mount 0: watching [ok]" in status.stdout
    assert "  - mount 1: watching [ok]" in status.stdout
    report = project.ok("status", "--json").stdout
    assert '"healthy": false' not in report and report.count('"healthy": true') == 2


def test_excluded_files_created_later_on_host_never_appear_inside(sandbox: Sandbox) -> None:
    project = sandbox.project
    write(
        project.root,
        {
            ".env": "SECRET=changed",
            "secrets/new-token": "late",
            "later/.env": "late",
            "later/secrets/token": "late",
            "later/cert.pem": "late",
            "later/control.txt": "arrived",
        },
    )
    write(sandbox.data, {"late.key": "late", "late-control.txt": "arrived"})
    # The watcher delivers the control files; excluded ones must not come along, then or
    # after a full cycle.
    wait_for(lambda: project.inside_exists("/workspace/later/control.txt"), "host edit inside")
    wait_for(lambda: project.inside_exists("/data/late-control.txt"), "host edit in /data")
    project.flush()
    inside = project.inside_tree("/workspace")
    assert inside["later/control.txt"] == "arrived"
    assert not {".env", "secrets", "later/.env", "later/secrets", "later/cert.pem"} & set(inside)
    data = project.inside_tree("/data")
    assert data["late-control.txt"] == "arrived" and "late.key" not in data


def test_files_created_inside_at_excluded_paths_never_reach_host(sandbox: Sandbox) -> None:
    project = sandbox.project
    before = host_tree(project.root)
    project.sh(
        "echo INSIDE=1 > .env && mkdir -p secrets inner/secrets && echo i > secrets/planted "
        "&& echo i > inner/secrets/s && echo i > inner/x.pem && echo i > inner/.env "
        "&& printf '[commands]\\nup = \"evil\"\\n' > .alca.local.toml "
        "&& echo ok > inner/control.txt"
    )
    project.flush()
    after = host_tree(project.root)
    assert after.pop("inner/control.txt") == "ok"
    assert after.pop("inner") is None
    assert after == before  # .env untouched, nothing under secrets/, no .alca.local.toml
    # The container keeps its own copies.
    assert project.inside("cat .env .alca.local.toml | head -1") == "INSIDE=1\n"


def test_edits_deletes_and_renames_flow_both_ways(sandbox: Sandbox) -> None:
    project = sandbox.project
    flow = project.root / "flow"
    write(
        flow,
        {
            "h-edit.txt": "v1",
            "h-delete.txt": "x",
            "h-rename.txt": "moving",
            "c-edit.txt": "v1",
            "c-delete.txt": "x",
            "c-dir/f.txt": "in dir",
        },
    )
    project.flush()
    assert project.inside_tree("/workspace/flow") == host_tree(flow)
    write(flow, {"h-edit.txt": "v2", "h-new/deep.txt": "new"})
    (flow / "h-delete.txt").unlink()
    (flow / "h-rename.txt").rename(flow / "h-renamed.txt")
    project.sh(
        "cd flow && echo v2 > c-edit.txt && rm c-delete.txt && mv c-dir c-moved "
        "&& echo made > c-new.txt"
    )
    project.flush()
    expected = {
        "h-edit.txt": "v2",
        "h-new": None,
        "h-new/deep.txt": "new",
        "h-renamed.txt": "moving",
        "c-edit.txt": "v2",
        "c-moved": None,
        "c-moved/f.txt": "in dir",
        "c-new.txt": "made",
    }
    assert host_tree(flow) == expected
    assert project.inside_tree("/workspace/flow") == expected
    assert project.check_json()["count"] == 0


def test_read_only_synced_mount_cannot_change_the_host(sandbox: Sandbox) -> None:
    project = sandbox.project
    before = host_tree(sandbox.data)
    project.sh(
        "cd /data && echo tampered > conf.txt && rm keep.txt && echo new > planted.txt "
        "&& echo inside > inside.key"
    )
    project.flush()
    assert host_tree(sandbox.data) == before
    inside = project.inside_tree("/data")
    # The replica is restored from the host; excluded content inside is left alone.
    assert inside["conf.txt"] == "conf v1" and inside["keep.txt"] == "keep"
    assert "planted.txt" not in inside and inside["inside.key"] == "inside"
    write(sandbox.data, {"conf.txt": "conf v2"})
    project.flush()
    assert project.inside("cat /data/conf.txt") == "conf v2\n"


# --- a stopped container ---------------------------------------------------------------------


def test_sessions_survive_a_stopped_container(sandbox: Sandbox) -> None:
    project = sandbox.project
    identifiers = {s["name"]: s["identifier"] for s in project.sessions()}
    assert engine_cli(project.engine, "stop", "-t", "1", project.container).returncode == 0
    assert "Container: Stopped" in project.ok("status").stdout
    write(project.root, {"restart/while-stopped.txt": "queued"})
    time.sleep(1)
    start = time.monotonic()
    up = project.ok("up")
    sandbox.restart_seconds = time.monotonic() - start
    assert "Starting stopped container" in up.output
    assert "Setting up file sync" not in up.output  # the same sessions, not new ones
    assert {s["name"]: s["identifier"] for s in project.sessions()} == identifiers
    assert project.inside("cat /workspace/restart/while-stopped.txt") == "queued\n"
    project.sh("echo back > restart/from-inside.txt")
    project.flush()
    assert (project.root / "restart/from-inside.txt").read_text() == "back\n"
    assert project.check_json()["count"] == 0  # no false conflicts after the restart
    assert "File sync: 2/2 session(s) healthy, 0 conflicts" in project.ok("status").stdout


def test_up_after_a_stop_reconnects_the_sessions_promptly(sandbox: Sandbox) -> None:
    if sandbox.restart_seconds is None:
        pytest.skip("test_sessions_survive_a_stopped_container did not get that far")
    assert sandbox.restart_seconds < 6, f"alca up took {sandbox.restart_seconds:.1f} s"


# --- conflicts -------------------------------------------------------------------------------


BACKUP = re.compile(r"\(your copy was kept in (.+)\)")


def test_conflict_detected_shown_kept_and_resolved_both_ways(sandbox: Sandbox) -> None:
    project = sandbox.project
    write(project.root, {"a-local.txt": "base", "b-container.txt": "base"})
    project.flush()
    project.pause(0)
    status = project.ok("status")  # a paused session is reported as unhealthy
    assert "File sync: 1/2 session(s) healthy, 0 conflicts" in status.stdout
    assert "  - mount 0: it is paused [PROBLEM]" in status.stdout
    write(project.root, {"a-local.txt": "host", "b-container.txt": "host"})
    project.sh("echo ctr > a-local.txt && echo ctr > b-container.txt")
    project.resume(0)
    project.flush()

    # Detected, with both versions kept across further cycles.
    check = project.alca("experimental", "sync", "check")
    assert check.returncode == 1, str(check)
    assert "⚠ 2 sync conflicts need attention:" in check.stdout
    assert "2 sync conflicts found" in check.stderr
    report = project.check_json()
    assert report["count"] == 2
    found = {c["path"]: c for c in report["conflicts"]}
    assert sorted(found) == ["a-local.txt", "b-container.txt"]
    for item in found.values():
        assert (item["localState"], item["containerState"]) == ("modified", "modified")
        assert (item["mount"], item["session"]) == (0, project.session_name(0))
    project.flush()
    for name in found:
        assert (project.root / name).read_text() == "host\n"
        assert project.inside(f"cat /workspace/{name}") == "ctr\n"

    # Shown: status (banner on stderr), the run banner, down's refusal.
    status = project.ok("status")
    assert "File sync: 2/2 session(s) healthy, 2 conflicts" in status.stdout
    assert "⚠ 2 sync conflicts need attention:" in status.stderr
    assert "a-local.txt" in status.stderr and "b-container.txt" in status.stderr
    run = project.ok("run", "true")
    assert "⚠ 2 sync conflicts need attention:" in run.stderr
    assert "a-local.txt" in run.stderr and "experimental sync resolve" in run.stderr
    down = project.alca("down")
    assert down.returncode == 1, str(down)
    assert "resolve sync conflicts before stopping the container" in down.stderr
    assert project.container_state() == "running"
    assert len(project.sessions()) == 2

    # Resolving is a person's choice: refused without a terminal, nothing changed.
    blind = project.alca("experimental", "sync", "resolve")
    assert blind.returncode == USAGE, str(blind)
    assert "needs a terminal" in blind.stderr
    assert project.check_json()["count"] == 2

    # 1 = local wins for a-local.txt, 2 = container wins for b-container.txt.
    order = [c["path"] for c in report["conflicts"]]
    answers = "".join("1\n" if path == "a-local.txt" else "2\n" for path in order)
    resolve = project.alca("experimental", "sync", "resolve", tty_input=answers)
    assert resolve.returncode == 0, str(resolve)
    assert "Done: 2 resolved, 0 skipped." in resolve.stdout
    project.flush()
    assert (project.root / "a-local.txt").read_text() == "host\n"
    assert project.inside("cat /workspace/a-local.txt") == "host\n"
    assert (project.root / "b-container.txt").read_text() == "ctr\n"
    assert project.inside("cat /workspace/b-container.txt") == "ctr\n"
    # The host's losing copy was moved aside, not deleted.
    kept = BACKUP.search(resolve.stdout)
    assert kept is not None, resolve.stdout
    backup = Path(kept.group(1))
    assert backup.is_relative_to(project.state_dir / "conflict-backups")
    assert backup.name == "b-container.txt" and backup.read_text() == "host\n"
    assert project.check_json()["count"] == 0


def test_status_banner_describes_a_conflict_once(sandbox: Sandbox) -> None:
    project = sandbox.project
    project.make_conflict("c-status.txt")
    status = project.ok("status")
    resolve = project.alca("experimental", "sync", "resolve", tty_input="1\n")
    assert resolve.returncode == 0, str(resolve)
    assert project.check_json()["count"] == 0
    banner = [line for line in status.stderr.splitlines() if "c-status.txt" in line]
    assert len(banner) == 1, status.stderr
    assert banner[0].rstrip().endswith("(modified on both sides)"), banner[0]


def test_run_banner_gone_once_resolved(sandbox: Sandbox) -> None:
    project = sandbox.project
    project.make_conflict("d-banner.txt")
    assert project.alca("experimental", "sync", "check").returncode == 1  # polls
    before = project.ok("run", "true")
    resolve = project.alca("experimental", "sync", "resolve", tty_input="1\n")
    after = project.ok("run", "true")
    assert project.check_json()["count"] == 0  # also refreshes the cache for what follows
    assert resolve.returncode == 0, str(resolve)
    assert "d-banner.txt" in before.stderr, before.stderr
    assert "sync conflict" not in after.stderr, after.stderr


# --- down -------------------------------------------------------------------------------------


def test_down_force_with_a_conflict_removes_everything_but_files(sandbox: Sandbox) -> None:
    project, workspace = sandbox.project, sandbox.workspace
    host_files = host_tree(project.root)
    project.make_conflict("e-down.txt")
    assert project.alca("down").returncode == 1
    down = project.ok("down", "--force")
    assert "--force used, skipping sync conflict check" in down.stderr
    assert project.container_state() is None
    assert names_with_project_path(project.engine, project.root) == []
    assert networks_with_project_path(project.engine, project.root) == []
    # The last project of this daemon: its sessions are terminated and it is stopped.
    assert not workspace.daemon_running()
    try:
        assert workspace.sessions(start=True) == []
    finally:
        workspace.stop_daemon()
    # The host's files, including its side of the conflict, are untouched.
    assert host_tree(project.root) == {**host_files, "e-down.txt": "host"}


def test_new_sandbox_after_forced_down_has_no_stale_banner(sandbox: Sandbox) -> None:
    project = sandbox.project
    project.ok("up")
    run = project.ok("run", "true")
    down = project.alca("down")
    assert down.returncode == 0, str(down)
    assert "sync conflict" not in run.stderr, run.stderr


# --- refusals and cleanup, each with its own workspace ---------------------------------------


@pytest.fixture
def workspace(engine: CliRuntime) -> Iterator[SyncWorkspace]:
    made = SyncWorkspace(engine.executable)
    try:
        yield made
    finally:
        made.cleanup()


def nothing_created(workspace: SyncWorkspace, project: SyncProject) -> None:
    assert project.state().get("project_id") is None
    assert names_with_project_path(project.engine, project.root) == []
    assert networks_with_project_path(project.engine, project.root) == []
    assert not (workspace.alca_home / "m").exists()


def test_negated_exclude_pattern_is_rejected_at_load(workspace: SyncWorkspace) -> None:
    for name, exclude, mounts in [
        ("neg-workdir", '[".env", "!.env"]', ""),
        (
            "neg-mount",
            "",
            f'\n[[mounts]]\nsource = "{workspace.base}"\ntarget = "/x"\nexclude = ["!*.key"]\n',
        ),
    ]:
        project = workspace.project(name, config(workspace.engine, exclude=exclude, mounts=mounts))
        for args in (("trust", "--yes"), ("up",)):
            outcome = project.alca(*args)
            assert outcome.returncode == CONFIG_ERROR, str(outcome)
            assert "negated pattern" in outcome.stderr
        nothing_created(workspace, project)


def test_missing_mutagen_is_a_clear_error_and_creates_nothing(workspace: SyncWorkspace) -> None:
    project = workspace.project("nomut", config(workspace.engine, exclude=EXCLUDE), FILES)
    path, shadows = path_without("mutagen", os.environ.get("PATH", os.defpath))
    try:
        env = workspace.env(PATH=path)
        assert shutil.which("mutagen", path=path) is None
        assert shutil.which(workspace.engine, path=path) is not None
        project.ok("trust", "--yes", env=env)
        up = project.alca("up", env=env)
    finally:
        for shadow in shadows:
            shutil.rmtree(shadow)
    assert up.returncode == UNAVAILABLE, str(up)
    assert "mutagen is not installed" in up.stderr
    assert "install Mutagen 0.18.1" in up.stderr
    nothing_created(workspace, project)


def test_cleanup_terminates_only_the_orphans_sessions(workspace: SyncWorkspace) -> None:
    text = config(workspace.engine, exclude=EXCLUDE)
    orphan = workspace.project("orphan", text, FILES)
    kept = workspace.project("kept", text, FILES)
    for project in (orphan, kept):
        project.ok("trust", "--yes")
        project.ok("up")
    workspace.remember_ids()
    orphan_id, kept_id = orphan.project_id, kept.project_id
    # One daemon, sessions told apart by their project label.
    assert [s["name"] for s in workspace.sessions(orphan_id)] == [orphan.session_name(0)]
    assert [s["name"] for s in workspace.sessions(kept_id)] == [kept.session_name(0)]
    shutil.rmtree(orphan.root)  # the project is gone: its container is an orphan
    out = workspace.run_cleanup([orphan.root, kept.root])
    assert "Reason: project directory does not exist" in out
    assert kept.container not in out
    assert names_with_project_path(workspace.engine, orphan.root) == []
    assert workspace.sessions(orphan_id) == []
    assert [s["name"] for s in workspace.sessions(kept_id)] == [kept.session_name(0)]
    assert kept.container_state() == "running"
    kept.ok("down")
    assert not workspace.daemon_running()  # the last sessions went with `down`
