"""`alca init --agent NAME`: every preset loads, mounts what docs/agents.md promises."""

from __future__ import annotations

import io
import os
import tomllib
from pathlib import Path

import pytest

from alcatraz import cli
from alcatraz.app import App
from alcatraz.cli.parser import build_parser
from alcatraz.config import agents
from alcatraz.config.load import load_config
from alcatraz.errors import ExitCode, UsageError

#: target -> readonly, as documented in docs/agents.md (enabled mounts only).
PROMISED: dict[str, dict[str, bool]] = {
    "claude": {"/root/.claude": False},
    "codex": {"/root/.codex": False},
    "gemini": {"/root/.gemini": False},
    "aider": {
        "/root/.aider.conf.yml": True,
        "/root/.aider.model.settings.yml": True,
        "/root/.aider.model.metadata.json": True,
    },
    "opencode": {"/root/.config/opencode": True, "/root/.local/share/opencode": False},
}
KEYS: dict[str, set[str]] = {
    "claude": {"ANTHROPIC_API_KEY"},
    "codex": {"OPENAI_API_KEY"},
    "gemini": {"GEMINI_API_KEY", "GOOGLE_API_KEY"},
    "aider": {"OPENAI_API_KEY", "ANTHROPIC_API_KEY"},
    "opencode": {"ANTHROPIC_API_KEY", "OPENAI_API_KEY"},
}
UNRESTRICTED = {
    "claude": "alca run claude --dangerously-skip-permissions",
    "codex": "alca run codex --dangerously-bypass-approvals-and-sandbox",
    "gemini": "alca run gemini --yolo",
    "aider": "alca run aider --yes-always",
    "opencode": "alca run opencode",
}


def make_app(tmp_path: Path) -> App:
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return App(
        stdin=io.StringIO(),
        stdout=io.StringIO(),
        stderr=io.StringIO(),
        environ={"HOME": str(home), "ALCA_HOME": str(home / ".alcatraz"), "PATH": os.defpath},
        cwd=project,
    )


def run_init(app: App, *argv: str) -> int:
    namespace = build_parser("init").parse_args(["init", *argv])
    result: int = namespace._module.main(namespace, app)
    return result


def create_sources(app: App, name: str) -> None:
    """Every host path the preset mounts, as a file or a directory like the real ones."""
    for mount in agents.load_preset(name).mounts:
        path = Path(agents.host_path(mount.source, app.environ))
        if path.suffix in (".json", ".yml"):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("{}\n")
        else:
            path.mkdir(parents=True, exist_ok=True)


def test_the_documented_presets_ship() -> None:
    assert agents.preset_names() == sorted(PROMISED)


@pytest.mark.parametrize("name", sorted(PROMISED))
def test_preset_writes_a_config_that_loads_with_the_promised_mounts(
    tmp_path: Path, name: str
) -> None:
    app = make_app(tmp_path)
    create_sources(app, name)
    assert run_init(app, "--agent", name) == ExitCode.OK
    config = load_config(app.cwd, environ=app.environ, cwd=app.cwd)
    assert config.image == "node:22-bookworm-slim"
    home, *extra = config.mounts
    assert home.target == "/root" and not home.readonly
    assert {m.target: m.readonly for m in extra} == PROMISED[name]
    for mount in extra:
        assert Path(mount.source).is_relative_to(Path(app.environ["HOME"]))
    for key in KEYS[name]:
        assert config.envs[key].value == "${" + key + "}"
        assert config.envs[key].override_on_enter
    preset = agents.load_preset(name)
    assert config.up is not None and preset.install in config.up.command
    assert config.enter is not None and "/root/.npm-global/bin" in config.enter.command
    text = (app.cwd / ".alca.toml").read_text()
    assert UNRESTRICTED[name] in text
    assert preset.unrestricted == UNRESTRICTED[name]
    assert f"Start the agent with: {UNRESTRICTED[name]}" in app.stdout.getvalue()  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", sorted(PROMISED))
def test_every_mount_states_why_it_is_readonly_or_not(name: str) -> None:
    text = (Path(agents.__file__).parent.parent / "presets" / f"{name}.toml").read_text()
    data = tomllib.loads(text)
    for mount in data["mounts"]:
        assert isinstance(mount["readonly"], bool)
        word = "read-only" if mount["readonly"] else "read-write"
        assert mount["why"].startswith(word) or mount.get("enabled") is False


@pytest.mark.parametrize("name", sorted(PROMISED))
def test_missing_host_paths_are_left_commented_out(tmp_path: Path, name: str) -> None:
    app = make_app(tmp_path)
    assert run_init(app, "--agent", name) == ExitCode.OK
    config = load_config(app.cwd, environ=app.environ, cwd=app.cwd)
    assert [m.target for m in config.mounts] == ["/root"]
    text = (app.cwd / ".alca.toml").read_text()
    for mount in agents.load_preset(name).mounts:
        assert f'# {{ source = "{mount.source}", target = "{mount.target}"' in text
        if mount.enabled:
            assert f"Note: {mount.source} does not exist yet" in app.stdout.getvalue()  # type: ignore[attr-defined]


def test_claude_json_is_offered_but_not_mounted(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    create_sources(app, "claude")
    assert run_init(app, "--agent", "claude") == ExitCode.OK
    config = load_config(app.cwd, environ=app.environ, cwd=app.cwd)
    assert "/root/.claude.json" not in {m.target for m in config.mounts}
    assert '# { source = "~/.claude.json"' in (app.cwd / ".alca.toml").read_text()


def test_aider_installs_with_pipx_and_puts_it_on_path(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    assert run_init(app, "--agent", "aider") == ExitCode.OK
    config = load_config(app.cwd, environ=app.environ, cwd=app.cwd)
    assert config.up is not None and "pipx install aider-chat" in config.up.command
    assert "apt-get install -y --no-install-recommends python3 pipx" in config.up.command
    assert config.enter is not None and "/root/.local/bin" in config.enter.command


def test_unknown_agent_is_a_usage_error_listing_the_valid_ones(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    with pytest.raises(UsageError) as caught:
        run_init(app, "--agent", "nope")
    assert caught.value.exit_code == ExitCode.USAGE == 64
    assert "aider, claude, codex, gemini, opencode" in caught.value.message
    assert list(app.cwd.iterdir()) == []


def test_unknown_agent_through_the_cli_exits_64(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli.main(["init", "--agent", "nope"]) == 64
    err = capsys.readouterr().err
    assert 'unknown agent "nope"' in err and "claude, codex" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "argv", [["--template", "alpine"], ["--update"], ["git+https://example.invalid/x"]]
)
def test_agent_does_not_combine_with_other_flows(tmp_path: Path, argv: list[str]) -> None:
    app = make_app(tmp_path)
    with pytest.raises(UsageError):
        run_init(app, "--agent", "claude", *argv)
    assert list(app.cwd.iterdir()) == []


def test_agent_with_the_agent_template_is_accepted(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    assert run_init(app, "--agent", "codex", "--template", "agent") == ExitCode.OK


def test_existing_config_is_never_overwritten(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    (app.cwd / ".alca.toml").write_text("mine\n")
    with pytest.raises(Exception) as caught:
        run_init(app, "--agent", "claude")
    assert getattr(caught.value, "exit_code", None) == ExitCode.CANT_CREATE
    assert (app.cwd / ".alca.toml").read_text() == "mine\n"
