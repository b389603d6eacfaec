"""`alca status` rendering, from typed reports: each text is what the command printed
before gathering and rendering were separated (byte for byte)."""

from __future__ import annotations

import json

from alcatraz.commands.status_report import (
    ContainerView,
    Line,
    StatusReport,
    SyncView,
    render,
)
from alcatraz.sync.conflicts import Conflict

CREATED = StatusReport(
    True,
    "/p/.alca.toml",
    approved=True,
    runtime="docker",
    runtime_reason="auto",
    project_id="abc",
)
ENABLED = {
    "network": "alca-n",
    "interface": "br-1",
    "subnet": "10.1.0.0/24",
    "gateway": "10.1.0.1",
    "state": "enabled",
    "blocked": 1,
}
RUNNING = ContainerView("running", "cid", "alca-abc", "alpine", "2026-01-01")
SESSIONS = (
    {"mount": 0, "healthy": True, "summary": "watching"},
    {"mount": 1, "healthy": False, "summary": "halted: x"},
)
CONFLICTS = (
    Conflict("s0", 0, "a.txt", "file", "file"),
    Conflict("s1", 1, "b/\x1bc", "file", "directory"),
)


def text(lines: list[Line], *, stderr: bool = False) -> str:
    return "".join(line.text + "\n" for line in lines if line.to_stderr is stderr)


def test_not_initialized() -> None:
    report = StatusReport(initialized=False)
    assert text(render(report)) == (
        "Status: Not initialized\n\nRun 'alca init' to create a configuration file.\n"
    )
    assert report.to_json() == {"initialized": False}


def test_a_replaced_directory_has_no_runtime() -> None:
    report = StatusReport(True, "/p/.alca.toml", replaced=True, runtime_error="replaced")
    assert text(render(report)) == (
        "Status: Initialized\nConfig: /p/.alca.toml\nApproved: No (run alca trust)\n\n"
        "Runtime: None available\n\nError: replaced\n"
    )
    assert list(report.to_json()) == [
        "initialized", "config", "replaced", "approved", "runtime", "runtime_error",
    ]  # fmt: skip


def test_no_sandbox_yet_lists_the_container_before_isolation() -> None:
    from dataclasses import replace

    report = replace(CREATED, project_id=None, isolation={"state": "off"})
    assert text(render(report)).endswith(
        "Runtime: docker\n\nState: Not created\n\nRun 'alca up' to create the container.\n"
    )
    assert json.dumps(report.to_json()) == (
        '{"initialized": true, "config": "/p/.alca.toml", "approved": true, '
        '"runtime": "docker", "runtime_reason": "auto", "project_id": null, '
        '"container": null, "isolation": {"state": "off"}}'
    )


def test_a_running_container_with_sync_conflicts_and_drift() -> None:
    from dataclasses import replace

    report = replace(
        CREATED,
        isolation=ENABLED,
        names={"state": "running", "listen": "10.1.0.1:53", "upstreams": ["9.9.9.9"]},
        container=RUNNING,
        sync=SyncView(SESSIONS, CONFLICTS),
        drift=("Image: a -> b",),
    )
    lines = render(report)
    assert text(lines) == (
        "Status: Initialized\nConfig: /p/.alca.toml\nApproved: Yes\n\nRuntime: docker\n\n"
        "Project ID: abc\n"
        "Network isolation: Enabled on alca-n (10.1.0.0/24); 1 blocked attempt "
        "(see 'alca net log')\n"
        "Names: the project's resolver on 10.1.0.1:53 (asks 9.9.9.9)\n\n"
        "Container: Running\n  ID:    cid\n  Name:  alca-abc\n  Image: alpine\n"
        "  Started: 2026-01-01\n\n"
        "File sync: 1/2 session(s) healthy, 2 conflicts\n"
        "  - mount 0: watching [ok]\n  - mount 1: halted: x [PROBLEM]\n\n"
        "Configuration has changed since last container creation:\n  Image: a -> b\n\n"
        "Run 'alca up -f' to rebuild with new configuration.\n\n"
        "Run 'alca run <command>' to execute commands.\n"
    )
    assert text(lines, stderr=True) == (
        "⚠ 2 sync conflicts need attention:\n"
        "  a.txt                          (file on both sides)\n"
        "  [mount 1] b/\\x1bc              (file locally, directory in container)\n"
        "Run 'alca experimental sync resolve' to resolve.\n"
    )
    data = report.to_json()
    assert list(data)[-4:] == ["names", "container", "sync", "drift"]
    assert data["sync"]["conflicts"][1] == {
        "path": "b/\x1bc",
        "mount": 1,
        "local": "file",
        "container": "directory",
        "description": "file locally, directory in container",
    }


def test_a_stopped_container_lists_drift_and_missing_rules() -> None:
    from dataclasses import replace

    report = replace(
        CREATED,
        isolation={"state": "missing", "inside": "missing"},
        names={"state": "stopped", "listen": "10.1.0.1:53"},
        container=replace(RUNNING, state="stopped"),
        drift=("Image: a -> b", "Workspace: gone"),
    )
    assert text(render(report)).split("Project ID: abc\n")[1] == (
        "Network isolation: MISSING: the rules are not loaded; run 'alca up' to restore them\n"
        "Names: NOT RESOLVED: the project's resolver on 10.1.0.1:53 is not running "
        "('alca run' or 'alca up' starts it)\n\n"
        "Container: Stopped\n\n  Image: a -> b\n  Workspace: gone\n"
        "Run 'alca up' to start the container.\n"
    )


def test_unknown_rules_and_sync_error() -> None:
    from dataclasses import replace

    report = replace(
        CREATED,
        isolation={"state": "unknown", "error": "nft failed"},
        container=RUNNING,
        sync=SyncView(error="mutagen down"),
        drift=(),
    )
    out = text(render(report))
    assert "Network isolation: Unknown (nft failed)\n\nContainer: Running\n" in out
    assert out.endswith(
        "File sync: unknown (mutagen down)\n\nRun 'alca run <command>' to execute commands.\n"
    )
    assert report.to_json()["sync"] == {"error": "mutagen down"}


def test_no_container_and_an_unknown_state() -> None:
    from dataclasses import replace

    missing = replace(CREATED, isolation={"state": "none"}, container=ContainerView("not found"))
    assert text(render(missing)).endswith(
        "Network isolation: Not set up yet (run 'alca up')\n\nContainer: Not created\n\n"
        "Run 'alca up' to create and start the container.\n"
    )
    assert missing.to_json()["container"] == {"state": "not found"}
    assert "drift" not in missing.to_json()
    paused = replace(missing, container=replace(RUNNING, state="unknown"), drift=())
    assert text(render(paused)).endswith("\n\nContainer: Unknown state\n")


def test_allow_all_with_a_proxy_says_off_and_that_the_proxy_is_loaded() -> None:
    """`lan-access = ["*"]` with a proxy: isolation is off, yet its rules are read (issue #15)."""
    from dataclasses import replace

    report = replace(CREATED, isolation={**ENABLED, "lan": "all"})
    line = next(x for x in text(render(report)).splitlines() if x.startswith("Network isolation"))
    assert line == (
        'Network isolation: Off (lan-access = ["*"]: the sandbox may reach your LAN and this '
        "host); transparent proxy rules loaded"
    )


def test_the_agent_preset_is_named_with_the_command_that_starts_it() -> None:
    from dataclasses import replace

    from alcatraz.commands.status import agent_view

    claude = agent_view("claude")
    assert claude is not None and claude.start == "alca run claude --dangerously-skip-permissions"
    report = replace(CREATED, project_id=None, isolation={"state": "none"}, agent=claude)
    assert (
        f"Approved: Yes\nAgent: {claude.label}; start it with: {claude.start}\n\nRuntime: docker"
        in text(render(report))
    )
    assert report.to_json()["agent"] == {
        "name": "claude",
        "label": claude.label,
        "start": claude.start,
    }
    newer = agent_view("some-future-agent")
    assert newer is not None and newer.start is None
    unknown = replace(report, agent=newer)
    assert "Agent: some-future-agent (not a preset of this alcatraz version)" in text(
        render(unknown)
    )
    assert agent_view(None) is None
    assert "agent" not in CREATED.to_json()
