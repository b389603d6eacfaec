"""Issue 13 items 1-4 and 6: the agent rewires workspace paths, then gets its sandbox restarted.

Each attack runs from inside the sandbox (`alca run`), on Docker and Podman, with the
workspace bind-mounted and synced. The engine never restarts the container by itself
(restart policy `no`), and every start through `alca up` walks the sources without
following links and compares them with the identities pinned at create (decision 0010).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from alcatraz.runtime.cli_compat import CliRuntime
from tests.integration.isolation_helpers import (
    REFUSED,
    Workspace,
    helper_workspace,
    sh,
    simulate_reboot,
    wait_for,
)
from tests.integration.lifecycle.helpers import Project, Projects, config_text, engine_cli

pytestmark = pytest.mark.integration

SYNC = 'workdir_exclude = ["secrets"]\n'


def _wait_for_link(path: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not path.is_symlink():
        assert time.monotonic() < deadline, f"{path} never became a link on the host"
        time.sleep(0.5)


def _host_secret(projects: Projects) -> Path:
    loot = projects.base / "host-only"
    loot.mkdir(exist_ok=True)
    (loot / "shadow").write_text("ROOT ONLY\n")
    loot.chmod(0o700)
    return loot


@pytest.mark.parametrize("mode", ["bind", "sync"])
@pytest.mark.parametrize("link", ["absolute", "relative-excluded", "parent"])
def test_swapped_mount_source_is_never_started(projects: Projects, mode: str, link: str) -> None:
    loot = _host_secret(projects)
    top = 'mounts = ["./data/inner:/data"]\n' + (SYNC if mode == "sync" else "")
    project = projects.new(config=config_text(projects.engine, top=top))
    (project.root / "data" / "inner").mkdir(parents=True)
    (project.root / "secrets").mkdir()
    (project.root / "secrets" / "key").write_text("EXCLUDED\n")
    project.start()
    record = project.inspect()
    assert record is not None and record["HostConfig"]["RestartPolicy"]["Name"] in ("", "no")

    if link == "absolute":
        script = f"mv data/inner data/inner.orig && ln -s {loot} data/inner"
        swapped = project.root / "data" / "inner"
    elif link == "relative-excluded":
        script = "mv data/inner data/inner.orig && ln -s ../secrets data/inner"
        swapped = project.root / "data" / "inner"
    else:  # a link in a parent directory
        script = f"mv data data.orig && mkdir -p {loot}/inner && ln -s {loot} data"
        swapped = project.root / "data"
    if mode == "sync" or link != "parent":
        done = project.sh(f"cd /workspace && {script}")
        assert done.returncode == 0, str(done)
    if mode == "sync" and link != "relative-excluded":
        # Mutagen's portable symlink mode never carries an absolute link to the host.
        time.sleep(8)
        assert not swapped.is_symlink()
        return
    if mode == "sync":
        _wait_for_link(swapped)
    elif link == "parent":
        done = project.sh(f"cd /workspace && mv data data.orig && ln -s {loot} data")
        assert done.returncode == 0, str(done)
    assert swapped.is_symlink()

    # The agent ends the container's init (which may ignore it), then it is killed from
    # outside: the engine must not start it again by itself.
    project.sh("kill -9 1")
    engine_cli(projects.engine, "kill", project.container_name)
    assert wait_for(lambda: not project.container_running(), 30), "still running"
    time.sleep(1)
    assert not project.container_running(), "the engine started it again"

    refused_run = project.sh("cat /data/shadow /data/key")
    assert refused_run.returncode != 0, str(refused_run)
    assert "ROOT ONLY" not in refused_run.stdout and "EXCLUDED" not in refused_run.stdout

    refused = project.alca("up", "--yes")
    assert refused.returncode != 0, str(refused)
    assert "symbolic link" in refused.stderr, str(refused)
    assert not project.container_running()
    assert "symbolic link" in project.alca("status").output


def test_replaced_directory_is_drift_and_not_started(projects: Projects) -> None:
    """A link created while the container is stopped, then swapped for a real directory."""
    project = projects.new(config=config_text(projects.engine, top='mounts = ["./data:/data"]\n'))
    (project.root / "data").mkdir()
    project.start()
    project.ok("run", "true")
    engine_cli(projects.engine, "stop", "-t", "1", project.container_name)
    (project.root / "data").rename(project.root / "data.orig")
    (project.root / "data").symlink_to("/etc")
    assert "symbolic link" in project.alca("up", "--yes").stderr
    (project.root / "data").unlink()
    (project.root / "data").mkdir()  # another directory: not the one pinned at create
    refused = project.alca("up", "--yes")
    assert refused.returncode != 0, str(refused)
    assert "replaced" in refused.output, str(refused)
    assert not project.container_running()
    assert "replaced since the container was created" in project.alca("status").output
    rebuilt = project.alca("up", "--yes", "-f")
    assert rebuilt.returncode == 0, str(rebuilt)


def test_ensure_sources_never_creates_through_a_link(projects: Projects) -> None:
    outside = projects.base / "outside"
    outside.mkdir()
    project = projects.new(
        config=config_text(projects.engine, top='mounts = ["./build/cache:/cache"]\n')
    )
    (project.root / "build").symlink_to(outside)
    refused = project.alca("up", "--yes")
    assert refused.returncode != 0, str(refused)
    assert "symbolic link" in refused.stderr
    assert not (outside / "cache").exists()


def _config_swapped_inside(projects: Projects, loot: Path) -> Project:
    """A project extending `conf/base.toml`, started; then the agent swaps `conf/` for a
    directory whose `base.toml` links to the host's `loot/base.toml`."""
    top = 'extends = ["conf/base.toml"]\n'
    project = projects.new(config=config_text(projects.engine, top=top))
    (project.root / "conf").mkdir()
    (project.root / "conf" / "base.toml").write_text("# project base\n")
    project.start()
    done = project.sh(
        f"cd /workspace && mv conf conf.orig && mkdir conf && ln -s {loot}/base.toml conf/base.toml"
    )
    assert done.returncode == 0, str(done)
    assert (project.root / "conf" / "base.toml").is_symlink()
    return project


def test_protected_config_file_swapped_for_a_link(projects: Projects) -> None:
    loot = _host_secret(projects)
    (loot / "base.toml").write_text("# HOST FILE\n")
    project = _config_swapped_inside(projects, loot)
    engine_cli(projects.engine, "kill", project.container_name)
    refused = project.alca("up", "--yes")
    assert refused.returncode != 0, str(refused)
    assert not project.container_running()


# --- a hostile source, then the engine restarts (a reboot) ------------------------------------


def _tree(top: Path) -> dict[str, tuple[int, bytes]]:
    """Every entry under `top` with its mode and content (a link's target): byte-identical."""
    found: dict[str, tuple[int, bytes]] = {}
    for path in sorted(top.rglob("*")):
        info = path.lstat()
        body = (
            path.read_bytes()
            if path.is_file() and not path.is_symlink()
            else str(path.readlink()).encode()
            if path.is_symlink()
            else b""
        )
        found[str(path.relative_to(top))] = (info.st_mode, body)
    return found


def _inside(project: Project, *paths: str) -> str:
    """What the sandbox's own processes read at `paths`, if the engine started it anyway."""
    if not project.container_running():
        return ""
    done = engine_cli(project.engine, "exec", project.container_name, "cat", *paths)
    return done.stdout + done.stderr


def _stays_stopped_and_refused(project: Project, named: str, canary: str, *paths: str) -> None:
    """After the restart: stopped, `run` refused without running, `up` refused naming the
    source, and the canary never readable inside."""
    wait_for(project.container_running, 10, step=0.5)
    assert canary not in _inside(project, *paths), "the engine followed the workspace link"
    assert not project.container_running(), "the engine started the sandbox by itself"
    marker = "ran-in-a-sandbox-alcatraz-did-not-start"
    run = project.sh(f"touch /workspace/{marker}; cat {' '.join(paths)}")
    assert run.returncode == REFUSED, str(run)
    assert "restarted without alcatraz (or is stopped)" in run.stderr, str(run)
    assert canary not in run.output and not (project.root / marker).exists()
    for _ in range(2):  # refused again: the refusal changes nothing
        refused = project.alca("up", "--yes")
        assert refused.returncode == REFUSED, str(refused)
        assert f"workspace path ./{named} " in refused.stderr, str(refused)
        assert canary not in refused.output
        assert not project.container_running()


@pytest.mark.parametrize("mode", ["bind", "sync"])
@pytest.mark.parametrize("swap", ["source", "parent"])
def test_swapped_source_then_engine_restart_never_started(
    projects: Projects, mode: str, swap: str
) -> None:
    """Issue 13, "a reboot simulated by restarting the engine": the agent turns a mount
    source (or a directory above it) into a link to a host directory, then the engine
    restarts (dockerd restarted; Podman's boot service run). Bind: an absolute link to a host
    directory outside the project. Sync: Mutagen carries only relative links, so the link
    points at the excluded `secrets/`, which the sandbox must never read."""
    loot = _host_secret(projects)
    (loot / "cache").mkdir()
    (loot / "cache" / "shadow").write_text("ROOT ONLY\n")
    source, target = ("data", "/data") if swap == "source" else ("build/cache", "/cache")
    top = f'mounts = ["./{source}:{target}"]\n' + (SYNC if mode == "sync" else "")
    project = projects.new(config=config_text(projects.engine, top=top))
    (project.root / source).mkdir(parents=True)
    (project.root / "secrets" / "cache").mkdir(parents=True)
    for where in ("secrets", "secrets/cache"):
        (project.root / where / "shadow").write_text("EXCLUDED\n")
    project.start()
    before = _tree(loot), _tree(project.root / "secrets")

    swapped = source.split("/")[0]
    link = str(loot) if mode == "bind" else "secrets"  # `build` and `data` are at the root
    done = project.sh(f"cd /workspace && mv {swapped} {swapped}.orig && ln -s {link} {swapped}")
    assert done.returncode == 0, str(done)
    if mode == "sync":
        _wait_for_link(project.root / swapped)
    assert (project.root / swapped).is_symlink()

    simulate_reboot(projects.engine, project.container_name, project.root)
    canary = "ROOT ONLY" if mode == "bind" else "EXCLUDED"
    _stays_stopped_and_refused(project, swapped, canary, f"{target}/shadow")
    assert (_tree(loot), _tree(project.root / "secrets")) == before


def test_protected_config_parent_swapped_then_engine_restart(projects: Projects) -> None:
    """Case 3 with a restart: `conf/`, holding a protected config file, swapped for a
    directory whose `base.toml` links to a host file. Bind only: with sync the config files
    are ignored by Mutagen and bound read-only, so the agent cannot replace them on the host."""
    loot = _host_secret(projects)
    (loot / "base.toml").write_text('# HOST CONFIG CANARY\n[envs]\nHOSTTOKEN = "s3cr3t"\n')
    before = _tree(loot)
    project = _config_swapped_inside(projects, loot)
    simulate_reboot(projects.engine, project.container_name, project.root)
    _stays_stopped_and_refused(
        project, "conf/base.toml", "HOST CONFIG CANARY", "/workspace/conf/base.toml"
    )
    # The refusal's own fix, a rebuild, never reads the host file as configuration either.
    rebuilt = project.alca("up", "-f", "--yes")
    assert rebuilt.returncode == REFUSED, str(rebuilt)
    assert "workspace path ./conf/base.toml is a symbolic link" in rebuilt.stderr
    assert "HOSTTOKEN" not in rebuilt.output and not project.container_running()
    assert _tree(loot) == before


@pytest.fixture
def ws() -> Iterator[Workspace]:
    with helper_workspace("h") as workspace:
        yield workspace


@pytest.mark.parametrize("how", ["kill-init", "engine-kill"])
def test_restart_behind_alcatraz_is_refused_and_shown(
    engine: CliRuntime, ws: Workspace, how: str
) -> None:
    """Item 6: the container restarted without alcatraz has no in-namespace layer."""
    name = engine.executable
    project = ws.project(name, f"{name[0]}rs{how[0]}")
    project.up(ALCA_TEST_HOST_LAYER_ONLY="")
    assert project.alca("run", "true").returncode == 0
    if how == "kill-init":
        project.alca("run", "kill", "1")
    else:
        sh([name, "kill", project.container_name])
    assert wait_for(lambda: project.container_state() != "running", 30), "still running"
    time.sleep(1)
    assert project.container_state() != "running"  # the engine left it stopped
    assert sh([name, "start", project.container_name]).returncode == 0  # someone else starts it
    refused = project.alca("run", "true")
    assert refused.returncode != 0, str(refused)
    assert "restarted without alcatraz" in refused.stderr
    assert project.status_json()["isolation"]["inside"] == "missing"
    project.up(ALCA_TEST_HOST_LAYER_ONLY="")
    assert project.alca("run", "true").returncode == 0
