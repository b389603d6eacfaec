"""What an agent does first in a synced project, on real Debian rather than busybox (issue 16).

Real Docker and Podman, both isolation layers on, egress limited to the registries, the
project synced (a secret is excluded), the Debian test image: git works inside and its
commits reach the host; `npm install` fetches a real package through the isolation, runs it,
and node_modules comes back to the host; the excluded `.env` never appears inside.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest

from tests.integration.isolation_helpers import Project, Workspace, helper_workspace, wait_for

pytestmark = pytest.mark.integration

DEBIAN = "localhost/alca-test/debian:trixie"
SYNC_WAIT = 60.0


@pytest.fixture(scope="module")
def workspace() -> Iterator[Workspace]:
    with helper_workspace("debian", ALCA_TEST_HOST_LAYER_ONLY="") as ws:
        yield ws


@pytest.fixture(scope="module")
def project(engine: object, workspace: Workspace) -> Iterator[Project]:
    engine_name = str(getattr(engine, "executable", engine))
    found = subprocess.run([engine_name, "image", "inspect", DEBIAN], capture_output=True)
    assert found.returncode == 0, f"{engine_name} has no {DEBIAN}: run scripts/setup-test-env.sh"
    project = Project(workspace, engine_name, workspace.base / f"debian-{engine_name}")
    workspace.projects.append(project)
    (project.root / ".alca.toml").write_text(
        f'image = "{DEBIAN}"\nruntime = "{engine_name}"\nworkdir_exclude = ["**/.env"]\n\n'
        '[network]\nhost-ca = true\negress = ["registry.npmjs.org"]\n'
    )
    (project.root / ".env").write_text("API_TOKEN=host-secret\n")
    (project.root / "package.json").write_text(
        json.dumps({"name": "demo", "version": "1.0.0", "private": True}) + "\n"
    )
    git = [
        "git",
        "-C",
        str(project.root),
        "-c",
        "user.name=u",
        "-c",
        "user.email=u@example.invalid",
    ]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "package.json"], check=True)
    subprocess.run([*git, "commit", "-qm", "the user's commit"], check=True)
    project.up()
    yield project
    project.ok("down")


def inside(project: Project, script: str) -> str:
    done = project.exec_alca(["sh", "-c", script])
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def host_log(project: Project) -> str:
    shown = subprocess.run(
        ["git", "-C", str(project.root), "log", "--oneline"], capture_output=True, text=True
    )
    return shown.stdout


def test_the_excluded_secret_is_not_inside(project: Project) -> None:
    listing = inside(project, "ls -a /workspace")
    assert "package.json" in listing.split(), listing  # the positive control
    assert ".env" not in listing.split(), listing


def test_git_commits_inside_and_the_host_sees_them(project: Project) -> None:
    """The user's repository (its config and hooks read-only inside): the agent commits."""
    inside(
        project,
        "cd /workspace && echo '# notes' > NOTES.md && git add NOTES.md && "
        "git -c user.name=agent -c user.email=agent@example.invalid commit -qm 'agent commit'",
    )
    assert "agent commit" in inside(project, "cd /workspace && git log --oneline")
    synced = wait_for(lambda: "agent commit" in host_log(project), SYNC_WAIT, step=0.5)
    assert synced, host_log(project)


def test_npm_install_through_the_isolation_and_back_to_the_host(project: Project) -> None:
    output = inside(
        project,
        "cd /workspace && npm install --no-audit --no-fund is-number@7.0.0 >/dev/null && "
        "node -e \"console.log(require('is-number')(5))\"",
    )
    assert output.strip() == "true", output
    installed = project.root / "node_modules" / "is-number" / "package.json"
    assert wait_for(installed.exists, SYNC_WAIT, step=0.5)
    assert "is-number" in (project.root / "package.json").read_text()
