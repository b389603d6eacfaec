"""`alca completion bash|zsh|fish`: generated from the argparse tree, checked by real shells."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pytest

from alcatraz.app import App
from alcatraz.cli.parser import COMMANDS, build_parser
from alcatraz.commands import completion
from alcatraz.config import agents, templates

SYNTAX_CHECK = {"bash": ["bash", "-n"], "zsh": ["zsh", "-n"], "fish": ["fish", "--no-execute"]}


def generate(shell: str) -> str:
    app = App(stdout=io.StringIO(), environ={}, cwd=Path.cwd())
    namespace = build_parser("completion").parse_args(["completion", shell])
    assert namespace._module.main(namespace, app) == 0
    return app.stdout.getvalue()  # type: ignore[attr-defined]


def test_tree_has_every_command_subcommand_and_flag() -> None:
    root = completion.tree(completion.full_parser())
    assert list(root.commands) == list(COMMANDS)
    helper = root.commands["network-helper"][1]
    assert set(helper.commands) == {"install", "uninstall", "status"}
    init = root.commands["init"][1]
    values = {f: o.values for o in init.options for f in o.flags}
    assert list(values["--template"]) == templates.template_names()
    assert list(values["--agent"]) == agents.preset_names()
    assert values["--update"] == ()
    assert root.commands["completion"][1].words == completion.SHELLS


@pytest.mark.parametrize("shell", completion.SHELLS)
def test_script_is_valid_for_the_real_shell(tmp_path: Path, shell: str) -> None:
    text = generate(shell)
    assert "alca" in text and "template" in text and "network-helper" in text
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed (an optional extra for this check)")
    script = tmp_path / f"alca.{shell}"
    script.write_text(text)
    done = subprocess.run(
        [*SYNTAX_CHECK[shell], str(script)], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr


def complete_bash(tmp_path: Path, *words: str) -> list[str]:
    """Load the script in a real bash and call its function like `complete -F` would."""
    if shutil.which("bash") is None:
        pytest.skip("bash is not installed")
    script = tmp_path / "alca.bash"
    script.write_text(generate("bash"))
    quoted = " ".join("'" + w.replace("'", "'\\''") + "'" for w in words)
    program = (
        f"source {script}\n"
        f"COMP_WORDS=({quoted})\n"
        f"COMP_CWORD={len(words) - 1}\n"
        "_alca_complete\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", program],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return [line for line in done.stdout.splitlines() if line]


def test_bash_completes_template_names(tmp_path: Path) -> None:
    assert complete_bash(tmp_path, "alca", "init", "--template", "") == templates.template_names()
    assert complete_bash(tmp_path, "alca", "init", "-t", "debian-") == [
        "debian-mise",
        "debian-slim",
    ]


def test_bash_completes_agent_names(tmp_path: Path) -> None:
    assert complete_bash(tmp_path, "alca", "init", "--agent", "") == agents.preset_names()


def test_bash_completes_commands_subcommands_and_flags(tmp_path: Path) -> None:
    assert complete_bash(tmp_path, "alca", "") == list(COMMANDS)
    assert complete_bash(tmp_path, "alca", "network-helper", "") == [
        "install",
        "uninstall",
        "status",
    ]
    assert complete_bash(tmp_path, "alca", "doctor", "--") == ["--help", "--json"]
    assert complete_bash(tmp_path, "alca", "completion", "") == ["bash", "zsh", "fish"]
