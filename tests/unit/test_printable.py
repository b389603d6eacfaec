"""The one function that makes untrusted text safe on a terminal (issue 13, item 5)."""

from __future__ import annotations

import argparse
import ast
import io
import os
from pathlib import Path

import pytest

import alcatraz
from alcatraz import cli, state
from alcatraz.app import App
from alcatraz.cli import parser
from alcatraz.commands import cleanup, list_
from alcatraz.config.load import load_config
from alcatraz.errors import AlcaError, ConfigError, ExitCode, RefusedError, quote
from alcatraz.printable import printable, printable_lines
from alcatraz.proc import SubprocessRunner
from alcatraz.runtime import detect
from alcatraz.runtime.base import (
    LABEL_OWNER,
    LABEL_PROJECT_ID,
    LABEL_PROJECT_PATH,
    ContainerInfo,
    ContainerState,
)
from alcatraz.sandbox import filesync
from alcatraz.sandbox import project as sandbox
from alcatraz.statefile import ProjectState
from tests.fakes import FakeEngine, make_app

#: What an agent can put in a file name, a config value or an engine's error text.
HOSTILE = {
    "escape sequence": ("a\x1b[8mb", "a\\x1b[8mb"),
    "terminal title (OSC)": ("\x1b]0;pwned\x07", "\\x1b]0;pwned\\x07"),
    "carriage return": ("ok\rFAKE", "ok\\rFAKE"),
    "bell": ("ding\x07", "ding\\x07"),
    "C1 control (CSI)": ("x\x9b2J", "x\\x9b2J"),
    "delete": ("x\x7f", "x\\x7f"),
    "right-to-left override": ("evil\u202egnp.exe", "evil\\u202egnp.exe"),
    "isolate": ("a\u2066b\u2069", "a\\u2066b\\u2069"),
    "zero-width space": ("pa\u200bth", "pa\\u200bth"),
    "line separator": ("a\u2028b", "a\\u2028b"),
    "byte order mark": ("\ufeffname", "\\ufeffname"),
    "newline": ("a\nb", "a\\nb"),
    "tab": ("a\tb", "a\\tb"),
    "backslash": ("a\\x1b", "a\\\\x1b"),
    "non-UTF-8 byte (fsdecode)": (os.fsdecode(b"bad\xff\xfe"), "bad\\xff\\xfe"),
    "private use": ("\ue000", "\\ue000"),
    "astral format char": ("\U000e0001", "\\U000e0001"),
    "Hangul filler (a blank letter)": (".env\u3164", ".env\\u3164"),
    "halfwidth Hangul filler": ("a\uffa0", "a\\uffa0"),
    "combining grapheme joiner": ("a\u034fb", "a\\u034fb"),
    "Khmer inherent vowel": ("a\u17b4", "a\\u17b4"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_text_is_shown_escaped(name: str) -> None:
    raw, shown = HOSTILE[name]
    assert printable(raw) == shown
    assert printable(shown).isprintable() and printable(raw).isascii()


def test_invalid_utf8_bytes_are_shown_as_bytes() -> None:
    assert printable(b"ok\xc3(\x1b") == "ok\\xc3(\\x1b"
    assert printable_lines(b"line\n\xff") == "line\n\\xff"


def test_ordinary_text_is_unchanged() -> None:
    for text in ("plain", "café", "日本語のパス", "a b", "-_./:@"):
        assert printable(text) is text or printable(text) == text


def test_ascii_only_shows_look_alike_letters() -> None:
    assert printable("gіthub.com", ascii_only=True) == "g\\u0456thub.com"
    assert printable("café", ascii_only=True) == "caf\\xe9"


def test_lines_keep_newlines_and_tabs_and_escape_the_rest() -> None:
    text = "Error: no such image\n\tdetail \x1b[2J\r\u202e \\ kept"
    assert printable_lines(text) == "Error: no such image\n\tdetail \\x1b[2J\\r\\u202e \\ kept"


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_nothing_a_terminal_acts_on_survives(name: str) -> None:
    raw, _ = HOSTILE[name]
    for shown in (printable(raw), printable_lines(raw), quote(raw)):
        rest = shown.replace("\n", "").replace("\t", "")
        assert rest.isprintable(), repr(shown)
        assert not any(0xDC80 <= ord(c) <= 0xDCFF for c in shown)


def test_quote_uses_the_same_escapes_and_keeps_quotes_unambiguous() -> None:
    assert quote('a"b\x1b') == '"a\\"b\\x1b"'
    assert quote(3) == "3"


#: Modules that write to a terminal stream themselves, and why that is safe. Everything else
#: writes through `App` (out, info, step, done, warn, err, write, confirm), which passes every
#: line through `printable_lines`.
DIRECT_WRITERS = {
    "app.py": "the App's own output methods",
    "cli/__init__.py": "the error boundary: printable_lines(error.render())",
    "sandbox/enter.py": "alca run's few lines, each value made printable",
    "proc.py": "debug lines and streamed child output, made printable",
    "network/dnsproxy.py": "a daemon's startup line to its parent's pipe, no terminal",
    "config/reference.py": "the docs generator's own messages (a development script)",
}


def _direct_writes(path: Path) -> list[int]:
    """Lines that call print() or .write() on a stdout/stderr attribute."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if (isinstance(func, ast.Name) and func.id == "print") or (
            isinstance(func, ast.Attribute)
            and func.attr == "write"
            and isinstance(func.value, ast.Attribute)
            and func.value.attr in ("stdout", "stderr")
        ):
            found.append(node.lineno)
    return found


def test_every_renderer_writes_through_the_printable_boundary() -> None:
    src = Path(alcatraz.__file__).parent
    offenders = []
    for path in sorted(src.rglob("*.py")):
        name = path.relative_to(src).as_posix()
        if name not in DIRECT_WRITERS:
            offenders += [f"{name}:{line}" for line in _direct_writes(path)]
    assert not offenders, (
        "write through App (out/info/step/warn/err/write) so the text is made printable: "
        + ", ".join(offenders)
    )
    stale = [name for name in DIRECT_WRITERS if not _direct_writes(src / name)]
    assert not stale, f"no longer writes directly, drop from DIRECT_WRITERS: {stale}"


def test_captured_output_keeps_carriage_returns_and_survives_bad_bytes() -> None:
    """Text mode would turn a CR into a forged line break, and crash on non-UTF-8."""
    done = SubprocessRunner().run(["sh", "-c", r"printf 'a\rb\377'; printf 'e\rr\377' >&2"])
    assert (done.stdout, done.stderr) == ("a\rb\ufffd", "e\rr\ufffd")


def test_streamed_output_reaches_the_terminal_made_printable(
    capsys: pytest.CaptureFixture[str],
) -> None:
    script = r"printf 'out\033]0;t\007\342\200\256\n'; printf 'err\r\377\n' >&2; exit 3"
    assert SubprocessRunner().stream(["sh", "-c", script]) == 3
    captured = capsys.readouterr()
    assert captured.out == "out\\x1b]0;t\\x07\\u202e\n"
    assert captured.err == "err\\r\\xff\n"


@pytest.mark.parametrize(
    "name", [b".alca.x\x1b[8m.toml", b".alca.\xff.toml", b".alca.\xe2\x80\xae.toml"]
)
def test_a_config_file_with_a_hostile_name_is_refused_by_name(tmp_path: Path, name: bytes) -> None:
    """Matched by `includes`, it could not be mounted read-only nor shown plainly."""
    (tmp_path / ".alca.toml").write_text('image = "x"\nincludes = ["./.alca.*.toml"]\n')
    with open(os.path.join(os.fsencode(tmp_path), name), "w") as handle:
        handle.write('image = "y"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path, environ={}, cwd=tmp_path)
    shown = caught.value.render()
    assert "plain name" in shown and printable(os.fsdecode(name)) in shown
    assert shown.replace("\n", "").isprintable()


#: A label another user of a shared engine wrote: a forged entry after a newline.
FORGED_PATH = "/gone\n  [2] alca-legit\n      Path: /home/you/project\x1b]0;t\x07"


def _hostile_container(home: Path, project_id: str) -> ContainerInfo:
    labels = {
        LABEL_PROJECT_ID: project_id,
        LABEL_PROJECT_PATH: FORGED_PATH,
        LABEL_OWNER: state.owner_label(str(home)),
    }
    return ContainerInfo(
        "c1", "alca-hostile", ContainerState.STOPPED, "img", "", "2026-01-01T00:00:00Z", labels
    )


def _app(tmp_path: Path) -> tuple[App, io.StringIO]:
    out = io.StringIO()
    environ = {"ALCA_HOME": str(tmp_path / "home"), "ALCA_RUNTIME": "docker"}
    return make_app(tmp_path, stdout=out, stderr=out, environ=environ), out


def test_list_shows_a_hostile_label_on_its_own_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, out = _app(tmp_path)
    engine = FakeEngine(_hostile_container(app.home, "deadbeef\nFORGED"))
    monkeypatch.setattr(detect, "resolve_runtime", lambda *a, **k: (engine, None))
    assert list_.main(argparse.Namespace(json=False), app) == 0
    lines = out.getvalue().splitlines()
    assert len(lines) == 2, lines  # the header and one row, however many newlines the label has
    assert printable(FORGED_PATH) in lines[1] and "\x1b" not in lines[1]


def test_cleanup_shows_a_hostile_label_escaped_and_survives_a_hostile_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The id is no sync label: no session can carry it, so none is stopped (no traceback)."""
    app, out = _app(tmp_path)
    engine = FakeEngine(_hostile_container(app.home, "bad id!"))
    monkeypatch.setattr(cleanup, "_runtimes", lambda _app: [engine])
    monkeypatch.setattr(filesync, "stop", lambda *a: pytest.fail("stopped sessions of a bad id"))
    assert cleanup.main(argparse.Namespace(yes=True), app) == 0
    shown = out.getvalue()
    assert engine.removed == ["alca-hostile"]
    assert f"      Path: {printable(FORGED_PATH)}\n" in shown
    assert "\n  [2]" not in shown and "\x1b" not in shown


def test_a_container_of_our_name_but_another_owner_is_refused_on_one_line(tmp_path: Path) -> None:
    info = _hostile_container(tmp_path, "our-id")
    state = ProjectState(container_name=info.name, project_id="i")
    project = sandbox.Project(tmp_path, tmp_path, state)
    with pytest.raises(RefusedError) as caught:
        sandbox.find_container(FakeEngine(info), project)
    message = caught.value.message
    assert printable(FORGED_PATH) in message
    assert message.isprintable(), message  # no newline to forge a line, no ESC


@pytest.mark.parametrize("raised", [AlcaError, ValueError])
def test_the_debug_traceback_is_printable_too(
    raised: type[Exception], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """ALCA_DEBUG and the bug report print a traceback, whose last line is the message."""

    def dispatch(args: list[str]) -> int:
        raise raised(f"named {FORGED_PATH}")

    monkeypatch.setenv("ALCA_DEBUG", "1")
    monkeypatch.setattr(parser, "dispatch", dispatch)
    assert cli.main(["status"]) in (ExitCode.FAILURE, ExitCode.INTERNAL)
    err = capsys.readouterr().err
    assert "Traceback" in err and printable_lines(FORGED_PATH) in err
    assert "\x1b" not in err and "\x07" not in err
