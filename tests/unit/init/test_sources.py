"""Issue 13 item 9: `alca init --update` contacts only sources the user confirms.

The agent can rewrite line 1 of any preset file in the project. These tests use real git and
local repositories only (no network): a source that is refused must not be contacted at all
(no preset cache is even created), and one that is accepted is fetched as before.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from alcatraz.errors import AlcaError, ExitCode, RefusedError
from alcatraz.init import preset_url
from alcatraz.init.sources import source_notes
from alcatraz.printable import printable_ascii
from tests.conftest import tree_snapshot
from tests.fakes import FakeTTY
from tests.unit.commands.test_init import err, out, run_init
from tests.unit.init.test_presets import NODE, Repo, make_app, make_repo

PRESET = ".alca.node.toml"
NEWER = 'image = "node:24"\n'


def marker(url: str, path: str = PRESET, commit: str = "a" * 40) -> str:
    return f"# Alcatraz Preset Source: git+{url}#{commit}:{path}\n"


@pytest.fixture
def bare(tmp_path: Path) -> Repo:
    """A bare repository, reached by file://, that holds a newer preset than the project."""
    work = make_repo(tmp_path, {PRESET: NEWER}, name="work")
    path = tmp_path / "remote" / "bare.git"
    work.git("clone", "-q", "--bare", str(work.path), str(path))
    return Repo(path, work.env)


def planted(tmp_path: Path, bare: Repo, stdin: io.StringIO | None = None) -> Path:
    """A project whose preset file names `bare` (as an agent could have written it)."""
    app = make_app(tmp_path, stdin)
    (app.cwd / PRESET).write_text(marker(bare.clone_url) + NODE)
    return app.cwd


def cache(tmp_path: Path) -> Path:
    return tmp_path / "home" / ".alcatraz" / "cache-presets"


def test_without_a_terminal_update_is_refused_and_nothing_is_contacted(
    tmp_path: Path, bare: Repo
) -> None:
    project = planted(tmp_path, bare)
    before = tree_snapshot(project)
    app = make_app(tmp_path)
    with pytest.raises(RefusedError) as caught:
        run_init(app, "--update")
    assert caught.value.exit_code == ExitCode.REFUSED == 77
    assert f"{bare.clone_url} (a repository on this machine" in caught.value.message
    assert "--yes" in (caught.value.hint or "")
    assert tree_snapshot(project) == before
    assert not cache(tmp_path).exists()


def test_on_a_terminal_the_source_is_shown_and_no_means_not_contacted(
    tmp_path: Path, bare: Repo
) -> None:
    project = planted(tmp_path, bare)
    before = tree_snapshot(project)
    app = make_app(tmp_path, FakeTTY("n\n"))
    assert run_init(app, "--update") == ExitCode.OK
    shown = out(app)
    assert f"Source: {bare.clone_url}" in shown
    assert "Note: a repository on this machine" in shown
    assert f"{PRESET} <- {PRESET}" in shown
    assert "Fetch from this source? [y/N]" in shown
    assert "not contacting" in err(app)
    assert tree_snapshot(project) == before
    assert not cache(tmp_path).exists()


@pytest.mark.parametrize("answer", ["\n", "maybe\n", ""])
def test_anything_but_yes_is_no(tmp_path: Path, bare: Repo, answer: str) -> None:
    project = planted(tmp_path, bare)
    before = tree_snapshot(project)
    run_init(make_app(tmp_path, FakeTTY(answer)), "--update")
    assert tree_snapshot(project) == before
    assert not cache(tmp_path).exists()


def test_on_a_terminal_yes_updates(tmp_path: Path, bare: Repo) -> None:
    project = planted(tmp_path, bare)
    app = make_app(tmp_path, FakeTTY("y\ny\n"))  # the source; the local-change question
    assert run_init(app, "--update") == ExitCode.OK
    assert (project / PRESET).read_text().endswith(NEWER)


def test_yes_updates_without_a_terminal(tmp_path: Path, bare: Repo) -> None:
    project = planted(tmp_path, bare)
    (project / PRESET).write_text(marker(bare.clone_url, commit="b" * 40) + NODE)
    app = make_app(tmp_path)
    assert run_init(app, "--update", "--yes") == ExitCode.OK
    assert f"Updating presets from {bare.clone_url} (--yes)" in out(app)
    assert (project / PRESET).read_text().endswith(NEWER)


def test_yes_needs_update(tmp_path: Path) -> None:
    from alcatraz.errors import UsageError

    with pytest.raises(UsageError):
        run_init(make_app(tmp_path), "--yes")


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("ext::sh -c id", "printable ASCII"),
        ("ext::sh", "unsupported preset URL"),
        ("fd::3", "unsupported preset URL"),
        ("ssh://-oProxyCommand=id/r", "must not start with '-'"),
        ("ssh://-x@host/r", "must not start with '-'"),
        ("-upload-pack=id", "unsupported preset URL"),
        ("file://otherhost/r", "must be local"),
        ("https://h/r\x1b[8m", "printable ASCII"),
        ("https://h/\u202er", "printable ASCII"),
        ("https://g\u0456thub.com/r", "printable ASCII"),
    ],
)
def test_odd_or_dangerous_sources_in_a_marker_are_never_contacted(
    tmp_path: Path, url: str, fragment: str
) -> None:
    app = make_app(tmp_path, FakeTTY("y\n"))
    (app.cwd / PRESET).write_text(marker(url) + NODE)
    before = tree_snapshot(app.cwd)
    assert run_init(app, "--update") == ExitCode.OK
    warning = err(app)
    assert fragment in warning and "skipped" in warning
    assert not any(ord(ch) < 0x20 and ch != "\n" for ch in warning)
    assert "\u202e" not in warning and "\u0456" not in warning
    assert "Fetch from" not in out(app)
    assert tree_snapshot(app.cwd) == before
    assert not cache(tmp_path).exists()


def test_a_marker_naming_a_non_preset_file_is_skipped(tmp_path: Path, bare: Repo) -> None:
    """Else a confirmed source could copy any file (`.env`, keys) of a repository you reach."""
    app = make_app(tmp_path, FakeTTY("y\n"))
    (app.cwd / PRESET).write_text(marker(bare.clone_url, path="secrets.toml") + NODE)
    before = tree_snapshot(app.cwd)
    assert run_init(app, "--update") == ExitCode.OK
    assert "which is not a preset file" in err(app)
    assert tree_snapshot(app.cwd) == before
    assert not cache(tmp_path).exists()


def test_a_symlinked_preset_is_skipped_and_its_target_untouched(tmp_path: Path, bare: Repo) -> None:
    outside = tmp_path / "outside.toml"
    outside.write_text(marker(bare.clone_url) + NODE)
    app = make_app(tmp_path, FakeTTY("y\n"))
    (app.cwd / PRESET).symlink_to(outside)
    assert run_init(app, "--update", "--yes") == ExitCode.OK
    assert "is a symbolic link" in err(app)
    assert outside.read_text() == marker(bare.clone_url) + NODE
    assert (app.cwd / PRESET).is_symlink()


def test_git_never_uses_a_transport_outside_the_allowed_ones(tmp_path: Path) -> None:
    """A user's insteadOf rewrite to ext:: (allowed in their config) still cannot run."""
    pwned = tmp_path / "pwned"
    config = tmp_path / "gitconfig"
    config.write_text(
        f'[url "ext::sh -c touch% {pwned}"]\n'
        "\tinsteadOf = https://example.invalid/\n"
        '[protocol "ext"]\n'
        "\tallow = always\n"
    )
    app = make_app(tmp_path)
    app.environ["GIT_CONFIG_GLOBAL"] = str(config)  # type: ignore[index]
    (app.cwd / PRESET).write_text(marker("https://example.invalid/r.git") + NODE)
    with pytest.raises(AlcaError):
        run_init(app, "--update", "--yes")
    assert list(tmp_path.glob("pwned*")) == []  # the rewrite appends "r.git" to the command
    assert "failed to fetch https://example.invalid/r.git" in err(app)
    assert "transport 'ext' not allowed" in err(app)


@pytest.mark.parametrize(
    ("url", "note"),
    [
        ("https://192.168.1.5/r.git", "local-network or private address"),
        ("https://10.0.0.1:8443/r.git", "local-network or private address"),
        ("https://[fd00::1]/r.git", "local-network or private address"),
        ("ssh://git@127.0.0.1/r.git", "local-network or private address"),
        ("ssh://git@localhost/r.git", "this machine"),
        ("git://example.com/r.git", "not encrypted"),
    ],
)
def test_a_source_on_the_local_network_is_pointed_out(url: str, note: str) -> None:
    notes = source_notes(preset_url.parse_source("git+" + url))
    assert any(note in n for n in notes)


def test_a_public_https_source_has_no_note() -> None:
    assert source_notes(preset_url.parse_source("git+https://github.com/o/r.git")) == []


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("a\x1b[8mb", "a\\x1b[8mb"),
        ("a\rb\x07", "a\\rb\\x07"),
        ("x\u202ey", "x\\u202ey"),
        ("g\u0456thub", "g\\u0456thub"),
        ("\x9b31m", "\\x9b31m"),
        ("back\\slash", "back\\\\slash"),
        ("\U0001f600", "\\U0001f600"),
    ],
)
def test_sources_are_shown_in_ascii(text: str, shown: str) -> None:
    assert printable_ascii(text) == shown
    assert all(0x20 <= ord(ch) < 0x7F for ch in printable_ascii(text))


def test_a_fifo_named_like_a_preset_never_blocks_update(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    os.mkfifo(app.cwd / PRESET)
    assert run_init(app, "--update") == ExitCode.OK  # would hang if the FIFO were opened to read
    assert not cache(tmp_path).exists()
