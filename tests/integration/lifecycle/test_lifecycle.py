"""`alca` lifecycle against real engines: init, up, down, run, status, trust, the reuse and
rebuild table (reference §3.3), drift (§3.4), commands.up, hooks, the project lock, and
copied or replaced project directories (§7.1 S9)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from alcatraz import state
from tests.integration.conftest import engine_problem
from tests.integration.lifecycle.helpers import (
    DEFAULT_CAP_EFF,
    ENGINE_NAMES,
    IMAGE,
    NET_RAW_BIT,
    OTHER_IMAGE,
    Project,
    Projects,
    config_text,
    engine_cli,
    free_port,
    has_rules,
    inspect_container,
    names_with_project_path,
    networks_with_project_path,
    other_engine,
)

pytestmark = pytest.mark.integration

NOT_APPROVED = 77
REFUSED = 77


def image_of(record: dict[str, object] | None) -> str:
    assert record is not None
    config = record["Config"]
    assert isinstance(config, dict)
    return str(config["Image"])


# --- init, trust and the basic lifecycle -----------------------------------------------------


def test_init_template_then_trust_then_up(projects: Projects) -> None:
    project = projects.new()
    no_terminal = project.alca("init")
    assert no_terminal.returncode == 64
    assert "no template given" in no_terminal.stderr
    unknown = project.alca("init", "--template", "bogus")
    assert unknown.returncode == 64
    assert "unknown template" in unknown.stderr
    assert not project.config_path.exists()

    created = project.ok("init", "--template", "alpine")
    assert f"✓ Created {project.config_path}" in created.stdout
    assert ".alca.mounts/" in (project.root / ".gitignore").read_text().splitlines()
    again = project.alca("init", "--template", "alpine")
    assert again.returncode == 73
    assert "configuration file already exists" in again.stderr

    unapproved = project.alca("up")
    assert unapproved.returncode == NOT_APPROVED
    assert "has not been approved" in unapproved.stderr
    assert project.state().get("project_id") is None  # nothing was created
    project.approve()
    assert "Configuration already approved." in project.ok("trust").stdout.splitlines()

    # Offline-able: no apk in the test image; pin the engine; no LAN isolation, no file sync
    # (those have their own tests).
    text = project.config_path.read_text()
    text = "\n".join(line for line in text.splitlines() if not line.startswith("workdir_exclude"))
    text = text.replace("apk add --no-cache mise", "true")
    text = text.replace(f'image = "{IMAGE}"', f'image = "{IMAGE}"\nruntime = "{project.engine}"')
    project.config_path.write_text(text + '\n[network]\nlan-access = ["*"]\n')
    project.start()
    inside = project.ok("run", "sh", "-c", 'echo "$IS_SANDBOX $PATH"').stdout
    assert inside.startswith("1 ")
    assert "/extra-bin" in inside  # from the template's enter command
    assert (project.root / ".alca.mounts" / "extra-bin").is_dir()


def test_not_initialized(projects: Projects) -> None:
    project = projects.new()
    status = project.ok("status")
    assert status.stdout.splitlines()[0] == "Status: Not initialized"
    up = project.alca("up")
    assert up.returncode == 66
    assert "configuration not found: run 'alca init' first" in up.stderr
    assert project.alca("run", "true").returncode == 66


def test_status_before_any_up(projects: Projects) -> None:
    """Upstream test_status_not_running."""
    project = projects.new(config=config_text(projects.engine))
    status = project.ok("status")
    assert "State: Not created" in status.stdout.splitlines()
    assert "Run 'alca up' to create the container." in status.stdout
    assert "Traceback" not in status.output
    assert "Approved: No (run alca trust)" in status.stdout
    report = project.status_json()
    assert (report["project_id"], report["container"]) == (None, None)
    run = project.alca("run", "echo", "hi")
    assert run.returncode == 1
    assert "no sandbox for this project: run 'alca up' first" in run.stderr
    down = project.ok("down")
    assert "No state file found" in down.stdout


def test_lifecycle_basic(projects: Projects) -> None:
    """Upstream test_lifecycle_basic, plus exit codes and quiet mode."""
    project = projects.new(config=config_text(projects.engine))
    project.approve()
    up = project.ok("up", "-q")
    assert up.progress_lines == []
    assert up.stdout == ""
    assert "Container: Running" in project.ok("status").stdout
    assert project.ok("run", "echo", "hello").stdout == "hello\n"
    assert project.sh("exit 7").returncode == 7
    missing = project.alca("run", "no-such-command-here")  # no enter command: the engine's code
    assert missing.returncode in (126, 127), str(missing)  # Docker 20.10 says 126, Podman 127
    not_executable = project.alca("run", "/etc")
    assert not_executable.returncode == 126, str(not_executable)

    name = project.container_name
    project_id = project.state()["project_id"]
    assert networks_with_project_path(project.engine, project.root) != []
    down = project.ok("down")
    assert "✓ Container stopped" in down.stdout
    assert inspect_container(project.engine, name) is None
    assert networks_with_project_path(project.engine, project.root) == []  # nothing left behind
    assert not has_rules(project_id)
    status = project.ok("status")
    assert "Container: Not created" in status.stdout
    assert "Running" not in status.stdout
    assert project.status_json()["container"] == {"state": "not found"}
    after = project.alca("run", "echo", "hello")
    assert after.returncode == 1
    assert "run 'alca up' first" in after.stderr
    assert project.ok("down", "-q").progress_lines == []  # idempotent, and quiet


def test_approval_prompt_on_a_terminal(projects: Projects) -> None:
    project = projects.new(config=config_text(projects.engine))
    declined = project.alca("up", tty_input="n\n")
    assert declined.returncode == NOT_APPROVED
    assert "Approve this configuration? [y/N]" in declined.stdout
    accepted = project.alca("up", tty_input="y\n")
    assert accepted.returncode == 0, str(accepted)
    assert "→ Configuration approved" in accepted.stdout
    assert project.container_running()


# --- reuse and rebuild (reference §3.3) ------------------------------------------------------


def test_reuse_table_without_drift(projects: Projects) -> None:
    project = projects.new(config=config_text(projects.engine))
    project.approve()
    created = project.ok("up")
    name = project.container_name
    assert f"→ Creating container: {name}" in created.stdout
    first_id = project.container_id()

    running = project.ok("up")
    assert f"→ Container already running: {name}" in running.stdout
    assert "Creating container" not in running.stdout
    assert project.container_id() == first_id

    assert engine_cli(project.engine, "stop", "-t", "0", name).returncode == 0
    assert "Container: Stopped" in project.ok("status").stdout.splitlines()
    assert project.status_json()["container"]["state"] == "stopped"
    started = project.ok("up")
    assert f"→ Starting stopped container: {name}" in started.stdout
    assert "→ Container started" in started.stdout
    assert project.container_running()
    assert project.container_id() == first_id

    engine_cli(project.engine, "rm", "-f", name)  # removed behind alca's back: not found
    recreated = project.ok("up")
    assert f"→ Creating container: {name}" in recreated.stdout
    assert project.container_id() != first_id


def test_image_drift_keep_prompt_and_rebuild(projects: Projects) -> None:
    """Upstream test_config_drift, and every drift row of the reuse/rebuild table."""
    project = projects.new(config=config_text(projects.engine))
    project.start()
    original = project.container_id()
    image_line = f"Image: {IMAGE} → {OTHER_IMAGE}"

    project.write_config(config_text(projects.engine).replace(IMAGE, OTHER_IMAGE))
    status = project.ok("status").stdout.splitlines()
    assert "Configuration has changed since last container creation:" in status
    assert f"  {image_line}" in status
    assert "Run 'alca up -f' to rebuild with new configuration." in status
    assert project.status_json()["drift"] == [image_line]

    unapproved = project.alca("up", "-f")
    assert unapproved.returncode == NOT_APPROVED  # -f never skips the approval
    assert "The configuration changed since you last approved it" in unapproved.stderr
    assert OTHER_IMAGE in unapproved.stderr
    project.approve()

    kept = project.ok("up")  # no TTY: the answer is "no"
    lines = kept.stdout.splitlines()
    assert "Configuration has changed since last container creation:" in lines
    assert f"  {image_line}" in lines
    assert "Keeping existing container." in lines
    assert "Rebuild container with new configuration?" not in kept.stdout
    assert project.container_id() == original

    quiet = project.ok("up", "-q")  # upstream B1: this crashed
    assert quiet.progress_lines == []
    assert "Traceback" not in quiet.output
    assert project.container_id() == original

    declined = project.ok("up", tty_input="n\n")
    assert "Rebuild container with new configuration? [y/N]" in declined.stdout
    assert "Keeping existing container." in declined.stdout
    assert project.container_id() == original

    rebuilt = project.ok("up", tty_input="y\n")
    assert "→ Removing existing container for rebuild..." in rebuilt.stdout
    assert f"→ Creating container: {project.container_name}" in rebuilt.stdout
    assert inspect_container(project.engine, original) is None
    assert image_of(project.inspect()).endswith(OTHER_IMAGE)
    assert project.status_json()["drift"] == []

    project.write_config(config_text(projects.engine))
    project.approve()
    before_force = project.container_id()
    forced = project.ok("up", "-f")
    assert "→ Configuration changed, rebuilding container (-f)" in forced.stdout
    assert project.container_id() != before_force
    assert image_of(project.inspect()).endswith(IMAGE)

    no_drift = project.ok("up", "-f")  # -f only rebuilds when something changed (AGD-013)
    assert "Container already running" in no_drift.stdout
    assert "rebuilding" not in no_drift.stdout


def test_every_drift_line_in_status_and_up_then_rebuild_applies_them(projects: Projects) -> None:
    engine = projects.engine
    project = projects.new(config=config_text(engine))
    project.start()
    port = free_port()
    project.write_config(
        config_text(
            engine,
            top='workdir = "/work"\nmounts = [".alca.mounts/extra:/extra"]\ncaps = ["NET_RAW"]',
            network=f'ports = ["127.0.0.1:{port}:8080"]',
            tables='[resources]\nmemory = "96m"\ncpus = 0.5\n[envs]\nADDED = "1"\n',
        ).replace(IMAGE, OTHER_IMAGE)
    )
    expected = [
        f"Image: {IMAGE} → {OTHER_IMAGE}",
        "Mounts: changed",
        "Workdir: /workspace → /work",
        "Resources.memory: (none) → 96m",
        "Resources.cpus: (none) → 0.5",
        "Envs: changed",
        "Ports: changed",
        "Caps: +NET_RAW",
    ]
    status = project.ok("status").stdout.splitlines()
    for line in expected:
        assert f"  {line}" in status, line
    assert "Run 'alca up -f' to rebuild with new configuration." in status
    assert project.status_json()["drift"] == expected

    project.approve()
    kept = project.ok("up")
    for line in expected:
        assert f"  {line}" in kept.stdout.splitlines(), line
    assert "Keeping existing container." in kept.stdout

    project.ok("up", "-f")
    record = project.inspect()
    assert record is not None
    assert record["HostConfig"]["Memory"] == 96 * 1024 * 1024
    assert record["HostConfig"]["NanoCpus"] == 500_000_000
    shown = engine_cli(engine, "port", project.container_name).stdout
    assert f"127.0.0.1:{port}" in shown
    inside = project.ok("run", "sh", "-c", "pwd; grep CapEff /proc/self/status; echo $ADDED")
    pwd, cap_line, added = inside.stdout.splitlines()
    assert pwd == "/work"
    assert int(cap_line.split()[1], 16) == DEFAULT_CAP_EFF | NET_RAW_BIT
    assert added == "1"
    assert (project.root / ".alca.mounts" / "extra").is_dir()
    assert project.status_json()["drift"] == []


def _need_other_engine(engine: str) -> str:
    other = other_engine(engine)
    problem = engine_problem(other)
    if problem:
        pytest.skip(f"needs both engines: {problem}")
    return other


def test_runtime_change_is_drift_and_rebuild_moves_the_container(projects: Projects) -> None:
    engine = projects.engine
    other = _need_other_engine(engine)
    project = projects.new(config=config_text(engine))
    project.start()
    name = project.container_name
    project.write_config(config_text(other))
    project.approve()
    kept = project.ok("up")
    assert f"  Runtime: {ENGINE_NAMES[engine]} → {ENGINE_NAMES[other]}" in kept.stdout
    assert "Keeping existing container." in kept.stdout
    assert project.container_running(engine)
    assert project.ok("run", "echo", "still-here").stdout == "still-here\n"

    moved = project.ok("up", "-f")
    assert f"→ Runtime changed: {ENGINE_NAMES[engine]} → {ENGINE_NAMES[other]}" in moved.stdout
    assert inspect_container(engine, name) is None
    assert project.container_running(other)
    status = project.ok("status").stdout.splitlines()
    assert f"Runtime: {ENGINE_NAMES[other]}" in status
    assert "Container: Running" in status
    assert project.ok("run", "echo", "moved").stdout == "moved\n"
    project.ok("down")
    assert inspect_container(other, name) is None


def test_rebuild_into_another_engine_leaves_nothing_behind(projects: Projects) -> None:
    engine = projects.engine
    other = _need_other_engine(engine)
    project = projects.new(config=config_text(engine))
    project.start()
    project_id = project.state()["project_id"]
    project.write_config(config_text(other))
    project.approve()
    project.ok("up", "-f")
    down = project.ok("down")
    assert "Warning" not in down.stderr, str(down)
    assert networks_with_project_path(engine, project.root) == []
    assert networks_with_project_path(other, project.root) == []
    assert not has_rules(project_id)


def test_status_shows_runtime_drift(projects: Projects) -> None:
    engine = projects.engine
    other = _need_other_engine(engine)
    project = projects.new(config=config_text(engine))
    project.start()
    project.write_config(config_text(other))
    status = project.ok("status").stdout.splitlines()
    assert "Container: Running" in status
    assert f"  Runtime: {ENGINE_NAMES[engine]} → {ENGINE_NAMES[other]}" in status
    assert "Run 'alca up -f' to rebuild with new configuration." in status


def test_run_keeps_working_after_a_declined_workdir_rebuild(projects: Projects) -> None:
    project = projects.new(config=config_text(projects.engine))
    project.start()
    project.write_config(config_text(projects.engine, top='workdir = "/work"'))
    project.approve()
    assert "Keeping existing container." in project.ok("up").stdout
    ran = project.alca("run", "pwd")
    assert (ran.returncode, ran.stdout) == (0, "/workspace\n"), str(ran)


# --- commands.up -----------------------------------------------------------------------------


def test_commands_up_failure_is_retried_until_it_succeeds_then_never_again(
    projects: Projects,
) -> None:
    project = projects.new(
        config=config_text(
            projects.engine,
            tables='[commands]\nup = "echo attempt >> /workspace/setup.log; test -f ready"',
        )
    )
    log = project.root / "setup.log"
    project.approve()
    failed = project.alca("up")
    assert failed.returncode == 1, str(failed)
    assert "up command failed with exit code 1" in failed.stderr
    assert project.container_running()  # left running, as upstream
    assert log.read_text().count("attempt") == 1

    retried = project.alca("up")
    assert retried.returncode == 1
    assert "→ Running setup command..." in retried.stdout
    assert log.read_text().count("attempt") == 2

    (project.root / "ready").touch()
    project.ok("up")
    assert log.read_text().count("attempt") == 3
    plain = project.ok("up")
    assert "Running setup command" not in plain.stdout
    assert log.read_text().count("attempt") == 3


def test_commands_up_fixed_in_the_config_needs_approval_then_runs(projects: Projects) -> None:
    engine = projects.engine
    project = projects.new(config=config_text(engine, tables='[commands]\nup = "exit 3"'))
    project.approve()
    failed = project.alca("up")
    assert failed.returncode == 1
    assert "exit code 3" in failed.stderr
    project.write_config(
        config_text(engine, tables='[commands]\nup = "echo fixed > /workspace/fixed.txt"')
    )
    assert project.alca("up").returncode == NOT_APPROVED
    assert not (project.root / "fixed.txt").exists()
    project.approve()
    project.ok("up")
    assert (project.root / "fixed.txt").read_text() == "fixed\n"
    (project.root / "fixed.txt").unlink()
    project.ok("up")
    assert not (project.root / "fixed.txt").exists()


def test_commands_up_output_is_shown_even_when_quiet(projects: Projects) -> None:
    project = projects.new(
        config=config_text(projects.engine, tables='[commands]\nup = "echo preparing-things"')
    )
    project.approve()
    up = project.ok("up", "-q")
    assert "preparing-things" in up.stdout
    assert up.progress_lines == []


# --- hooks -----------------------------------------------------------------------------------


def test_hooks_run_on_the_host_in_the_project_root(projects: Projects) -> None:
    """Upstream test_hooks_run; pre_down runs while the container still exists."""
    alca = " ".join([sys.executable, "-m", "alcatraz"])
    project = projects.new(
        config=config_text(
            projects.engine,
            tables=(
                "[hooks]\n"
                'post_up = "pwd > post_up.marker"\n'
                f'pre_down = "{alca} run cat /workspace/token > pre_down.marker"\n'
            ),
        )
    )
    subdir = project.root / "src"
    subdir.mkdir()
    (project.root / "token").write_text("still-there\n")
    project.approve()
    up = project.ok("up", cwd=subdir)
    assert "→ Running post_up hook..." in up.stdout
    assert (project.root / "post_up.marker").read_text() == f"{project.root}\n"
    assert not (subdir / "post_up.marker").exists()
    assert not (project.root / "pre_down.marker").exists()

    down = project.ok("down")
    assert "→ Running pre_down hook..." in down.stdout
    assert (project.root / "pre_down.marker").read_text() == "still-there\n"
    assert names_with_project_path(project.engine, project.root) == []


def test_post_up_failure_fails_up_and_keeps_the_container(projects: Projects) -> None:
    project = projects.new(
        config=config_text(projects.engine, tables='[hooks]\npost_up = "echo hook-said; exit 5"')
    )
    project.approve()
    failed = project.alca("up")
    assert failed.returncode == 1, str(failed)
    assert "post_up hook failed with exit code 5" in failed.stderr
    assert "hook-said" in failed.stdout
    assert "Environment ready" not in failed.stdout
    assert project.container_running()
    quiet = project.alca("up", "-q")
    assert quiet.returncode == 1
    assert "hook-said" in quiet.stdout  # a hook's own output is not progress
    assert quiet.progress_lines == []


def test_hooks_from_an_unapproved_config_never_run(projects: Projects) -> None:
    project = projects.new(
        config=config_text(
            projects.engine,
            tables='[hooks]\npost_up = "touch post.marker"\npre_down = "touch pre.marker"',
        )
    )
    refused = project.alca("up")
    assert refused.returncode == NOT_APPROVED
    assert "post_up" in refused.stderr  # the hook is shown for review
    project.alca("down")
    assert not (project.root / "post.marker").exists()
    assert not (project.root / "pre.marker").exists()
    assert names_with_project_path(project.engine, project.root) == []


# --- mounts ----------------------------------------------------------------------------------


def test_mount_persists_across_down_and_up(projects: Projects) -> None:
    """Upstream test_mount_persistence; the container's own layer does not persist."""
    project = projects.new(
        config=config_text(projects.engine, top='mounts = [".alca.mounts/data:/data"]')
    )
    project.approve()
    project.ok("up", "-q")
    project.ok("run", "sh", "-c", "echo persist > /data/test.txt && echo layer > /tmp/layer")
    project.ok("down")
    project.ok("up", "-q")
    assert project.ok("run", "cat", "/data/test.txt").stdout == "persist\n"
    assert (project.root / ".alca.mounts" / "data" / "test.txt").read_text() == "persist\n"
    assert project.alca("run", "cat", "/tmp/layer").returncode != 0


# --- the project lock ------------------------------------------------------------------------


def test_up_waits_for_the_project_lock(projects: Projects) -> None:
    project = projects.new(config=config_text(projects.engine))
    project.approve()
    with state.project_lock(project.state_dir):
        process = project.popen("up")
        with pytest.raises(subprocess.TimeoutExpired):
            process.wait(timeout=3)
        assert names_with_project_path(project.engine, project.root) == []
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stdout + stderr
    assert "✓ Environment ready" in stdout
    assert project.container_running()


# --- copied and replaced project directories (§7.1 S9) ---------------------------------------


def test_a_copied_project_gets_its_own_sandbox(projects: Projects) -> None:
    original = projects.new("proj", config=config_text(projects.engine))
    original.start()
    original_id = original.container_id()
    copy_root = projects.base / "proj2"
    subprocess.run(["cp", "-a", str(original.root), str(copy_root)], check=True)
    copy = projects.track(copy_root)

    assert "State: Not created" in copy.ok("status").stdout.splitlines()
    assert copy.status_json()["project_id"] is None
    run = copy.alca("run", "echo", "hi")
    assert run.returncode == 1
    assert "no sandbox for this project" in run.stderr
    assert "No state file found" in copy.ok("down").stdout
    assert original.container_id() == original_id
    assert original.container_running()

    assert copy.alca("up").returncode == NOT_APPROVED  # approval does not travel with a copy
    copy.start()
    assert copy.container_name != original.container_name
    assert copy.inspect() is not None
    assert copy.inspect()["Config"]["Labels"]["alca.project.path"] == str(copy_root)  # type: ignore[index]
    (copy_root / "only-in-copy").write_text("copy\n")
    assert copy.ok("run", "cat", "only-in-copy").stdout == "copy\n"
    assert original.alca("run", "cat", "only-in-copy").returncode != 0

    copy.ok("down")
    assert original.container_id() == original_id
    assert original.container_running()


def _replace_directory(project: Project) -> None:
    """rm -rf the project and create it again with the same config at the same path."""
    text = project.config_path.read_text()
    # An open descriptor keeps the old inode allocated, so the new directory cannot reuse it.
    old = os.open(project.root, os.O_RDONLY)
    try:
        shutil.rmtree(project.root)
        project.root.mkdir()
        project.config_path.write_text(text)
    finally:
        os.close(old)


def test_a_replaced_project_directory_is_refused(projects: Projects) -> None:
    project = projects.new(config=config_text(projects.engine))
    project.start()
    container_id = project.container_id()
    _replace_directory(project)
    for command in (("up",), ("up", "-f"), ("run", "true")):
        refused = project.alca(*command)
        assert refused.returncode == REFUSED, str(refused)
        assert "not the one its sandbox was created for" in refused.stderr
    assert project.container_id() == container_id


def test_a_replaced_project_directory_can_start_afresh(projects: Projects) -> None:
    project = projects.new(config=config_text(projects.engine))
    project.start()
    old_name = project.container_name
    _replace_directory(project)
    down = project.alca("down")
    assert down.returncode == 0, str(down)
    assert inspect_container(project.engine, old_name) is None
    project.start()
    assert project.container_running()
