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
from tests.integration.isolation_helpers import Workspace, helper_workspace, sh
from tests.integration.lifecycle.helpers import Projects, config_text, engine_cli

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

    # The agent ends the container's init: the engine must not start it again by itself.
    assert project.sh("kill -9 1; sleep 5").returncode != 0 or True
    engine_cli(projects.engine, "kill", project.container_name)
    time.sleep(3)
    assert not project.container_running()

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


def test_protected_config_file_swapped_for_a_link(projects: Projects) -> None:
    loot = _host_secret(projects)
    (loot / "base.toml").write_text("# HOST FILE\n")
    top = 'extends = ["conf/base.toml"]\n'
    project = projects.new(config=config_text(projects.engine, top=top))
    (project.root / "conf").mkdir()
    (project.root / "conf" / "base.toml").write_text("# project base\n")
    project.start()
    done = project.sh(
        f"cd /workspace && mv conf conf.orig && mkdir conf && ln -s {loot}/base.toml conf/base.toml"
    )
    assert done.returncode == 0, str(done)
    engine_cli(projects.engine, "kill", project.container_name)
    refused = project.alca("up", "--yes")
    assert refused.returncode != 0, str(refused)
    assert not project.container_running()


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
    time.sleep(3)
    assert project.container_state() != "running"  # the engine left it stopped
    assert sh([name, "start", project.container_name]).returncode == 0  # someone else starts it
    refused = project.alca("run", "true")
    assert refused.returncode != 0, str(refused)
    assert "restarted without alcatraz" in refused.stderr
    assert project.status_json()["isolation"]["inside"] == "missing"
    project.up(ALCA_TEST_HOST_LAYER_ONLY="")
    assert project.alca("run", "true").returncode == 0
