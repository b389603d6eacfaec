"""The `alca` entry point: version, help, usage errors, and the error boundary."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

import alcatraz
from alcatraz import cli
from alcatraz.app import App
from alcatraz.errors import AlcaError, ExitCode


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """`alca argv` in-process; argparse's own exits (--version, --help) count as a return."""
    try:
        code = cli.main(argv)
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(autouse=True)
def _empty_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize("flag", ["--version", "-v"])
def test_version(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run([flag], capsys)
    assert code == 0
    assert out == f"alca version {alcatraz.__version__}\n"
    assert err == ""


def test_version_is_a_version() -> None:
    parts = alcatraz.__version__.split(".")
    assert len(parts) >= 2
    assert all(p.isdigit() for p in parts[:2])


def test_no_arguments_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run([], capsys)
    assert code == 0
    assert out.startswith("usage: alca")
    assert "config" in out
    assert "Show the effective configuration" in out
    assert err == ""


def test_help_flag(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["--help"], capsys)
    assert code == 0
    assert out.startswith("usage: alca")


def test_config_help_lists_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["config", "--help"], capsys)
    assert code == 0
    assert "show" in out
    assert "schema" in out


@pytest.mark.parametrize(
    "argv", [["bogus"], ["--bogus"], ["bogus", "config"], ["-x", "config", "show"]]
)
def test_unknown_command_or_option_is_a_usage_error(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(argv, capsys)
    assert code == ExitCode.USAGE == 64
    assert out == ""
    assert err.startswith("alca: ")
    assert "\n  Fix: run 'alca --help' for usage" in err
    assert "Traceback" not in err


def test_unknown_command_names_it(capsys: pytest.CaptureFixture[str]) -> None:
    _, _, err = run(["bogus"], capsys)
    assert "invalid choice: 'bogus'" in err


def test_alca_error_without_debug_has_no_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["config", "show"], capsys)
    assert code == ExitCode.NOT_INITIALIZED
    assert "Traceback" not in err
    assert err.startswith("configuration not found: run 'alca init' first")


@pytest.mark.parametrize(
    ("value", "traceback"), [("1", True), ("yes", True), ("0", False), ("", False)]
)
def test_alca_debug_adds_a_traceback(
    value: str, traceback: bool, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A context, so the variable is gone again before conftest checks os.environ.
    with monkeypatch.context() as patch:
        patch.setenv("ALCA_DEBUG", value)
        code, _, err = run(["config", "show"], capsys)
    assert code == ExitCode.NOT_INITIALIZED == 66
    assert ("Traceback (most recent call last)" in err) is traceback
    assert ("NotInitializedError" in err) is traceback
    assert "configuration not found: run 'alca init' first" in err
    assert "bug in alcatraz" not in err


def test_alca_debug_keeps_the_exit_code_of_a_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".alca.toml").write_text('image = "a"\nbogus = 1\n', encoding="utf-8")
    with monkeypatch.context() as patch:
        patch.setenv("ALCA_DEBUG", "1")
        code, _, err = run(["config", "show"], capsys)
    assert code == ExitCode.CONFIG
    assert "Traceback" in err
    assert "Error in .alca.toml (line 2), at bogus" in err


def test_internal_error_exits_70_with_bug_note(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import alcatraz.commands.config as command

    def boom(args: argparse.Namespace, app: App) -> int:
        raise RuntimeError("kaboom")

    monkeypatch.setattr(command, "main", boom)
    code, out, err = run(["config", "show"], capsys)
    assert code == ExitCode.INTERNAL == 70
    assert out == ""
    assert "Traceback (most recent call last)" in err
    assert "RuntimeError: kaboom" in err
    assert "This is a bug in alcatraz, not in your setup." in err
    assert err.rstrip().endswith("Please report it with the text above.")


def test_alca_error_from_a_command_uses_its_exit_code(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import alcatraz.commands.config as command

    def refuse(args: argparse.Namespace, app: App) -> int:
        raise AlcaError("nope", hint="do this\nthen that", exit_code=ExitCode.REFUSED)

    monkeypatch.setattr(command, "main", refuse)
    code, _, err = run(["config", "show"], capsys)
    assert code == ExitCode.REFUSED
    assert err == "nope\n  Fix: do this\n       then that\n"


def test_keyboard_interrupt_exits_130(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import alcatraz.commands.config as command

    def interrupted(args: argparse.Namespace, app: App) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(command, "main", interrupted)
    code, _, err = run(["config", "show"], capsys)
    assert code == ExitCode.INTERRUPTED == 130
    assert "Traceback" not in err


def test_command_return_value_is_the_exit_code(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import alcatraz.commands.config as command

    monkeypatch.setattr(command, "main", lambda args, app: 3)
    assert run(["config", "show"], capsys)[0] == 3


def test_exit_codes_are_distinct() -> None:
    values = [code.value for code in ExitCode]
    assert len(values) == len(set(values))
    assert ExitCode.OK == 0
