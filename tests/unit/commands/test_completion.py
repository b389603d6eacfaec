"""`alca completion bash|zsh|fish`: generated from the argparse tree, checked by real shells.

Each shell loads the generated script and is asked for completions the way it would ask on
a keypress: bash through the function `complete -F` registered, fish through `complete -C`,
zsh through its completion system (compinit, bashcompinit) driven in a pseudo-terminal by
`zpty`. A missing shell skips those tests on a developer machine, but fails them under CI
(`CI` set), where scripts/setup-test-env.sh installs zsh and fish.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from alcatraz.cli.parser import COMMANDS, build_parser
from alcatraz.commands import completion
from alcatraz.init import agents, templates
from tests.fakes import make_app

SYNTAX_CHECK = {"bash": ["bash", "-n"], "zsh": ["zsh", "-n"], "fish": ["fish", "--no-execute"]}


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def need(program: str) -> str:
    """The program's path; skip without it, except under CI, where it must be installed."""
    path = shutil.which(program)
    if path is None:
        message = f"{program} is not installed (scripts/setup-test-env.sh installs it)"
        if under_ci():
            pytest.fail(f"{message}; CI is set, so this is a failure, not a skip")
        pytest.skip(message)
    return path


def generate(shell: str) -> str:
    app = make_app(Path.cwd())
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
    need(shell)
    script = tmp_path / f"alca.{shell}"
    script.write_text(text)
    done = subprocess.run(
        [*SYNTAX_CHECK[shell], str(script)], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr


def complete_bash(tmp_path: Path, *words: str) -> list[str]:
    """Load the script in a real bash and call its function like `complete -F` would."""
    need("bash")
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


# -- fish: `complete -C` asks fish's own completion engine -------------------------------


def complete_fish(tmp_path: Path, line: str) -> list[str]:
    """The candidates fish offers for the command line `line` (cursor at its end)."""
    fish = need("fish")
    script = tmp_path / "alca.fish"
    script.write_text(generate("fish"))
    done = subprocess.run(
        [fish, "--no-config", "-c", 'source $argv[1]; complete -C"$argv[2]"', str(script), line],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        cwd=tmp_path,  # an empty directory (but for the script): file names are not words
    )
    return [entry.split("\t", 1)[0] for entry in done.stdout.splitlines() if entry]


def test_fish_completes_commands_with_descriptions(tmp_path: Path) -> None:
    fish = need("fish")
    script = tmp_path / "alca.fish"
    script.write_text(generate("fish"))
    done = subprocess.run(
        [fish, "--no-config", "-c", 'source $argv[1]; complete -C"alca "', str(script)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    offered = dict(line.split("\t", 1) for line in done.stdout.splitlines())
    assert sorted(offered) == sorted(COMMANDS)
    assert offered["init"] == "Initialize .alca.toml configuration"


def test_fish_completes_subcommands_and_flags(tmp_path: Path) -> None:
    assert complete_fish(tmp_path, "alca network-helper ") == ["install", "status", "uninstall"]
    assert complete_fish(tmp_path, "alca completion ") == ["bash", "fish", "zsh"]
    assert sorted(complete_fish(tmp_path, "alca net ")) == ["allow", "log"]
    assert set(complete_fish(tmp_path, "alca init --")) == {
        "--agent",
        "--help",
        "--template",
        "--update",
        "--yes",
    }
    assert "--json" in complete_fish(tmp_path, "alca doctor --")


def test_fish_completes_template_and_agent_names(tmp_path: Path) -> None:
    offered = complete_fish(tmp_path, "alca init --template ")
    assert set(templates.template_names()) <= set(offered)
    assert complete_fish(tmp_path, "alca init -t debian-") == ["debian-mise", "debian-slim"]
    assert set(agents.preset_names()) <= set(complete_fish(tmp_path, "alca init --agent "))


def test_fish_offers_only_the_values_after_template_and_agent(tmp_path: Path) -> None:
    (tmp_path / "some-file").write_text("")
    assert complete_fish(tmp_path, "alca init --template ") == templates.template_names()
    assert complete_fish(tmp_path, "alca init --agent ") == agents.preset_names()


# -- zsh: a real completion widget, in a pseudo-terminal ---------------------------------

# The interactive zsh under test: no user files, emacs keys, no listing or beeping, and a
# `compadd` that also appends every match it adds to $ALCA_HITS. A prompt the driver
# waits for before typing (zsh may drop what is typed before its line editor starts).
ZSH_SESSION = r"""
bindkey -e
PS1='@@READY@@ ' RPS1='' PROMPT_EOL_MARK=''
setopt no_beep no_list_beep no_auto_list
LISTMAX=100000
autoload -Uz compinit && compinit -u -D
source "$ALCA_SCRIPT"
compadd() {
  if (( ${@[(I)-[OAD]*]} )); then builtin compadd "$@"; return; fi
  local -a hits
  builtin compadd -A hits "$@"
  (( ${#hits} )) && print -rl -- "${hits[@]}" >> "$ALCA_HITS"
  builtin compadd "$@"
}
"""

# Types the line, presses Tab, clears the line, then runs a command whose output marks the
# end (typed as __DO""NE__, so only its output matches the pattern).
ZSH_DRIVER = r"""
zmodload zsh/zpty || exit 3
zpty alca zsh -f -i
zpty -w alca "source ${(q)ALCA_SESSION}"
zpty -r alca out '*@@READY@@*' || exit 4
zpty -n -w alca "$1"$'	'
zpty -n -w alca $'\C-u'
zpty -w alca 'print -r -- __DO""NE__'
zpty -r alca out '*__DONE__*' || exit 5
zpty -d alca
"""


def complete_zsh(tmp_path: Path, line: str) -> list[str]:
    """What zsh's completion system adds for `line`: compinit, the script's `complete -F`
    through bashcompinit, and zsh's own matching of the typed prefix."""
    zsh = need("zsh")
    work = Path(tempfile.mkdtemp(prefix="zsh-", dir=tmp_path))
    (work / "alca.zsh").write_text(generate("zsh"))
    (work / "session.zsh").write_text(ZSH_SESSION)
    (work / "driver.zsh").write_text(ZSH_DRIVER)
    hits = work / "hits"
    env = {
        **os.environ,
        "ALCA_SCRIPT": str(work / "alca.zsh"),
        "ALCA_SESSION": str(work / "session.zsh"),
        "ALCA_HITS": str(hits),
    }
    env.pop("ZDOTDIR", None)
    done = subprocess.run(
        [zsh, "-f", str(work / "driver.zsh"), line],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        cwd=work,
    )
    assert done.returncode == 0, f"zsh driver failed ({done.returncode}): {done.stderr}"
    return hits.read_text().split() if hits.exists() else []


def test_zsh_completes_commands(tmp_path: Path) -> None:
    assert complete_zsh(tmp_path, "alca ") == list(COMMANDS)
    assert complete_zsh(tmp_path, "alca net") == ["net", "network-helper"]


def test_zsh_completes_subcommands_and_flags(tmp_path: Path) -> None:
    assert complete_zsh(tmp_path, "alca network-helper ") == ["install", "uninstall", "status"]
    assert complete_zsh(tmp_path, "alca completion ") == ["bash", "zsh", "fish"]
    assert complete_zsh(tmp_path, "alca net ") == ["log", "allow"]
    assert complete_zsh(tmp_path, "alca doctor --") == ["--help", "--json"]


def test_zsh_completes_template_and_agent_names(tmp_path: Path) -> None:
    assert complete_zsh(tmp_path, "alca init --template ") == templates.template_names()
    assert complete_zsh(tmp_path, "alca init -t debian-") == ["debian-mise", "debian-slim"]
    assert complete_zsh(tmp_path, "alca init --agent ") == agents.preset_names()
