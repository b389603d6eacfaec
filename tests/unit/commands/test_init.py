"""`alca init` template flow: every template loads, the file layout, .gitignore, refusals."""

from __future__ import annotations

import io
import os
import shlex
import subprocess
import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alcatraz import cli
from alcatraz.app import App
from alcatraz.cli.parser import build_parser
from alcatraz.commands.init import update_gitignore
from alcatraz.config.load import load_config
from alcatraz.config.schema import SCHEMA_FILE_NAME, schema_comment
from alcatraz.errors import AlcaError, ExitCode, UsageError
from alcatraz.init import templates
from tests.conftest import tree_snapshot
from tests.fakes import FakeTTY, project_app

ALL = list(templates.TEMPLATES)


def run_init(app: App, *argv: str) -> int:
    """Parse like the CLI does, then run the command with this App."""
    namespace = build_parser("init").parse_args(["init", *argv])
    result: int = namespace._module.main(namespace, app)
    return result


def out(app: App) -> str:
    assert isinstance(app.stdout, io.StringIO)
    return app.stdout.getvalue()


def err(app: App) -> str:
    assert isinstance(app.stderr, io.StringIO)
    return app.stderr.getvalue()


# -- every template -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_template_writes_a_file_that_loads(tmp_path: Path, name: str) -> None:
    app = project_app(tmp_path)
    assert run_init(app, "-t", name) == ExitCode.OK
    config_path = app.cwd / ".alca.toml"
    config = load_config(app.cwd, environ=app.environ, cwd=app.cwd)
    template = templates.TEMPLATES[name]
    assert config.image == template.image
    assert config.up is not None and config.up.command == template.up
    assert config.enter is not None and config.enter.command == template.enter
    assert config.workdir_exclude == template.workdir_exclude
    assert {k: config.envs[k].value for k, _ in template.envs} == dict(template.envs)
    assert out(app) == (
        f"✓ Created {config_path}\nEdit this file to customize your container settings.\n"
    )
    assert oct(config_path.stat().st_mode & 0o777) == oct(0o644)


@pytest.mark.parametrize("name", ALL)
def test_template_reads_back_exactly(name: str) -> None:
    template = templates.TEMPLATES[name]
    data = tomllib.loads(templates.render(template, schema_line="#:schema file:///x.json"))
    assert data["image"] == template.image
    assert data["commands"] == {"up": template.up, "enter": template.enter}
    assert data["includes"] == ["./.alca.*.toml"]
    assert data["workdir_exclude"] == list(template.workdir_exclude)
    assert data["mounts"] == list(template.mounts)
    assert data["envs"] == dict(template.envs)
    assert data["envs"]["IS_SANDBOX"] == "1"


@pytest.mark.parametrize("name", ALL)
def test_file_starts_with_schema_and_reference_comments(tmp_path: Path, name: str) -> None:
    app = project_app(tmp_path)
    run_init(app, "--template", name)
    lines = (app.cwd / ".alca.toml").read_text(encoding="utf-8").splitlines()
    assert lines[0] == schema_comment(app.home)
    assert lines[0].startswith("#:schema file://")
    assert lines[1] == templates.REFERENCE_COMMENT
    assert lines[2] == ""
    assert (app.home / SCHEMA_FILE_NAME).is_file()
    text = "\n".join(lines)
    assert "bolasblack.github.io" not in text and "raw.githubusercontent" not in text
    up_line = lines.index('up = """')
    assert lines[up_line - 1] == "# " + templates.TEMPLATES[name].up_comment


@pytest.mark.parametrize("name", ALL)
def test_scripts_are_valid_posix_sh_without_source(name: str) -> None:
    """B14: `source` is a bashism; dash (Debian's sh) does not have it."""
    template = templates.TEMPLATES[name]
    for script in (template.up, template.enter):
        assert "source " not in script.replace("source.sh", "")
        check = subprocess.run(["/bin/sh", "-n", "-c", script], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr


def _run_enter(enter: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """What `alca run ARGS` does inside the container: sh -c "<enter> <quoted args>"."""
    line = enter + " " + shlex.join(args)
    return subprocess.run(
        ["/bin/sh", "-c", line], capture_output=True, text=True, cwd=cwd, timeout=30
    )


@pytest.mark.parametrize("name", ALL)
def test_enter_passes_the_run_arguments_through(tmp_path: Path, name: str) -> None:
    enter = templates.TEMPLATES[name].enter
    assert _run_enter(enter, ["echo", "hi"], tmp_path).stdout == "hi\n"
    printed = _run_enter(enter, ["printf", "%s|", "a b", "it's", "$HOME", ";"], tmp_path)
    assert printed.stdout == "a b|it's|$HOME|;|"
    assert _run_enter(enter, ["sh", "-c", "exit 7"], tmp_path).returncode == 7


def test_nix_up_and_enter_are_no_ops_without_a_flake(tmp_path: Path) -> None:
    """B14: upstream's `[ -f flake.nix ] && ...` exits 1 in projects without a flake."""
    nix = templates.TEMPLATES["nix"]
    up = subprocess.run(["/bin/sh", "-c", nix.up], cwd=tmp_path, capture_output=True)
    assert up.returncode == 0
    assert _run_enter(nix.enter, ["true"], tmp_path).returncode == 0
    assert "nix develop" in nix.enter and '--command "$@"' in nix.enter


def test_debian_slim_really_installs_mise() -> None:
    """B14: upstream's label promised mise on first run but the script never installed it."""
    template = templates.TEMPLATES["debian-slim"]
    assert "mise" in template.label
    assert "apt-get install -y mise" in template.up


def test_agent_template_hides_secrets_and_mounts_nothing_from_the_host_home() -> None:
    agent = templates.TEMPLATES["agent"]
    for pattern in ("**/.env", "**/.env.*", "**/*.pem", "**/*.key", "**/secrets/", "**/.ssh/"):
        assert pattern in agent.workdir_exclude
    assert ".alca.mounts" in agent.workdir_exclude
    assert agent.includes == ("./.alca.*.toml",)
    assert dict(agent.envs)["IS_SANDBOX"] == "1"
    assert all(m.startswith(".alca.mounts/") for m in agent.mounts)
    assert "npm" in agent.label.lower() or "node" in agent.label.lower()
    text = templates.render(agent, schema_line="#:schema x")
    assert "$HOME" not in text.replace("$PATH", "") and "~/.ssh" not in text


def test_upstream_template_names_still_work() -> None:
    assert {"alpine", "debian-mise", "debian-slim", "nix", "agent"} <= set(templates.TEMPLATES)
    assert templates.DEFAULT_TEMPLATE == "alpine"


# -- TOML string rendering ------------------------------------------------------------------


@given(st.text())
def test_multiline_strings_read_back_exactly(value: str) -> None:
    assert tomllib.loads("k = " + templates.toml_multiline(value))["k"] == value


@given(st.text(alphabet='"\\\n\r\t a\x00\x7f'))
def test_multiline_strings_with_many_quotes_read_back_exactly(value: str) -> None:
    assert tomllib.loads("k = " + templates.toml_multiline(value))["k"] == value


@given(st.text())
def test_basic_strings_read_back_exactly(value: str) -> None:
    assert tomllib.loads("k = " + templates.toml_string(value))["k"] == value


@pytest.mark.parametrize("value", ['"', '""', '"""', 'a"""b""""', "x\\", "\\\n", "\r\n", "\x7f"])
def test_multiline_tricky_values(value: str) -> None:
    assert tomllib.loads("k = " + templates.toml_multiline(value))["k"] == value


# -- .gitignore -----------------------------------------------------------------------------

ENTRIES = ".alca/\n.alca.local.toml\n.alca.*.local.toml\n.alca.mounts/\n"


def test_gitignore_is_created_when_missing(tmp_path: Path) -> None:
    app = project_app(tmp_path)
    run_init(app, "-t", "alpine")
    assert (app.cwd / ".gitignore").read_text() == ENTRIES


def test_gitignore_keeps_content_and_adds_only_missing_lines(tmp_path: Path) -> None:
    app = project_app(tmp_path)
    (app.cwd / ".gitignore").write_text("node_modules/\n  .alca/  \n# comment\n")
    run_init(app, "-t", "alpine")
    assert (app.cwd / ".gitignore").read_text() == (
        "node_modules/\n  .alca/  \n# comment\n"
        ".alca.local.toml\n.alca.*.local.toml\n.alca.mounts/\n"
    )


def test_gitignore_without_final_newline_keeps_that_style(tmp_path: Path) -> None:
    path = tmp_path / ".gitignore"
    path.write_text("dist")
    assert update_gitignore(path)
    assert path.read_text() == "dist\n" + ENTRIES.rstrip("\n")
    assert not update_gitignore(path)  # a second run changes nothing
    assert path.read_text() == "dist\n" + ENTRIES.rstrip("\n")


def test_gitignore_with_crlf_line_endings(tmp_path: Path) -> None:
    path = tmp_path / ".gitignore"
    path.write_bytes(b"dist\r\n.alca/\r\n")
    update_gitignore(path)
    assert path.read_bytes() == (
        b"dist\r\n.alca/\r\n.alca.local.toml\r\n.alca.*.local.toml\r\n.alca.mounts/\r\n"
    )


def test_gitignore_complete_is_left_byte_identical(tmp_path: Path) -> None:
    path = tmp_path / ".gitignore"
    path.write_bytes(ENTRIES.encode() + b"\xff-not-utf8\n")
    before = path.stat().st_mtime_ns
    assert not update_gitignore(path)
    assert path.read_bytes() == ENTRIES.encode() + b"\xff-not-utf8\n"
    assert path.stat().st_mtime_ns == before


def test_gitignore_with_non_utf8_bytes_is_preserved(tmp_path: Path) -> None:
    path = tmp_path / ".gitignore"
    path.write_bytes(b"caf\xe9\n")
    update_gitignore(path)
    assert path.read_bytes() == b"caf\xe9\n" + ENTRIES.encode()


# -- refusals -------------------------------------------------------------------------------


def test_existing_config_is_refused_and_left_byte_identical(tmp_path: Path) -> None:
    app = project_app(tmp_path)
    config = app.cwd / ".alca.toml"
    config.write_bytes(b'image = "mine"\n# keep me\n')
    before = tree_snapshot(app.cwd)
    with pytest.raises(AlcaError) as caught:
        run_init(app, "-t", "alpine")
    assert caught.value.exit_code == ExitCode.CANT_CREATE
    assert int(ExitCode.CANT_CREATE) == 73
    assert caught.value.message == f"configuration file already exists: {config}"
    assert tree_snapshot(app.cwd) == before


def test_existing_config_is_checked_before_the_menu(tmp_path: Path) -> None:
    app = project_app(tmp_path, FakeTTY("1\n"))
    (app.cwd / ".alca.toml").write_text("")
    with pytest.raises(AlcaError) as caught:
        run_init(app)
    assert caught.value.exit_code == ExitCode.CANT_CREATE
    assert "Select a template" not in out(app)


def test_dangling_symlink_counts_as_existing(tmp_path: Path) -> None:
    app = project_app(tmp_path)
    (app.cwd / ".alca.toml").symlink_to(tmp_path / "elsewhere.toml")
    with pytest.raises(AlcaError) as caught:
        run_init(app, "-t", "nix")
    assert caught.value.exit_code == ExitCode.CANT_CREATE
    assert not (tmp_path / "elsewhere.toml").exists()


def test_unknown_template_is_a_usage_error_and_writes_nothing(tmp_path: Path) -> None:
    app = project_app(tmp_path)
    with pytest.raises(UsageError) as caught:
        run_init(app, "-t", "ubuntu")
    assert caught.value.exit_code == ExitCode.USAGE
    assert int(ExitCode.USAGE) == 64
    assert caught.value.message == (
        'unknown template "ubuntu", valid options: agent, alpine, debian-mise, debian-slim, nix'
    )
    assert tree_snapshot(app.cwd) == {}


def test_without_terminal_and_template_it_fails_instead_of_prompting(tmp_path: Path) -> None:
    app = project_app(tmp_path, io.StringIO("1\n"))
    with pytest.raises(UsageError) as caught:
        run_init(app)
    assert "--template" in (caught.value.hint or "")
    for name in ALL:
        assert name in (caught.value.hint or "")
    assert tree_snapshot(app.cwd) == {}
    assert out(app) == ""


def test_non_git_argument_is_an_error_not_ignored(tmp_path: Path) -> None:
    """B18: upstream silently ignored it and ran the template flow."""
    app = project_app(tmp_path)
    with pytest.raises(UsageError) as caught:
        run_init(app, "https://example.com/presets.git", "-t", "alpine")
    assert "git+" in caught.value.message
    assert tree_snapshot(app.cwd) == {}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--update", "-t", "alpine"], "cannot use --template with --update"),
        (["--update", "git+file:///x"], "cannot use a preset URL with --update"),
        (["git+file:///x", "-t", "alpine"], "cannot use --template with a preset URL"),
    ],
)
def test_conflicting_options(tmp_path: Path, argv: list[str], message: str) -> None:
    app = project_app(tmp_path)
    with pytest.raises(UsageError) as caught:
        run_init(app, *argv)
    assert caught.value.message == message
    assert tree_snapshot(app.cwd) == {}


# -- the menu -------------------------------------------------------------------------------


def _menu_order() -> list[str]:
    rest = [n for n in templates.TEMPLATES if n != templates.DEFAULT_TEMPLATE]
    return [templates.DEFAULT_TEMPLATE, *rest]


@pytest.mark.parametrize("number", range(1, len(ALL) + 1))
def test_menu_picks_the_chosen_template(tmp_path: Path, number: int) -> None:
    app = project_app(tmp_path, FakeTTY(f"{number}\n"))
    assert run_init(app) == ExitCode.OK
    chosen = _menu_order()[number - 1]
    text = out(app)
    assert text.startswith("Select a template")
    for name, template in templates.TEMPLATES.items():
        assert name in text and template.label in text
    assert f"  1) {templates.DEFAULT_TEMPLATE}" in text
    config = load_config(app.cwd, environ=app.environ, cwd=app.cwd)
    assert config.image == templates.TEMPLATES[chosen].image


def test_menu_enter_means_alpine(tmp_path: Path) -> None:
    app = project_app(tmp_path, FakeTTY("\n"))
    run_init(app)
    assert load_config(app.cwd, environ=app.environ, cwd=app.cwd).image == "alpine:3.21"


def test_menu_accepts_a_name_and_asks_again_after_nonsense(tmp_path: Path) -> None:
    app = project_app(tmp_path, FakeTTY("42\nnix\n"))
    run_init(app)
    assert "Please enter a number" in out(app)
    assert load_config(app.cwd, environ=app.environ, cwd=app.cwd).image == "nixos/nix"


def test_menu_end_of_input_cancels_and_writes_nothing(tmp_path: Path) -> None:
    app = project_app(tmp_path, FakeTTY(""))
    with pytest.raises(UsageError, match="cancelled"):
        run_init(app)
    assert not (app.cwd / ".alca.toml").exists()


def test_menu_gives_up_after_three_bad_answers(tmp_path: Path) -> None:
    app = project_app(tmp_path, FakeTTY("x\ny\nz\n1\n"))
    with pytest.raises(UsageError):
        run_init(app)
    assert not (app.cwd / ".alca.toml").exists()


# -- through the real entry point -----------------------------------------------------------


def test_cli_entry_point_creates_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli.main(["init", "-t", "alpine"]) == 0
    created = tmp_path / ".alca.toml"
    assert created.is_file()
    captured = capsys.readouterr()
    assert f"✓ Created {created}" in captured.out
    assert load_config(tmp_path, environ=dict(os.environ), cwd=tmp_path).image == "alpine:3.21"
    assert (tmp_path / ".gitignore").read_text() == ENTRIES
    # A second run refuses, with the exit code for "cannot create".
    assert cli.main(["init", "-t", "alpine"]) == ExitCode.CANT_CREATE
    assert "configuration file already exists" in capsys.readouterr().err


def test_cli_entry_point_unknown_template(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli.main(["init", "--template", "nope"]) == ExitCode.USAGE
    assert 'unknown template "nope"' in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
