"""`alca init --agent NAME`: every preset loads, mounts what docs/agents.md promises."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest

from alcatraz import cli
from alcatraz.app import App
from alcatraz.cli.parser import build_parser
from alcatraz.config import private
from alcatraz.config.load import load_config
from alcatraz.errors import AlcaError, ExitCode, UsageError
from alcatraz.init import agents
from tests.fakes import project_app

#: target -> (kind, readonly) of every enabled mount, as documented in docs/agents.md.
#: Kinds: "private" (a sandbox-private directory), "login" (the host login file, writable),
#: "host" (a host path, read-only).
PRIVATE, LOGIN, HOST = "private", "login", "host"
PROMISED: dict[str, dict[str, tuple[str, bool]]] = {
    "claude": {
        "/root/.claude": (PRIVATE, False),
        "/root/.claude/.credentials.json": (LOGIN, False),
        "/root/.claude/settings.json": (HOST, True),
        "/root/.claude/CLAUDE.md": (HOST, True),
        "/root/.claude/commands": (HOST, True),
        "/root/.claude/agents": (HOST, True),
        "/root/.claude/hooks": (HOST, True),
    },
    "codex": {
        "/root/.codex": (PRIVATE, False),
        "/root/.codex/auth.json": (LOGIN, False),
        "/root/.codex/config.toml": (HOST, True),
        "/root/.codex/AGENTS.md": (HOST, True),
        "/root/.codex/prompts": (HOST, True),
    },
    "gemini": {
        "/root/.gemini": (PRIVATE, False),
        "/root/.gemini/oauth_creds.json": (LOGIN, False),
        "/root/.gemini/settings.json": (HOST, True),
        "/root/.gemini/GEMINI.md": (HOST, True),
        "/root/.gemini/commands": (HOST, True),
    },
    "aider": {
        "/root/.aider.conf.yml": (HOST, True),
        "/root/.aider.model.settings.yml": (HOST, True),
        "/root/.aider.model.metadata.json": (HOST, True),
    },
    "opencode": {
        # opencode writes its config directory on every start (issue 16): private, with the
        # user's files read-only on top
        "/root/.config/opencode": (PRIVATE, False),
        "/root/.config/opencode/opencode.json": (HOST, True),
        "/root/.config/opencode/AGENTS.md": (HOST, True),
        "/root/.config/opencode/agents": (HOST, True),
        "/root/.config/opencode/commands": (HOST, True),
        "/root/.local/share/opencode": (PRIVATE, False),
        "/root/.local/share/opencode/auth.json": (LOGIN, False),
    },
}
#: Host files and directories the host agent reads and may execute: never writable inside.
HOST_EXECUTED: dict[str, tuple[str, ...]] = {
    "claude": (
        "~/.claude",
        "~/.claude.json",
        "~/.claude/settings.json",
        "~/.claude/CLAUDE.md",
        "~/.claude/commands",
        "~/.claude/agents",
        "~/.claude/plugins",
        "~/.claude/hooks",
    ),
    "codex": ("~/.codex", "~/.codex/config.toml", "~/.codex/AGENTS.md", "~/.codex/prompts"),
    "gemini": (
        "~/.gemini",
        "~/.gemini/settings.json",
        "~/.gemini/GEMINI.md",
        "~/.gemini/commands",
        "~/.gemini/extensions",
    ),
    "aider": ("~/.aider.conf.yml", "~/.aider.model.settings.yml"),
    "opencode": ("~/.config/opencode", "~/.local/share/opencode", "~/.cache/opencode"),
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
    """A project App with an existing HOME (where agents keep their settings)."""
    (tmp_path / "home").mkdir(exist_ok=True)
    return project_app(tmp_path, path=os.defpath)


def run_init(app: App, *argv: str) -> int:
    namespace = build_parser("init").parse_args(["init", *argv])
    result: int = namespace._module.main(namespace, app)
    return result


def create_sources(app: App, name: str) -> None:
    """Every host path the preset mounts: a file when its name has a suffix, else a directory."""
    for mount in agents.load_preset(name).mounts:
        if mount.private:
            continue
        path = Path(agents.host_path(mount.source, app.environ))
        if path.suffix:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("{}\n")
        else:
            path.mkdir(parents=True, exist_ok=True)


def kind_of(source: str, home: Path, private_root: Path) -> str:
    path = Path(source)
    if path.parent == private_root:
        return PRIVATE
    assert path.is_relative_to(home), source
    return LOGIN if not path.is_dir() and path.name in LOGIN_NAMES else HOST


LOGIN_NAMES = {".credentials.json", "auth.json", "oauth_creds.json"}


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
    assert config.agent == name  # `alca status` names it
    home_mount, *extra = config.mounts
    assert home_mount.target == "/root" and not home_mount.readonly
    home = Path(app.environ["HOME"])
    private_root = private.private_root(app.home, app.cwd)
    assert {
        m.target: (kind_of(m.source, home, private_root), m.readonly) for m in extra
    } == PROMISED[name]
    for key in KEYS[name]:
        assert config.envs[key].value == "${" + key + "}"
        assert config.envs[key].override_on_enter
    preset = agents.load_preset(name)
    for env_name, value, _why in preset.envs:  # plain settings, written as values
        assert config.envs[env_name].value == value
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
    private_targets = [m.target for m in agents.load_preset(name).mounts if m.private]
    assert [m.target for m in config.mounts] == ["/root", *private_targets]
    text = (app.cwd / ".alca.toml").read_text()
    for mount in agents.load_preset(name).mounts:
        if mount.private:
            continue
        assert f'# {{ source = "{mount.source}", target = "{mount.target}"' in text
        if mount.enabled:
            assert f"Note: {mount.source} does not exist yet" in app.stdout.getvalue()  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", sorted(PROMISED))
def test_no_host_executed_path_is_ever_mounted_writable(tmp_path: Path, name: str) -> None:
    """Issue 13 item 7: settings, hooks, commands, plugins, instructions are never writable."""
    app = make_app(tmp_path)
    create_sources(app, name)
    assert run_init(app, "--agent", name) == ExitCode.OK
    config = load_config(app.cwd, environ=app.environ, cwd=app.cwd)
    home = Path(app.environ["HOME"])
    executed = {Path(agents.host_path(p, app.environ)) for p in HOST_EXECUTED[name]}
    private_root = private.private_root(app.home, app.cwd)
    for mount in config.mounts:
        source = Path(mount.source)
        if mount.readonly or not source.is_relative_to(home):
            continue
        if source.parent == private_root:
            continue  # alcatraz's own state, not the user's home
        # A writable host source is a login file: a plain file, not one of the executed paths
        # nor a directory holding one.
        assert source.name in LOGIN_NAMES and source.is_file() and not source.is_symlink()
        assert source not in executed
        assert not any(p.is_relative_to(source) for p in executed)
    # And every executed path that is mounted at all is mounted read-only.
    for mount in config.mounts:
        if Path(mount.source) in executed:
            assert mount.readonly, mount


@pytest.mark.parametrize("name", ["claude", "codex", "gemini", "opencode"])
def test_the_login_file_is_the_only_writable_host_path(tmp_path: Path, name: str) -> None:
    app = make_app(tmp_path)
    create_sources(app, name)
    assert run_init(app, "--agent", name) == ExitCode.OK
    config = load_config(app.cwd, environ=app.environ, cwd=app.cwd)
    home = Path(app.environ["HOME"])
    private_root = private.private_root(app.home, app.cwd)
    writable = [
        m
        for m in config.mounts
        if not m.readonly
        and Path(m.source).is_relative_to(home)
        and Path(m.source).parent != private_root
    ]
    assert [Path(m.source).name for m in writable] == [
        next(n for n in LOGIN_NAMES if any(t.endswith("/" + n) for t in PROMISED[name]))
    ]


@pytest.mark.parametrize("name", ["claude", "codex", "gemini", "opencode"])
@pytest.mark.parametrize("shape", ["symlink", "directory", "dangling"])
def test_a_login_that_is_not_a_plain_file_is_not_mounted(
    tmp_path: Path, name: str, shape: str
) -> None:
    """A writable bind follows a symlink on every start, so only a plain file is mounted."""
    app = make_app(tmp_path)
    create_sources(app, name)
    login = next(m for m in agents.load_preset(name).mounts if m.login)
    path = Path(agents.host_path(login.source, app.environ))
    path.unlink()
    if shape == "directory":
        path.mkdir()
    else:
        target = tmp_path / "elsewhere"
        if shape == "symlink":
            target.write_text("{}")
        path.symlink_to(target)
    assert run_init(app, "--agent", name) == ExitCode.OK
    config = load_config(app.cwd, environ=app.environ, cwd=app.cwd)
    assert login.target not in {m.target for m in config.mounts}
    out = app.stdout.getvalue()  # type: ignore[attr-defined]
    expected = {
        "directory": f"Note: {login.source} is not a plain file",
        "symlink": f"Note: {login.source} is a symbolic link (to {tmp_path}/elsewhere)",
        "dangling": f"Note: {login.source} is a symbolic link (to {tmp_path}/elsewhere)",
    }
    assert expected[shape] in out


@pytest.mark.parametrize("name", ["claude", "codex", "gemini"])
@pytest.mark.parametrize("where", ["file", "parent"])
def test_a_host_path_that_is_or_passes_through_a_symlink_is_not_mounted(
    tmp_path: Path, name: str, where: str
) -> None:
    """An earlier preset mounted ~/.claude writable: a sandbox may have planted
    `~/.claude/commands -> ~/.ssh`, which a read-only bind would show inside."""
    app = make_app(tmp_path)
    create_sources(app, name)
    home = Path(app.environ["HOME"])
    secret = home / ".ssh"
    secret.mkdir()
    (secret / "id_ed25519").write_text("PRIVATE KEY\n")
    preset = agents.load_preset(name)
    commands = next(m for m in preset.mounts if m.readonly and not Path(m.source).suffix)
    config_dir = Path(agents.host_path(commands.source, app.environ)).parent
    if where == "file":
        path = Path(agents.host_path(commands.source, app.environ))
        path.rmdir()
        path.symlink_to(secret)
        linked = [commands]
    else:  # the whole agent directory is a link: every mount below it is held back
        real = tmp_path / "dotfiles"
        config_dir.rename(real)
        config_dir.symlink_to(real)
        linked = [m for m in preset.mounts if not m.private]
    assert run_init(app, "--agent", name) == ExitCode.OK
    config = load_config(app.cwd, environ=app.environ, cwd=app.cwd)
    mounted = {m.target for m in config.mounts}
    for mount in linked:
        assert mount.target not in mounted
    for mount in config.mounts:
        assert not Path(mount.source).resolve().is_relative_to(secret)
    out = app.stdout.getvalue()  # type: ignore[attr-defined]
    assert "is a symbolic link" in out and "check that you made it" in out


def test_the_link_target_in_a_note_is_escaped(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    create_sources(app, "claude")
    path = Path(agents.host_path("~/.claude/CLAUDE.md", app.environ))
    path.unlink()
    path.symlink_to(tmp_path / "x\x1b[8my\u202e")
    assert run_init(app, "--agent", "claude") == ExitCode.OK
    out = app.stdout.getvalue()  # type: ignore[attr-defined]
    assert "\x1b" not in out and "\u202e" not in out
    assert "x\\x1b[8my\\u202e" in out


def test_claude_json_is_never_mounted(tmp_path: Path) -> None:
    """~/.claude.json names user-scope MCP servers, which the host runs."""
    app = make_app(tmp_path)
    create_sources(app, "claude")
    (Path(app.environ["HOME"]) / ".claude.json").write_text("{}")
    assert run_init(app, "--agent", "claude") == ExitCode.OK
    config = load_config(app.cwd, environ=app.environ, cwd=app.cwd)
    assert "/root/.claude.json" not in {m.target for m in config.mounts}
    assert '{ source = "~/.claude.json"' not in (app.cwd / ".alca.toml").read_text()


@pytest.mark.parametrize(
    ("mount", "fragment"),
    [
        ('source = "~/.x/settings.json"\nreadonly = false', "only login files"),
        ('source = "~/.x"\nreadonly = false', "only login files"),
        ('source = "~/.x/auth.json"\nreadonly = true\nlogin = true', "must be writable"),
        ('source = "/etc/x"\nreadonly = true', "must be under ~/"),
        ('source = "${alca:PRIVATE}/a/b"\nreadonly = false', "one private directory"),
        ('source = "${alca:PRIVATE}/a"\nreadonly = false\nlogin = true', "cannot be a login"),
    ],
)
def test_a_preset_that_exposes_host_config_is_rejected(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, mount: str, fragment: str
) -> None:
    """The rule is enforced by the loader, so a new preset file cannot break it."""
    folder = tmp_path / "presets"
    folder.mkdir()
    (folder / "bad.toml").write_text(
        'label = "x"\ncommand = "x"\ninstall = "x"\nunrestricted = "x"\n'
        f'[[mounts]]\n{mount}\ntarget = "/root/.x"\nwhy = "x"\n'
    )
    monkeypatch.setattr(agents, "_files", lambda: {"bad": folder / "bad.toml"})
    with pytest.raises(AlcaError) as caught:
        agents.load_preset("bad")
    assert fragment in caught.value.message


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


@pytest.mark.parametrize(
    ("source", "readonly", "exposed"),
    [
        ("~/.claude", False, "~/.claude/settings.json"),  # what earlier presets wrote
        ("~/.codex", False, "~/.codex/config.toml"),
        ("~/.gemini", False, "~/.gemini/settings.json"),
        ("~/.local/share/opencode", False, "~/.local/share/opencode/bin"),
        ("~", False, "~/.claude.json"),
        ("~/.claude/commands/team", False, "~/.claude/commands"),
        ("~/.claude.json", False, "~/.claude.json"),
        ("~/.claude", True, None),
        ("~/.claude/.credentials.json", False, None),
        ("~/projects/app", False, None),
    ],
)
def test_writable_agent_config_is_found(
    tmp_path: Path, source: str, readonly: bool, exposed: str | None
) -> None:
    environ = {"HOME": str(tmp_path)}
    found = agents.writable_agent_config([(agents.host_path(source, environ), readonly)], environ)
    paths = {path for _, path in found}
    if exposed is None:
        assert paths == set()
    else:
        assert agents.host_path(exposed, environ) in paths


def test_gemini_trusts_the_workspace_inside_the_sandbox() -> None:
    """Without it `gemini -p` refuses to run in /workspace (found by tests/integration)."""
    envs = {n: v for n, v, _ in agents.load_preset("gemini").envs}
    assert envs == {"GEMINI_CLI_TRUST_WORKSPACE": "true"}
