"""The setuid guard through `alca`, on both engines (the attacks are in tests/security).

A bind-mounted workspace gets the guard's seccomp profile; without a base profile to extend,
`up` refuses before it creates anything.
"""

from __future__ import annotations

import pytest

from tests.integration.lifecycle.helpers import (
    Projects,
    config_text,
    names_with_project_path,
    networks_with_project_path,
)

pytestmark = pytest.mark.integration


def test_up_without_a_base_profile_refuses_and_creates_nothing(projects: Projects) -> None:
    project = projects.new(config=config_text(projects.engine))
    project.approve()
    missing = str(projects.base / "no-such-profile.json")
    refused = project.alca("up", env=project.env(ALCA_SECCOMP_BASE=missing))
    assert refused.returncode == 69, str(refused)
    assert "cannot keep setuid files off the host" in refused.stderr
    assert missing in refused.stderr
    assert "Fix:" in refused.stderr and "workdir_exclude" in refused.stderr
    assert "Traceback" not in refused.output
    assert names_with_project_path(project.engine, project.root) == []
    assert networks_with_project_path(project.engine, project.root) == []
    assert "container_name" not in project.state() or not project.container_running()


def test_a_bind_mounted_sandbox_runs_with_the_guard(projects: Projects) -> None:
    project = projects.new(config=config_text(projects.engine))
    project.approve()
    project.ok("up")
    record = project.inspect()
    assert record is not None
    options = record["HostConfig"]["SecurityOpt"]
    assert "no-new-privileges" in " ".join(options)
    assert any(option.startswith("seccomp=") for option in options), options
    # Everyday modes still work; the setuid and setgid bits are refused with EPERM.
    everyday = project.sh("touch g && chmod 600 g && chmod 755 g && mkdir d && chmod 1777 d")
    assert everyday.returncode == 0, str(everyday)
    assert project.sh("stat -c %a g d").stdout.split() == ["755", "1777"]
    for attempt in ("chmod 4755 g", "chmod u+s g", "chmod g+s g", "chmod 6755 g", "chmod 2755 d"):
        refused = project.sh(attempt)
        assert refused.returncode != 0 and "Operation not permitted" in refused.stderr, attempt
    assert project.sh("stat -c %a g").stdout.strip() == "755"
    host_mode = (project.root / "g").stat().st_mode
    assert host_mode & 0o6000 == 0, oct(host_mode)
