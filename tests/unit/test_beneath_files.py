"""Reading and replacing a file beneath the project root without following any link
(`beneath.read_beneath`, `beneath.replace_beneath`, for `alca net allow`)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from alcatraz.beneath import read_beneath, replace_beneath
from alcatraz.errors import RefusedError


@pytest.fixture
def root(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    (project / "conf").mkdir(parents=True)
    (project / "conf" / "x.toml").write_text("a = 1\n")
    return project


def test_replace_writes_a_new_file_over_the_old_one(root: Path) -> None:
    data, status = read_beneath(root, "conf/x.toml", 100)
    assert data == b"a = 1\n"
    replace_beneath(root, "conf/x.toml", b"a = 2\n", status)
    assert (root / "conf" / "x.toml").read_text() == "a = 2\n"
    assert os.listdir(root / "conf") == ["x.toml"]


def test_a_directory_replaced_by_a_link_is_refused(root: Path, tmp_path: Path) -> None:
    host = tmp_path / "host"
    host.mkdir()
    (host / "x.toml").write_text("host\n")
    _, status = read_beneath(root, "conf/x.toml", 100)
    (root / "conf" / "x.toml").unlink()
    (root / "conf").rmdir()
    (root / "conf").symlink_to(host)
    with pytest.raises(RefusedError, match="conf is a symbolic link"):
        read_beneath(root, "conf/x.toml", 100)
    with pytest.raises(RefusedError, match="conf is a symbolic link; nothing was read or written"):
        replace_beneath(root, "conf/x.toml", b"written\n", status)
    assert (host / "x.toml").read_text() == "host\n"
    assert os.listdir(host) == ["x.toml"]


def test_a_file_replaced_by_a_link_is_neither_read_nor_written(root: Path, tmp_path: Path) -> None:
    host = tmp_path / "host.toml"
    host.write_text("host\n")
    _, status = read_beneath(root, "conf/x.toml", 100)
    (root / "conf" / "x.toml").unlink()
    (root / "conf" / "x.toml").symlink_to(host)
    with pytest.raises(RefusedError, match="symbolic link"):
        read_beneath(root, "conf/x.toml", 100)
    with pytest.raises(RefusedError, match="changed while it was edited"):
        replace_beneath(root, "conf/x.toml", b"written\n", status)
    assert host.read_text() == "host\n"
    assert sorted(os.listdir(root / "conf")) == ["x.toml"]


def test_a_file_changed_in_place_is_not_overwritten(root: Path) -> None:
    _, status = read_beneath(root, "conf/x.toml", 100)
    (root / "conf" / "x.toml").write_text("a = 1\nb = 2\n")
    with pytest.raises(RefusedError, match="changed while it was edited"):
        replace_beneath(root, "conf/x.toml", b"a = 2\n", status)
    assert (root / "conf" / "x.toml").read_text() == "a = 1\nb = 2\n"


@pytest.mark.parametrize("relative", ["../x.toml", "/etc/passwd", "", "conf"])
def test_paths_that_are_not_files_beneath_are_refused(root: Path, relative: str) -> None:
    with pytest.raises(RefusedError):
        read_beneath(root, relative, 100)


def test_special_and_large_files_are_refused(root: Path) -> None:
    os.mkfifo(root / "fifo")
    with pytest.raises(RefusedError, match="not a regular file"):
        read_beneath(root, "fifo", 100)
    (root / "big").write_bytes(b"x" * 101)
    with pytest.raises(RefusedError, match="larger than 100 bytes"):
        read_beneath(root, "big", 100)
