"""`alca config show` / `alca config schema`: in-process through `alcatraz.cli.main`."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from alcatraz.cli import main
from alcatraz.config.load import load_config
from alcatraz.config.schema import schema_text
from alcatraz.config.show import document, render_text
from alcatraz.errors import ExitCode
from tests.conftest import tree_snapshot


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    write(
        root / "presets" / "base.toml",
        'image = "debian:12"\n'
        'mounts = ["../cache:/cache"]\n'
        '[commands]\nup = "apt-get update"\n'
        '[resources]\nmemory = "4g"\ncpus = 2\n'
        '[hooks]\npost_up = "echo hi"\n',
    )
    write(root / ".alca.local.toml", '[envs]\nLOCAL = "1"\n[network]\nlan-access = ["10.0.0.7"]\n')
    write(
        root / ".alca.toml",
        'extends = ["presets/base.toml"]\n'
        'includes = ["./.alca.*.toml"]\n'
        'image = "alpine:3.21"\n'
        'mounts = ["./data:/data:ro"]\n'
        '[commands]\nup = { command = "&& make", append = true }\n'
        '[network]\nlan-access = ["192.168.1.10:8080"]\n'
        '[envs]\nTERM = "xterm"\nFOO = "bar"\n',
    )
    (root / "sub" / "deeper").mkdir(parents=True)
    return root


def line_of(text: str, start: str) -> str:
    matches = [line for line in text.splitlines() if line.startswith(start)]
    assert len(matches) == 1, (start, matches)
    return matches[0]


# --- text ------------------------------------------------------------------------------------


def test_show_text_names_the_file_of_each_value(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project)
    code, out, err = run(["config", "show"], capsys)
    assert (code, err) == (0, "")
    base = str(Path("presets", "base.toml"))
    assert line_of(out, "image = ") == 'image = "alpine:3.21"  # .alca.toml'
    assert line_of(out, "workdir = ") == 'workdir = "/workspace"  # default'
    assert line_of(out, "runtime = ") == 'runtime = "auto"  # default'
    assert line_of(out, "workdir_exclude = ") == "workdir_exclude = []  # default"
    assert line_of(out, "caps = ").endswith("# default")
    assert line_of(out, "memory = ") == f'memory = "4g"  # {base}'
    assert line_of(out, "cpus = ") == f"cpus = 2.0  # {base}"
    assert line_of(out, "post_up = ") == f'post_up = "echo hi"  # {base}'
    assert line_of(out, "up = ") == f'up = "apt-get update && make"  # {base}, .alca.toml'
    cache, data = [line for line in out.splitlines() if line.startswith("  { source = ")]
    assert 'target = "/cache"' in cache
    assert cache.endswith(f"}},  # {base}")
    assert 'target = "/data", readonly = true' in data
    assert data.endswith("},  # .alca.toml")
    assert line_of(out, '  "192.168.1.10:8080"') == '  "192.168.1.10:8080",  # .alca.toml'
    assert line_of(out, '  "10.0.0.7"') == '  "10.0.0.7",  # .alca.local.toml'
    assert (
        line_of(out, "TERM = ")
        == 'TERM = { value = "xterm", override_on_enter = false }  # .alca.toml'
    )
    assert line_of(out, "LANG = ").endswith("# default")
    assert line_of(out, "LOCAL = ").endswith("# .alca.local.toml")
    assert line_of(out, "ports = ") == "ports = []  # default"


def test_show_text_header_lists_root_and_files(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project)
    _, out, _ = run(["config", "show"], capsys)
    lines = out.splitlines()
    assert lines[0] == f"# Effective configuration of {project}"
    assert lines[1].startswith("# Files, in load order: ")
    for name in (".alca.toml", "presets/base.toml", ".alca.local.toml"):
        assert str((project / name).resolve()) in lines[1]


def test_show_text_is_toml_equal_to_the_document(project: Path) -> None:
    config = load_config(project, environ={}, cwd=project)
    parsed = tomllib.loads(render_text(config))
    expected: dict[str, Any] = {k: v for k, v in document(config).items() if v != {}}
    assert parsed == expected


def test_show_text_without_lan_access_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / ".alca.toml", 'image = "a"\n')
    monkeypatch.chdir(tmp_path)
    _, out, _ = run(["config", "show"], capsys)
    assert "lan-access = []  # default: no LAN access" in out
    assert "[commands]" not in out  # empty tables are left out
    assert "mounts" not in out


# --- json ------------------------------------------------------------------------------------


def test_show_json(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project)
    code, out, err = run(["config", "show", "--json"], capsys)
    assert (code, err) == (0, "")
    payload = json.loads(out)
    assert set(payload) == {"project_root", "files", "config", "origin"}
    assert payload["project_root"] == str(project)
    assert payload["files"][0] == str((project / ".alca.toml").resolve())
    assert set(payload["files"]) == {
        str((project / n).resolve())
        for n in (".alca.toml", "presets/base.toml", ".alca.local.toml")
    }
    config = payload["config"]
    assert config["image"] == "alpine:3.21"
    assert config["workdir"] == "/workspace"
    assert config["commands"] == {"up": "apt-get update && make"}
    assert config["resources"] == {"memory": "4g", "cpus": 2.0}
    assert config["network"]["lan-access"] == ["192.168.1.10:8080", "10.0.0.7"]
    assert config["caps"] == {
        "drop": ["ALL"],
        "add": ["CHOWN", "DAC_OVERRIDE", "FOWNER", "KILL", "SETUID", "SETGID"],
    }
    assert config["mounts"] == [
        {"source": str(project / "cache"), "target": "/cache", "readonly": False, "exclude": []},
        {"source": str(project / "data"), "target": "/data", "readonly": True, "exclude": []},
    ]
    assert config["envs"]["TERM"] == {"value": "xterm", "override_on_enter": False}
    assert config["envs"]["LANG"] == {"value": "${LANG}", "override_on_enter": True}
    origin = payload["origin"]
    assert origin["image"] == ".alca.toml"
    assert origin["resources.memory"] == str(Path("presets", "base.toml"))
    assert origin["commands.up"] == f"{Path('presets', 'base.toml')}, .alca.toml"
    assert origin["network.lan-access[1]"] == ".alca.local.toml"
    assert origin["envs.LOCAL"] == ".alca.local.toml"


def test_show_json_matches_document(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project)
    _, out, _ = run(["config", "show", "--json"], capsys)
    assert json.loads(out)["config"] == json.loads(
        json.dumps(document(load_config(project, cwd=project)))
    )


def test_show_json_origin_says_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / ".alca.toml", 'image = "a"\n')
    monkeypatch.chdir(tmp_path)
    _, out, _ = run(["config", "show", "--json"], capsys)
    origin = json.loads(out)["origin"]
    assert origin["workdir"] == "default"
    assert origin["caps"] == "default"


# --- where it runs ---------------------------------------------------------------------------


def test_show_from_a_subdirectory_finds_the_project_root(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project / "sub" / "deeper")
    code, out, _ = run(["config", "show", "--json"], capsys)
    assert code == 0
    payload = json.loads(out)
    assert payload["project_root"] == str(project)
    assert payload["config"]["mounts"][1]["source"] == str(project / "data")
    # The root's files are outside the current directory, so they are shown in full.
    assert payload["origin"]["image"] == str(project / ".alca.toml")


def test_show_text_from_a_subdirectory(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project / "sub")
    code, out, _ = run(["config", "show"], capsys)
    assert code == 0
    assert out.splitlines()[0] == f"# Effective configuration of {project}"
    assert line_of(out, "image = ") == f'image = "alpine:3.21"  # {project / ".alca.toml"}'


def test_show_without_config_exits_66(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for argv in (["config", "show"], ["config", "show", "--json"]):
        code, out, err = run(argv, capsys)
        assert code == ExitCode.NOT_INITIALIZED == 66
        assert out == ""
        assert "run 'alca init' first" in err
        assert "Traceback" not in err


def test_show_ignores_a_directory_named_like_the_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".alca.toml").mkdir()
    monkeypatch.chdir(tmp_path)
    code, _, err = run(["config", "show"], capsys)
    assert code == 66
    assert "run 'alca init' first" in err


def test_show_invalid_config_exits_78(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / ".alca.toml", 'image = "a"\n[network]\nlan_access = ["*"]\n')
    monkeypatch.chdir(tmp_path)
    code, out, err = run(["config", "show"], capsys)
    assert code == ExitCode.CONFIG == 78
    assert out == ""
    assert err.startswith("Error in .alca.toml (line 3), at network.lan_access:")
    assert "Fix:" in err
    assert "Traceback" not in err


def test_show_writes_nothing(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    before = tree_snapshot(project)
    monkeypatch.chdir(project)
    run(["config", "show"], capsys)
    run(["config", "show", "--json"], capsys)
    assert tree_snapshot(project) == before


# --- schema and usage ------------------------------------------------------------------------


def test_config_schema_prints_the_schema(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # needs no project
    code, out, err = run(["config", "schema"], capsys)
    assert (code, err) == (0, "")
    assert out == schema_text()


@pytest.mark.parametrize("argv", [["config"], ["config", "bogus"], ["config", "show", "--yaml"]])
def test_config_usage_errors_exit_64(
    argv: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run(argv, capsys)
    assert code == ExitCode.USAGE == 64
    assert "Fix:" in err
    assert "Traceback" not in err
