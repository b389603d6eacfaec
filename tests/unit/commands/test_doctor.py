"""`alca doctor` against real absence: tools missing from PATH, an engine that does not
answer, a broken configuration. Each asserts the failing check, its fix and the exit code."""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import pytest

from alcatraz.app import App
from alcatraz.cli.parser import build_parser
from alcatraz.commands import doctor
from alcatraz.errors import ExitCode
from alcatraz.proc import SubprocessRunner
from alcatraz.runtime import detect
from alcatraz.statefile import IsolationRecord
from alcatraz.sync.mutagen import INSTALL_HINT
from tests import fakes

TOOLS = ("docker", "podman", "nft", "mutagen", "sudo", "ip", "git", "sh")


def bin_dir(tmp_path: Path, *without: str) -> Path:
    """A PATH with symlinks to the real tools, except `without` (real absence)."""
    directory = tmp_path / "bin"
    directory.mkdir(exist_ok=True)
    for tool in TOOLS:
        if tool in without:
            continue
        found = shutil.which(tool)
        if found is not None:
            (directory / tool).symlink_to(found)
    return directory


def make_app(tmp_path: Path, path: Path, **extra: str) -> App:
    return fakes.project_app(
        tmp_path,
        path=str(path),
        ALCA_NFT_CONF=str(tmp_path / "nftables.conf"),
        ALCA_NFT_DIR=str(tmp_path / "nftables.d"),
        **extra,
    )


@pytest.fixture(autouse=True)
def _fresh_detection() -> None:
    detect.clear_cache()


def run_doctor(app: App, *argv: str) -> int:
    namespace = build_parser("doctor").parse_args(["doctor", *argv])
    result: int = namespace._module.main(namespace, app)
    return result


def checks(app: App) -> dict[str, dict[str, str]]:
    assert run_doctor(app, "--json") in (0, 1)
    out = app.stdout.getvalue()  # type: ignore[attr-defined]
    return {c["name"]: c for c in json.loads(out)["checks"]}


def checks_of(text: str) -> set[str]:
    return {line.split()[1] for line in text.splitlines() if line[:1] in "✓!✗·" and line}


def test_mutagen_missing_from_path_fails_with_the_install_fix(tmp_path: Path) -> None:
    app = make_app(tmp_path, bin_dir(tmp_path, "mutagen"))
    assert run_doctor(app) == ExitCode.FAILURE
    text = app.stdout.getvalue()  # type: ignore[attr-defined]
    assert "✗ mutagen" in text
    assert "mutagen is not installed" in text
    assert "Fix: " + INSTALL_HINT in text


def test_mutagen_json_report(tmp_path: Path) -> None:
    app = make_app(tmp_path, bin_dir(tmp_path, "mutagen"))
    found = checks(app)
    assert found["mutagen"]["status"] == "fail"
    assert found["mutagen"]["fix"] == INSTALL_HINT
    data = json.loads(app.stdout.getvalue())  # type: ignore[attr-defined]
    assert data["ok"] is False
    assert {c["status"] for c in data["checks"]} <= {"ok", "warn", "fail", "info"}


def test_mutagen_only_warns_for_a_project_that_hides_no_files(tmp_path: Path) -> None:
    app = make_app(tmp_path, bin_dir(tmp_path, "mutagen"))
    (app.cwd / ".alca.toml").write_text('image = "alpine:3.21"\n')
    assert checks(app)["mutagen"]["status"] == "warn"


@pytest.mark.skipif(shutil.which("docker") is None, reason="docker is not installed")
def test_docker_that_does_not_answer_fails_with_the_start_fix(tmp_path: Path) -> None:
    app = make_app(
        tmp_path,
        bin_dir(tmp_path, "podman"),
        DOCKER_HOST="unix:///nonexistent.sock",
        ALCA_RUNTIME="docker",
    )
    found = checks(app)
    assert found["docker"]["status"] == "fail"
    assert "does not answer at unix:///nonexistent.sock" in found["docker"]["summary"]
    assert "sudo systemctl start docker" in (found["docker"]["fix"] or "")
    assert found["runtime"]["status"] == "fail"
    assert "ALCA_RUNTIME=docker" in found["runtime"]["summary"]
    assert found["podman"]["status"] == "warn"  # absent, but not the selected engine


def test_podman_selected_but_not_on_path_fails(tmp_path: Path) -> None:
    app = make_app(tmp_path, bin_dir(tmp_path, "podman"), ALCA_RUNTIME="podman")
    app.environ["DOCKER_HOST"] = "unix:///nonexistent.sock"
    assert run_doctor(app) == ExitCode.FAILURE
    app.stdout = io.StringIO()
    found = checks(app)
    assert found["podman"]["status"] == "fail"
    assert "podman is not installed" in found["podman"]["summary"]
    assert "sudo apt install podman" in (found["podman"]["fix"] or "")
    assert found["runtime"]["status"] == "fail"
    assert "Podman not available" in found["runtime"]["summary"]


def test_nft_missing_from_path_fails(tmp_path: Path) -> None:
    app = make_app(tmp_path, bin_dir(tmp_path, "nft"))
    found = checks(app)
    assert found["nftables"]["status"] == "fail"
    assert found["nftables"]["fix"] == "install nftables (e.g. `sudo apt install nftables`)"


def test_network_helper_not_installed_is_a_warning_with_the_command(tmp_path: Path) -> None:
    app = make_app(tmp_path, bin_dir(tmp_path))
    found = checks(app)
    assert found["network-helper"]["status"] == "warn"
    assert found["network-helper"]["fix"] == "alca network-helper install"


def test_broken_config_fails_and_shows_the_error(tmp_path: Path) -> None:
    app = make_app(tmp_path, bin_dir(tmp_path))
    (app.cwd / ".alca.toml").write_text('image = "alpine:3.21"\nmounts = 5\n')
    assert run_doctor(app) == ExitCode.FAILURE
    text = app.stdout.getvalue()  # type: ignore[attr-defined]
    line = next(x for x in text.splitlines() if x.startswith("✗ config"))
    assert ".alca.toml does not load" in line and "mounts" in line
    assert "trust" not in checks_of(text)  # nothing to approve until it loads


def test_unapproved_config_warns_with_alca_trust(tmp_path: Path) -> None:
    app = make_app(tmp_path, bin_dir(tmp_path))
    (app.cwd / ".alca.toml").write_text('image = "alpine:3.21"\n')
    found = checks(app)
    assert found["config"]["status"] == "ok"
    assert found["trust"]["status"] == "warn"
    assert found["trust"]["fix"] == "review and approve it: alca trust"


def test_no_project_is_information_not_failure(tmp_path: Path) -> None:
    app = make_app(tmp_path, bin_dir(tmp_path))
    found = checks(app)
    assert found["config"]["status"] == "info"
    assert "trust" not in found and "sandbox" not in found


def test_exit_zero_when_nothing_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = fakes.make_app(tmp_path)
    reported = [doctor.Check("a", doctor.OK, "fine"), doctor.Check("b", doctor.WARN, "hm", "x")]
    monkeypatch.setattr(doctor, "collect", lambda _app: reported)
    namespace = build_parser("doctor").parse_args(["doctor"])
    assert doctor.main(namespace, app) == ExitCode.OK
    reported.append(doctor.Check("c", doctor.FAIL, "broken", "do this"))
    app.stdout = io.StringIO()
    assert doctor.main(namespace, app) == ExitCode.FAILURE
    out = app.stdout.getvalue()  # type: ignore[attr-defined]
    assert "✗ c  broken" in out and "Fix: do this" in out and "1 failed, 1 warning" in out


def test_programs_see_the_apps_environment(tmp_path: Path) -> None:
    runner = doctor.EnvRunner(SubprocessRunner(), {"PATH": os.defpath, "ALCA_PROBE": "seen"})
    assert runner.run(["sh", "-c", "echo $ALCA_PROBE"]).stdout.strip() == "seen"


@pytest.mark.parametrize(
    ("state", "status"),
    [("enabled", "ok"), ("missing", "fail"), ("outdated", "fail"), ("off", "warn")],
)
def test_sandbox_rules_state_comes_from_the_isolation_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state: str, status: str
) -> None:
    from alcatraz import state as state_module
    from alcatraz.sandbox import netreport as isolation

    app = make_app(tmp_path, bin_dir(tmp_path))
    (app.cwd / ".alca.toml").write_text('image = "alpine:3.21"\n')
    record = {"network": "alca-x", "subnet": "10.0.0.0/24", "nft": ["nft"]}
    state_module.write_json(
        state_module.project_dir(app.home, app.cwd) / "state.json",
        {"project_id": "abc", "isolation": record},
    )
    seen: list[object] = []

    def fake_report(_app: App, _config: object, project_id: str, rec: object) -> dict[str, str]:
        seen.append((project_id, rec))
        return {"state": state, "network": "alca-x", "subnet": "10.0.0.0/24"}

    monkeypatch.setattr(isolation, "report", fake_report)
    found = checks(app)
    assert seen == [("abc", IsolationRecord.from_json(record))]
    assert found["sandbox"]["status"] == status
    if status == "fail":
        assert found["sandbox"]["fix"] == "alca up (re-applies the rules)"


def test_a_writable_mount_of_host_agent_config_warns(tmp_path: Path) -> None:
    """Issue 13 item 7: configs from earlier presets mounted ~/.claude read-write."""
    app = make_app(tmp_path, bin_dir(tmp_path))
    claude = tmp_path / "home" / ".claude"
    claude.mkdir(parents=True)
    (app.cwd / ".alca.toml").write_text(
        'image = "alpine:3.21"\nmounts = [{ source = "~/.claude", target = "/root/.claude" }]\n'
    )
    found = checks(app)
    assert found["agent-config"]["status"] == "warn"
    assert f"{claude}/settings.json" in found["agent-config"]["summary"]
    assert "alca init --agent" in found["agent-config"]["fix"]


def test_a_preset_config_has_no_writable_agent_config(tmp_path: Path) -> None:
    from tests.unit.init.test_agents import create_sources, run_init

    path = bin_dir(tmp_path)
    setup = make_app(tmp_path, path)
    create_sources(setup, "claude")
    assert run_init(setup, "--agent", "claude") == ExitCode.OK
    found = checks(make_app(tmp_path, path))
    assert found["agent-config"]["status"] == "ok"
