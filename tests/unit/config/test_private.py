"""`${alca:PRIVATE}/NAME` mount sources: per-project, outside the project, owner-only."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from alcatraz import sources
from alcatraz.config import private
from alcatraz.config.load import load_config
from alcatraz.errors import RefusedError


def test_a_private_source_lives_in_the_per_user_state_not_the_project(tmp_path: Path) -> None:
    project, home = tmp_path / "project", tmp_path / "alca-home"
    project.mkdir()
    (project / ".alca.toml").write_text(
        'image = "alpine:3.21"\n'
        'mounts = [{ source = "${alca:PRIVATE}/claude", target = "/root/.claude" }]\n'
    )
    config = load_config(project, environ={"HOME": str(tmp_path), "ALCA_HOME": str(home)})
    (mount,) = config.mounts
    source = Path(mount.source)
    assert source == private.private_root(home, project) / "claude"
    assert source.is_relative_to(home) and not source.is_relative_to(project)
    assert not source.exists()  # loading writes nothing; `up` creates it


def test_ensure_private_creates_an_owner_only_directory(tmp_path: Path) -> None:
    source = tmp_path / "state" / "private" / "claude"
    sources.ensure_private(source)
    sources.ensure_private(source)  # idempotent
    assert stat.S_IMODE(os.lstat(source).st_mode) == 0o700
    assert stat.S_IMODE(os.lstat(source.parent).st_mode) == 0o700


@pytest.mark.parametrize("shape", ["symlink", "file", "dangling"])
def test_ensure_private_refuses_anything_but_a_directory(tmp_path: Path, shape: str) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    source = tmp_path / "private" / "claude"
    source.parent.mkdir()
    if shape == "file":
        source.write_text("x")
    else:
        source.symlink_to(elsewhere if shape == "symlink" else tmp_path / "gone")
    with pytest.raises(RefusedError):
        sources.ensure_private(source)
    assert list(elsewhere.iterdir()) == []
