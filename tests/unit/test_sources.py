"""The workspace walker never follows a link, whatever depth it sits at (decision 0010)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from alcatraz import sources
from alcatraz.errors import RefusedError
from alcatraz.statefile import IsolationRecord


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "a" / "b" / "c").mkdir(parents=True)
    (root / "a" / "b" / "c" / "file.toml").write_text("x = 1\n")
    (tmp_path / "outside").mkdir()
    return root


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_a_link_at_any_depth_is_refused(tree: Path, depth: int) -> None:
    parts = ["a", "b", "c"][:depth]
    victim = tree.joinpath(*parts)
    victim.rename(victim.with_name(victim.name + ".orig"))
    victim.symlink_to(tree.parent / "outside")
    with pytest.raises(RefusedError, match="symbolic link"):
        sources.identity(tree, "a/b/c")


def test_a_relative_link_to_a_sibling_is_refused(tree: Path) -> None:
    (tree / "secrets").mkdir()
    (tree / "data").symlink_to("secrets")
    with pytest.raises(RefusedError, match="symbolic link"):
        sources.identity(tree, "data")


def test_a_dangling_link_is_refused_not_missing(tree: Path) -> None:
    (tree / "gone").symlink_to(tree / "nowhere")
    with pytest.raises(RefusedError, match="symbolic link"):
        sources.identity(tree, "gone")


def test_a_file_link_is_refused(tree: Path) -> None:
    (tree / "base.toml").symlink_to(tree / "a" / "b" / "c" / "file.toml")
    with pytest.raises(RefusedError, match="symbolic link"):
        sources.identity(tree, "base.toml")


def test_a_fifo_is_refused_without_blocking(tree: Path) -> None:
    os.mkfifo(tree / "pipe")
    with pytest.raises(RefusedError, match="not a directory or file"):
        sources.identity(tree, "pipe")
    with pytest.raises(RefusedError, match="not a directory"):
        sources.identity(tree, "pipe/below")


@pytest.mark.parametrize("relative", ["../outside", "a/../../outside", "/etc"])
def test_dot_dot_and_absolute_paths_are_refused(tree: Path, relative: str) -> None:
    with pytest.raises(RefusedError, match="leaves the project"):
        sources.identity(tree, relative)


def test_real_paths_have_their_identity(tree: Path) -> None:
    info = (tree / "a" / "b" / "c" / "file.toml").stat()
    assert sources.identity(tree, "a/b/c/file.toml") == [info.st_dev, info.st_ino]
    assert sources.identity(tree, "") == [tree.stat().st_dev, tree.stat().st_ino]


def test_missing_is_not_found_without_create(tree: Path) -> None:
    with pytest.raises(FileNotFoundError):
        sources.identity(tree, "a/new")


def test_create_makes_directories_beneath_the_root(tree: Path) -> None:
    os.close(sources.open_beneath(tree, "x/y/z", create=True))
    assert (tree / "x" / "y" / "z").is_dir()


def test_create_never_follows_a_parent_link(tree: Path) -> None:
    outside = tree.parent / "outside"
    (tree / "build").symlink_to(outside)
    with pytest.raises(RefusedError, match="symbolic link"):
        sources.open_beneath(tree, "build/cache", create=True)
    assert not (outside / "cache").exists()


def test_the_inside_layer_is_bound_to_one_process() -> None:
    from alcatraz import state

    me = os.getpid()
    started = state.process_start(me)
    assert started is not None
    assert state.inside_layer_current(IsolationRecord(inside=(me, started)))
    assert not state.inside_layer_current(IsolationRecord(inside=(me, started + 1)))  # reused
    assert not state.inside_layer_current(IsolationRecord(inside=(2**22 + 7, started)))  # gone
    assert state.inside_layer_current(IsolationRecord())  # no second layer: nothing to check


def test_config_loader_never_reads_an_extended_file_through_a_workspace_link(
    tmp_path: Path,
) -> None:
    """A swapped `conf/` would make the host read its own file as configuration."""
    from alcatraz.config.load import load_config

    root, outside = tmp_path / "proj", tmp_path / "outside"
    (root / "conf").mkdir(parents=True)
    outside.mkdir()
    (root / ".alca.toml").write_text('image = "alpine:3.21"\nextends = ["conf/base.toml"]\n')
    (root / "conf" / "base.toml").write_text("[envs]\nMINE = '1'\n")
    (outside / "base.toml").write_text("[envs]\nHOSTTOKEN = 's3cr3t'\n")
    assert load_config(root, environ={}, cwd=root).files[-1] == root / "conf" / "base.toml"
    (root / "conf").rename(root / "conf.orig")
    (root / "conf").symlink_to(outside)
    with pytest.raises(RefusedError, match=r"workspace path \./conf is a symbolic link"):
        load_config(root, environ={}, cwd=root)
