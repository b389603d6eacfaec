"""`alca doctor` as a user runs it (a subprocess), against the machine's real engines and tools."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

TOOLS = ("docker", "podman", "nft", "mutagen", "sudo", "ip", "git", "sh")


def bin_dir(tmp_path: Path, *without: str) -> Path:
    directory = tmp_path / "bin"
    directory.mkdir()
    for tool in TOOLS:
        found = shutil.which(tool)
        if tool not in without and found is not None:
            (directory / tool).symlink_to(found)
    return directory


def doctor(tmp_path: Path, cwd: Path, **env: str) -> tuple[int, dict[str, Any]]:
    environ = {
        "HOME": str(tmp_path / "home"),
        "ALCA_HOME": str(tmp_path / "home" / ".alcatraz"),
        "PATH": os.environ["PATH"],
        "PYTHONPATH": os.pathsep.join(sys.path),
        "ALCA_NFT_CONF": str(tmp_path / "nftables.conf"),
        "ALCA_NFT_DIR": str(tmp_path / "nftables.d"),
        **env,
    }
    done = subprocess.run(
        [sys.executable, "-m", "alcatraz", "doctor", "--json"],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = json.loads(done.stdout)
    return done.returncode, {c["name"]: c for c in report["checks"]}


def test_stopped_docker_and_missing_tools_fail_with_fixes(tmp_path: Path) -> None:
    if shutil.which("docker") is None:
        pytest.skip("docker is not installed")
    path = bin_dir(tmp_path, "mutagen", "podman")
    project = tmp_path / "project"
    project.mkdir()
    (project / ".alca.toml").write_text('image = "alpine:3.21"\nworkdir_exclude = [".env"]\n')
    code, checks = doctor(
        tmp_path,
        project,
        PATH=str(path),
        DOCKER_HOST="unix:///nonexistent.sock",
        ALCA_RUNTIME="docker",
    )
    assert code == 1
    assert checks["docker"]["status"] == "fail"
    assert "systemctl start docker" in checks["docker"]["fix"]
    assert checks["runtime"]["status"] == "fail"
    assert checks["mutagen"]["status"] == "fail"
    assert "Mutagen 0.18.1" in checks["mutagen"]["fix"]
    assert checks["config"]["status"] == "ok"


def test_broken_config_fails_with_exit_1(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / ".alca.toml").write_text("image = \n")
    code, checks = doctor(tmp_path, project)
    assert code == 1
    assert checks["config"]["status"] == "fail"
    assert ".alca.toml does not load" in checks["config"]["summary"]


def test_healthy_machine_passes(tmp_path: Path) -> None:
    """On the prepared test machine (root, engines, nftables, Mutagen) nothing fails."""
    if os.geteuid() != 0 or shutil.which("mutagen") is None or shutil.which("nft") is None:
        pytest.skip("needs root, nft and mutagen (run scripts/setup-test-env.sh)")
    project = tmp_path / "project"
    project.mkdir()
    code, checks = doctor(tmp_path, project)
    failed = {name: c for name, c in checks.items() if c["status"] == "fail"}
    if any(name in failed for name in ("docker", "podman", "runtime")):
        pytest.skip(f"no usable engine here: {failed}")
    assert code == 0, failed
    assert checks["kernel"]["status"] == "ok"
    assert checks["mutagen"]["status"] == "ok"


def test_setuid_guard_without_a_base_profile_fails_and_a_synced_project_needs_none(
    tmp_path: Path,
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / ".alca.toml").write_text('image = "alpine:3.21"\n')  # workspace bind-mounted
    missing = str(tmp_path / "no-profile.json")
    code, checks = doctor(tmp_path, project, ALCA_SECCOMP_BASE=missing)
    assert code == 1
    guard = checks["setuid-guard"]
    assert guard["status"] == "fail"
    assert missing in guard["summary"]
    assert "containers-common" in guard["fix"]
    # Synced workspace, no other mount: nothing reaches the host with a setuid bit.
    (project / ".alca.toml").write_text('image = "alpine:3.21"\nworkdir_exclude = [".env"]\n')
    _, checks = doctor(tmp_path, project, ALCA_SECCOMP_BASE=missing)
    assert checks["setuid-guard"]["status"] == "ok"
    assert "not needed" in checks["setuid-guard"]["summary"]
