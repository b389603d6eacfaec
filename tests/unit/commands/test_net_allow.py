"""`alca net allow`: the proposed change, the question, and the hostile workspace.

The agent owns the project directory: `.alca.toml` may be a link to a host file, a FIFO,
huge, or swapped while the user reads the diff. Nothing outside the project is read or
written, and a refused change leaves every file as it was.
"""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from alcatraz.app import App
from alcatraz.cli.parser import build_parser
from alcatraz.config import load as config_load
from alcatraz.config.netgrammar import parse_egress_rule
from alcatraz.errors import AlcaError, ExitCode
from tests import fakes

CONFIG = (
    "# my sandbox\n"
    'image = "debian:12"\n'
    "\n"
    "[network]\n"
    "egress = [\n"
    '  "api.example.test",  # the agent\'s API\n'
    '  "*.cdn.example.test:443",\n'
    "]\n"
)


@pytest.fixture
def loaded(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """`load_config` answers with the egress of CONFIG (the loader of this branch does not
    read `egress` yet) and records every project it loaded."""
    calls: list[Path] = []

    def fake_load(root: Path, **_: Any) -> SimpleNamespace:
        calls.append(root)
        rules = ("api.example.test", "*.cdn.example.test:443")
        return SimpleNamespace(egress=tuple(parse_egress_rule(r) for r in rules))

    monkeypatch.setattr(config_load, "load_config", fake_load)
    return calls


def project(tmp_path: Path, text: str = CONFIG, stdin: io.StringIO | None = None) -> App:
    app = fakes.project_app(tmp_path, stdin)
    (app.cwd / ".alca.toml").write_text(text)
    return app


def net_allow(app: App, *argv: str) -> int:
    namespace = build_parser("net").parse_args(["net", "allow", *argv])
    try:
        result: int = namespace._module.main(namespace, app)
    except AlcaError as error:
        app.stderr.write(error.render() + "\n")
        return int(error.exit_code)
    return result


def output(app: App) -> str:
    return app.stdout.getvalue() + app.stderr.getvalue()  # type: ignore[attr-defined]


def test_adds_the_names_keeping_comments_and_layout(tmp_path: Path, loaded: list[Path]) -> None:
    app = project(tmp_path)
    assert net_allow(app, "registry.npmjs.org", "tcp://git.example.test:22", "-y") == 0
    assert (app.cwd / ".alca.toml").read_text() == CONFIG.replace(
        '443",\n]',
        '443",\n  "registry.npmjs.org",\n  "tcp://git.example.test:22",\n]',
    )
    text = output(app)
    assert '+  "registry.npmjs.org",' in text and "--- a/.alca.toml" in text
    assert "run 'alca up' to apply (it asks you to approve the change)" in text


def test_without_a_terminal_or_yes_nothing_is_written(tmp_path: Path, loaded: list[Path]) -> None:
    app = project(tmp_path)
    assert net_allow(app, "pypi.org") == ExitCode.REFUSED
    assert (app.cwd / ".alca.toml").read_text() == CONFIG
    assert '+  "pypi.org",' in output(app)  # the diff was shown
    assert "add -y" in output(app)


@pytest.mark.parametrize(("answer", "code", "changed"), [("y\n", 0, True), ("\n", 1, False)])
def test_on_a_terminal_it_asks(
    tmp_path: Path, loaded: list[Path], answer: str, code: int, changed: bool
) -> None:
    app = project(tmp_path, stdin=fakes.FakeTTY(answer))
    assert net_allow(app, "pypi.org") == code
    assert ("pypi.org" in (app.cwd / ".alca.toml").read_text()) is changed
    assert "Write this change to .alca.toml? [y/N]" in output(app)


def test_already_allowed_changes_nothing(tmp_path: Path, loaded: list[Path]) -> None:
    app = project(tmp_path)
    before = os.stat(app.cwd / ".alca.toml")
    assert net_allow(app, "api.example.test", "a.cdn.example.test:443", "-y") == 0
    assert "Already allowed" in output(app)
    assert os.stat(app.cwd / ".alca.toml").st_ino == before.st_ino
    assert (app.cwd / ".alca.toml").read_text() == CONFIG


def test_only_the_names_not_yet_allowed_are_added_once(tmp_path: Path, loaded: list[Path]) -> None:
    app = project(tmp_path)
    assert net_allow(app, "api.example.test", "new.test", "new.test", "-y") == 0
    assert (app.cwd / ".alca.toml").read_text().count('"new.test"') == 1
    assert '"api.example.test",  # the agent' in (app.cwd / ".alca.toml").read_text()


def test_refused_when_egress_is_absent(tmp_path: Path) -> None:
    app = project(tmp_path, 'image = "debian:12"\n')
    assert net_allow(app, "pypi.org", "-y") == ExitCode.REFUSED
    assert "the internet is open to this sandbox" in output(app)
    assert (app.cwd / ".alca.toml").read_text() == 'image = "debian:12"\n'


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("PyPI.org", 'write "pypi.org"'),
        ("bücher.example", "xn--bcher-kva.example"),
        ("10.0.0.0/8:443", "lan-access"),
        ("a..b", "empty label"),
        ("x.test:0", "out of range"),
        ("bad-.test", "inner hyphens"),
        ("\x1b]0;PWN\x07.test", "control character"),
    ],
)
def test_bad_entries_are_usage_errors(
    tmp_path: Path, loaded: list[Path], name: str, shown: str
) -> None:
    app = project(tmp_path)
    assert net_allow(app, name, "-y") == ExitCode.USAGE
    assert shown in output(app)
    assert (app.cwd / ".alca.toml").read_text() == CONFIG
    assert loaded == []


# --- the hostile workspace -------------------------------------------------------------------


def test_a_config_linked_to_a_host_file_is_neither_read_nor_written(
    tmp_path: Path, loaded: list[Path]
) -> None:
    host = tmp_path / "host.toml"
    host.write_text(CONFIG)
    app = fakes.project_app(tmp_path)
    (app.cwd / ".alca.toml").symlink_to(host)
    assert net_allow(app, "pypi.org", "-y") == ExitCode.REFUSED
    assert "./.alca.toml is a symbolic link" in output(app)
    assert host.read_text() == CONFIG
    assert loaded == []  # refused before the loader read anything through it
    assert os.readlink(app.cwd / ".alca.toml") == str(host)


def test_a_fifo_config_does_not_block(tmp_path: Path, loaded: list[Path]) -> None:
    app = fakes.project_app(tmp_path)
    os.mkfifo(app.cwd / ".alca.toml")
    codes: list[int] = []
    worker = threading.Thread(target=lambda: codes.append(net_allow(app, "a.test", "-y")))
    worker.daemon = True
    worker.start()
    worker.join(10)
    assert codes == [ExitCode.REFUSED]
    assert "is not a regular file" in output(app)


def test_a_huge_config_is_refused(tmp_path: Path, loaded: list[Path]) -> None:
    app = project(tmp_path, CONFIG + "#" * (2 << 20) + "\n")
    assert net_allow(app, "a.test", "-y") == ExitCode.REFUSED
    assert "is larger than" in output(app)


def test_a_config_swapped_for_a_link_while_asking_is_not_written_through(
    tmp_path: Path, loaded: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    host = tmp_path / "host.toml"
    host.write_text("host = true\n")
    app = project(tmp_path, stdin=fakes.FakeTTY("y\n"))
    config = app.cwd / ".alca.toml"

    def swap(question: str, *, default: bool = False) -> bool:
        config.unlink()
        config.symlink_to(host)
        return True

    monkeypatch.setattr(app, "confirm", swap)
    assert net_allow(app, "a.test") == ExitCode.REFUSED
    assert "changed while it was edited" in output(app)
    assert host.read_text() == "host = true\n"
    assert config.is_symlink()
    assert sorted(p.name for p in app.cwd.iterdir()) == [".alca.toml"]  # no temporary left


def test_the_file_keeps_its_mode(tmp_path: Path, loaded: list[Path]) -> None:
    app = project(tmp_path)
    os.chmod(app.cwd / ".alca.toml", 0o640)
    assert net_allow(app, "a.test", "-y") == 0
    assert os.stat(app.cwd / ".alca.toml").st_mode & 0o777 == 0o640
    assert sorted(p.name for p in app.cwd.iterdir()) == [".alca.toml"]


def test_escape_sequences_in_the_file_are_shown_escaped(tmp_path: Path, loaded: list[Path]) -> None:
    app = project(tmp_path, CONFIG.replace("# the agent's API", "# hidden\u202e\u200b"))
    assert net_allow(app, "a.test") == ExitCode.REFUSED
    assert "\u202e" not in output(app) and "\u200b" not in output(app)
    assert "# hidden\\u202e\\u200b" in output(app)
