"""One running sandbox per engine, checked from outside (status, list, inspect) and from
inside (`alca run`). Every check here leaves the sandbox as it found it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from alcatraz.runtime.cli_compat import CliRuntime
from tests.integration.lifecycle.helpers import (
    DEFAULT_CAP_EFF,
    ENGINE_NAMES,
    Outcome,
    Project,
    Projects,
    engine_cli,
    free_port,
    run_cleanup,
)

pytestmark = pytest.mark.integration

MEMORY_BYTES = 64 * 1024 * 1024
NANO_CPUS = 500_000_000
DEFAULT_PIDS_LIMIT = 4096

LOCAL_INCLUDE = '[envs]\nFROM_LOCAL = "local-file"\n'


def shared_config(engine: str, port: int) -> str:
    return f"""\
image = "alpine:3.21"
runtime = "{engine}"
includes = ["./.alca.*.toml"]
mounts = [".alca.mounts/data:/data"]

[commands]
up = "echo setup-ran >> /workspace/setup.log"
enter = \"\"\"
export ALCA_TEST=integration
\"\"\"

[resources]
memory = "64m"
cpus = 0.5

[envs]
LITERAL = "baked"
FROZEN = "${{ALCA_IT_FROZEN}}"
LIVE = {{ value = "${{ALCA_IT_LIVE}}", override_on_enter = true }}

[network]
lan-access = ["*"]
ports = ["127.0.0.1:{port}:8080"]
"""


@dataclass
class Shared:
    projects: Projects
    project: Project
    port: int
    up: Outcome

    @property
    def subdir(self) -> Path:
        return self.project.root / "src" / "pkg"


@pytest.fixture(scope="module")
def shared(engine: CliRuntime) -> Iterator[Shared]:
    projects = Projects(engine.executable)
    try:
        port = free_port()
        project = projects.new("shared", config=shared_config(engine.executable, port))
        (project.root / "src" / "pkg").mkdir(parents=True)
        (project.root / ".alca.local.toml").write_text(LOCAL_INCLUDE)
        project.approve()
        up = project.ok(
            "up", env=project.env(ALCA_IT_FROZEN="at-creation", ALCA_IT_LIVE="at-creation")
        )
        yield Shared(projects, project, port, up)
    finally:
        projects.cleanup()


# --- status and list -------------------------------------------------------------------------


def test_up_created_the_container(shared: Shared) -> None:
    name = shared.project.container_name
    assert f"→ Creating container: {name}" in shared.up.stdout
    assert "→ Running setup command..." in shared.up.stdout
    assert shared.up.stdout.rstrip().endswith("✓ Environment ready")
    assert shared.project.container_running()


def test_status_text_from_root_and_from_a_subdirectory(shared: Shared) -> None:
    project = shared.project
    for cwd in (project.root, shared.subdir):
        lines = project.ok("status", cwd=cwd).stdout.splitlines()
        assert f"Config: {project.config_path}" in lines
        assert f"Runtime: {ENGINE_NAMES[project.engine]}" in lines
        assert "Container: Running" in lines
        assert f"  Name:  {project.container_name}" in lines
        assert f"  ID:    {project.container_id()}" in lines
        assert "Run 'alca run <command>' to execute commands." in lines
        assert "Configuration has changed" not in "\n".join(lines)


def test_status_json(shared: Shared) -> None:
    report = shared.project.status_json(cwd=shared.subdir)
    assert report["initialized"] is True
    assert report["approved"] is True
    assert report["runtime"] == ENGINE_NAMES[shared.project.engine]
    assert report["project_id"] == shared.project.state()["project_id"]
    assert report["container"]["state"] == "running"
    assert report["container"]["name"] == shared.project.container_name
    assert report["container"]["id"] == shared.project.container_id()
    assert report["drift"] == []


def test_list_text_and_json(shared: Shared) -> None:
    project = shared.project
    project_id = project.state()["project_id"]
    lines = project.ok("list").stdout.splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "PROJECT", "ID", "PROJECT", "PATH", "CREATED"]
    rows = [line.split() for line in lines[1:]]
    mine = [row for row in rows if row[0] == project.container_name]
    assert len(mine) == 1
    assert mine[0][1:4] == ["running", project_id[:12], str(project.root)]
    entries = json.loads(project.ok("list", "--json").stdout)
    [entry] = [e for e in entries if e["name"] == project.container_name]
    assert entry["status"] == "running"
    assert entry["project_id"] == project_id
    assert entry["project_path"] == str(project.root)
    assert entry["runtime"] == ENGINE_NAMES[project.engine]


def test_second_up_reuses_and_does_not_rerun_commands_up(shared: Shared) -> None:
    project = shared.project
    before = project.container_id()
    again = project.ok("up")
    assert f"→ Container already running: {project.container_name}" in again.stdout
    assert "Running setup command" not in again.stdout
    assert project.container_id() == before
    assert (project.root / "setup.log").read_text() == "setup-ran\n"


def test_cleanup_finds_no_orphan_here(shared: Shared) -> None:
    """Upstream test_cleanup_no_orphans (seeing only this project: see test_cleanup.py)."""
    project = shared.project
    assert run_cleanup(shared.projects, [project.root], yes=True) == ""
    assert project.container_running()


# --- alca run --------------------------------------------------------------------------------


def test_run_from_a_subdirectory_maps_the_working_directory(shared: Shared) -> None:
    project = shared.project
    assert project.ok("run", "pwd", cwd=shared.subdir).stdout == "/workspace/src/pkg\n"
    assert project.ok("run", "pwd").stdout == "/workspace\n"
    assert project.ok("run", "echo", "hello", cwd=shared.subdir).stdout == "hello\n"


def test_enter_command_runs_before_the_command(shared: Shared) -> None:
    env_lines = shared.project.ok("run", "env").stdout.splitlines()
    assert "ALCA_TEST=integration" in env_lines


def test_arguments_reach_the_command_verbatim(shared: Shared) -> None:
    tricky = 'it\'s $HOME `id` "q" ; a b'
    assert shared.project.ok("run", "printf", "%s", tricky).stdout == tricky


def test_exit_code_passes_through(shared: Shared) -> None:
    project = shared.project
    assert project.sh("exit 7").returncode == 7
    missing = project.alca("run", "no-such-command-here")
    assert missing.returncode == 127, str(missing)  # the enter shell's "not found"


def test_envs_literal_frozen_at_creation_and_live_on_each_run(shared: Shared) -> None:
    project = shared.project
    script = 'printf "%s|%s|%s|%s" "$LITERAL" "$FROZEN" "$LIVE" "$FROM_LOCAL"'
    first = project.sh(script, env=project.env(ALCA_IT_FROZEN="changed", ALCA_IT_LIVE="run-1"))
    assert first.stdout == "baked|at-creation|run-1|local-file", str(first)
    second = project.sh(script, env=project.env(ALCA_IT_LIVE="run-2"))
    assert second.stdout == "baked|at-creation|run-2|local-file", str(second)
    unset = project.sh(script)  # an unset host variable leaves the creation value
    assert unset.stdout == "baked|at-creation|at-creation|local-file", str(unset)


def test_config_files_are_read_only_inside(shared: Shared) -> None:
    project = shared.project
    local = project.root / ".alca.local.toml"
    before = {path: path.read_bytes() for path in (project.config_path, local)}
    for inside in ("/workspace/.alca.toml", "/workspace/.alca.local.toml"):
        appended = project.sh(f"echo '[hooks]' >> {inside}")
        assert appended.returncode != 0, str(appended)
        assert "Read-only file system" in appended.stderr
        replaced = project.sh(f"echo 'image = \"evil\"' > {inside}.new && mv {inside}.new {inside}")
        assert replaced.returncode != 0, str(replaced)
        removed = project.sh(f"rm -f {inside}")
        assert removed.returncode != 0, str(removed)
    project.sh("rm -f /workspace/.alca.toml.new /workspace/.alca.local.toml.new")
    assert {path: path.read_bytes() for path in before} == before
    assert (
        project.ok("run", "cat", "/workspace/.alca.toml").stdout
        == before[project.config_path].decode()
    )


def test_project_and_extra_mount_are_writable(shared: Shared) -> None:
    project = shared.project
    project.ok("run", "sh", "-c", "echo from-inside > /data/note && echo ws > /workspace/note")
    assert (project.root / ".alca.mounts" / "data" / "note").read_text() == "from-inside\n"
    assert (project.root / "note").read_text() == "ws\n"


def test_capabilities_and_no_new_privs_inside(shared: Shared) -> None:
    status = shared.project.ok("run", "cat", "/proc/self/status").stdout
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    assert int(fields["CapEff"], 16) == DEFAULT_CAP_EFF
    assert int(fields["CapBnd"], 16) == DEFAULT_CAP_EFF
    assert fields["NoNewPrivs"].strip() == "1"


def test_an_init_process_is_pid_1(shared: Shared) -> None:
    cmdline = shared.project.ok("run", "cat", "/proc/1/cmdline").stdout.split("\0")
    assert "init" in Path(cmdline[0]).name  # docker-init / catatonit, not sleep
    assert "sleep" in cmdline


# --- what the engine recorded ----------------------------------------------------------------


def test_resources_and_hardening_read_back_from_inspect(shared: Shared) -> None:
    record = shared.project.inspect()
    assert record is not None
    host = record["HostConfig"]
    assert host["Memory"] == MEMORY_BYTES
    assert host["NanoCpus"] == NANO_CPUS
    assert host["PidsLimit"] == DEFAULT_PIDS_LIMIT
    assert host["Init"] is True
    assert host["RestartPolicy"]["Name"] in ("no", "")  # decision 0010
    assert any("no-new-privileges" in option for option in host["SecurityOpt"])
    labels = record["Config"]["Labels"]
    assert labels["alca.project.path"] == str(shared.project.root)
    assert labels["alca.project.id"] == shared.project.state()["project_id"]


def test_published_port(shared: Shared) -> None:
    project = shared.project
    shown = engine_cli(project.engine, "port", project.container_name)
    assert shown.returncode == 0, shown.stderr
    assert f"8080/tcp -> 127.0.0.1:{shared.port}" in shown.stdout
    record = project.inspect()
    assert record is not None
    assert record["HostConfig"]["PortBindings"]["8080/tcp"] == [
        {"HostIp": "127.0.0.1", "HostPort": str(shared.port)}
    ]
