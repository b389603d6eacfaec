"""Every agent preset installs and starts its agent in an isolated sandbox (issue 16).

Real Docker and Podman, both isolation layers on, the preset's egress list in force, the
local Debian images (scripts/build-debian-image.sh). What a user does: `alca init --agent
X`, point `image` at a local image in `.alca.local.toml` (there is no image registry here)
with `host-ca = true` (the registries are reached through this machine's TLS-inspecting
egress), `alca up` runs the preset's own install step unchanged, then the agent: its
version, its non-interactive mode up to the error it prints for its unreachable API (no
model API is reachable here), its interactive UI's first screen under a terminal, an API
key passed by name, and what survives `down` + `up`. The host agent's config (a fake HOME
with every file the preset mounts) must be exactly as it was, but for the login file the
preset makes writable.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from alcatraz.init.agents import AgentPreset, PresetMount, load_preset
from tests.integration.agent_helpers import (
    AGENTS,
    CRASHES,
    AgentCase,
    first_screen,
    host_file_text,
    is_file_source,
    run_until,
    snapshot,
)
from tests.integration.isolation_helpers import ALCA, Project, Workspace, helper_workspace

pytestmark = pytest.mark.integration

UP_TIMEOUT = 900.0
HOME_MARKER = "/root/.alca-test-marker"


def image_ready(engine: str, image: str) -> None:
    done = subprocess.run([engine, "image", "inspect", image], capture_output=True, check=False)
    assert done.returncode == 0, f"{engine} has no {image}: run scripts/setup-test-env.sh"


def host_mounts(preset: AgentPreset) -> list[PresetMount]:
    return [m for m in preset.mounts if not m.private]


def make_host_config(home: Path, case: AgentCase) -> None:
    """Every host file and directory the preset mounts, as a user who ran the agent has."""
    for mount in host_mounts(load_preset(case.name)):
        path = home / mount.source.removeprefix("~/")
        if mount.login:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(case.login)
            path.chmod(0o600)
        elif is_file_source(mount.source):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(host_file_text(path.name))
        else:
            path.mkdir(parents=True, exist_ok=True)
            (path / "host-entry.md").write_text("run by the host agent\n")


@pytest.fixture(scope="module")
def workspace() -> Iterator[Workspace]:
    # Both layers on (the host table and the one in the sandbox's namespace), the host's
    # own resolver: what a user has.
    with helper_workspace("agents", ALCA_TEST_HOST_LAYER_ONLY="") as ws:
        for case in AGENTS:
            make_host_config(ws.home, case)
        yield ws


@pytest.fixture(scope="module")
def engine_name(engine: object) -> str:
    return str(getattr(engine, "executable", engine))


@dataclass
class AgentSandbox:
    case: AgentCase
    preset: AgentPreset
    project: Project
    first_up: str
    host_before: dict[str, str]

    def env(self, **extra: str) -> dict[str, str]:
        return self.project.ws.env(**extra)

    def run(self, *argv: str, **env: str) -> tuple[int, str]:
        done = self.project.alca("run", *argv, timeout=300, **env)
        return done.returncode, done.output


@pytest.fixture(scope="module", params=AGENTS, ids=str)
def sandbox(
    request: pytest.FixtureRequest, engine_name: str, workspace: Workspace
) -> Iterator[AgentSandbox]:
    case: AgentCase = request.param
    image_ready(engine_name, case.image)
    project = Project(workspace, engine_name, workspace.base / f"{case.name}-{engine_name}")
    workspace.projects.append(project)
    (project.root / "README.md").write_text("a project an agent works on\n")
    subprocess.run(["git", "init", "-q", str(project.root)], check=True)
    project.ok("init", "--agent", case.name)
    (project.root / ".alca.local.toml").write_text(
        f'image = "{case.image}"\nruntime = "{engine_name}"\n\n[network]\nhost-ca = true\n'
    )
    before = snapshot(workspace.home)
    project.ok("trust", "--yes")
    up = project.alca("up", timeout=UP_TIMEOUT, **{case.key: "alca-test-at-create"})
    assert up.returncode == 0, str(up)
    yield AgentSandbox(case, load_preset(case.name), project, up.output, before)
    project.ok("down")


def test_up_runs_the_presets_install_and_the_agent_prints_its_version(
    sandbox: AgentSandbox,
) -> None:
    case = sandbox.case
    assert re.search(case.installed, sandbox.first_up), sandbox.first_up[-3000:]
    assert "Egress limited to" in sandbox.first_up, sandbox.first_up[:2000]
    status, output = sandbox.run(case.name, "--version")
    print(f"\n{case.name} in {case.image} on {sandbox.project.engine}: {output.strip()}")
    assert status == 0, output
    assert re.search(case.version_pattern, output, re.MULTILINE), output


def test_non_interactive_mode_starts_and_fails_on_its_api_call(sandbox: AgentSandbox) -> None:
    """Its own error for the unreachable API: not a crash, not a missing dependency."""
    case = sandbox.case
    watched = run_until(
        [*ALCA, "run", "timeout", "150", *case.headless],
        f"{case.api_error}|{CRASHES.pattern}",
        cwd=sandbox.project.root,
        env=sandbox.env(**{case.key: "alca-test-key"}),
        limit=180,
    )
    tail = watched.output[-3000:]
    print(f"\n{case.name} non-interactive ({watched.seconds:.1f} s):\n{tail[-600:]}")
    assert not CRASHES.search(watched.output), tail
    assert watched.matched, tail


def test_an_api_key_passed_by_name_reaches_the_agent_and_is_written_nowhere(
    sandbox: AgentSandbox,
) -> None:
    key = sandbox.case.key
    status, output = sandbox.run("printenv", key, **{key: "alca-test-at-run"})
    assert status == 0 and output.strip() == "alca-test-at-run", output
    for config in sandbox.project.root.glob(".alca*.toml"):
        assert "alca-test-at" not in config.read_text(), config


def test_the_interactive_ui_draws_its_first_screen(sandbox: AgentSandbox) -> None:
    case = sandbox.case
    watched = first_screen(
        [*ALCA, "run", case.name],
        case.screen,
        cwd=sandbox.project.root,
        env=sandbox.env(**{case.key: "alca-test-key"}),
        limit=90,
    )
    print(f"\n{case.name} first screen ({watched.seconds:.1f} s):\n{watched.output}")
    assert not CRASHES.search(watched.output), watched.output
    assert watched.matched, watched.output


def test_status_names_the_preset(sandbox: AgentSandbox) -> None:
    output = sandbox.project.ok("status").stdout
    assert f"Agent: {sandbox.preset.label}" in output, output
    assert sandbox.preset.unrestricted in output, output


def test_writes_inside_never_reach_the_host_agents_config(sandbox: AgentSandbox) -> None:
    """Every read-only mount refuses a write from inside; only the login file changes."""
    refused: list[str] = []
    for mount in host_mounts(sandbox.preset):
        if mount.login:
            continue
        target = mount.target if is_file_source(mount.source) else f"{mount.target}/planted"
        status, output = sandbox.run("sh", "-c", f"echo planted > {target}")
        if status == 0:
            refused.append(f"{target} was writable: {output}")
    assert not refused, refused
    home = sandbox.project.ws.home
    logins = {str(Path(m.source.removeprefix("~/"))) for m in sandbox.preset.mounts if m.login}
    after = snapshot(home)
    changed = {
        path
        for path in set(sandbox.host_before) | set(after)
        if sandbox.host_before.get(path) != after.get(path) and path not in logins
    }
    assert not changed, sorted(changed)


def test_down_and_up_keep_the_agent_and_its_login(sandbox: AgentSandbox) -> None:
    case, preset = sandbox.case, sandbox.preset
    login = next((m for m in preset.mounts if m.login), None)
    private = next((m for m in preset.mounts if m.private), None)
    marks = [HOME_MARKER] + ([f"{private.target}/.alca-test-marker"] if private else [])
    script = " && ".join(f"echo kept > {mark}" for mark in marks)
    if login is not None:
        script += f" && echo '{json.dumps({'refreshed': case.name})}' > {login.target}"
    status, output = sandbox.run("sh", "-c", script)
    assert status == 0, output
    sandbox.project.ok("down")
    again = sandbox.project.alca("up", timeout=UP_TIMEOUT)
    assert again.returncode == 0, str(again)
    assert not re.search(case.installed, again.output), "reinstalled:\n" + again.output[-2000:]
    status, output = sandbox.run(case.name, "--version")
    assert status == 0 and re.search(case.version_pattern, output, re.MULTILINE), output
    for mark in marks:
        status, output = sandbox.run("cat", mark)
        assert status == 0 and output.strip() == "kept", (mark, output)
    if login is not None:
        host_login = sandbox.project.ws.home / login.source.removeprefix("~/")
        assert json.loads(host_login.read_text()) == {"refreshed": case.name}
        host_login.write_text(case.login)
