"""Branch names are hostile input (they become refs, refspecs and terminal text); copies
and their state are keyed by project and branch; `down -b` never loses uncommitted work."""

from __future__ import annotations

from pathlib import Path

import pytest

from alcatraz.errors import UsageError
from alcatraz.sandbox.branchname import (
    BranchPaths,
    DownCheck,
    branch_key,
    branch_ref,
    check_branch_name,
    down_refusal,
    incoming_ref,
    inside,
    is_object_id,
)
from alcatraz.state import ProjectStore

GOOD = ["fix-login", "agent/fix-login", "a", "v1.2", "feature_x+y", "A/B/C", "x" * 100]
BAD = [
    "",
    "-rf",  # an option
    "--upload-pack=touch /tmp/x",
    "..",
    "a/../b",
    "a..b",  # a revision range
    "/abs",
    "a/",
    "a//b",
    ".hidden",
    "a/.hidden",
    "a.lock",
    "a.",
    "a b",
    "a~1",
    "a^",
    "a:b",  # a refspec
    "a?",
    "a*",
    "a[1]",
    "a\\b",
    "@{-1}",
    "a@{0}",
    "HEAD",
    "refs/heads/x",
    "x\x1b[31m",
    "x\nrefs/heads/main",
    "naïve",
    "x" * 101,
]


@pytest.mark.parametrize("name", GOOD)
def test_plain_branch_names_pass(name: str) -> None:
    assert check_branch_name(name) == name
    assert branch_ref(name) == f"refs/heads/{name}"
    assert incoming_ref(name) == f"refs/alca/branches/{name}"


@pytest.mark.parametrize("name", BAD)
def test_hostile_branch_names_are_refused(name: str) -> None:
    with pytest.raises(UsageError) as raised:
        check_branch_name(name)
    assert "\x1b" not in raised.value.render()
    assert "\n" not in raised.value.message


def test_every_good_name_is_a_valid_git_branch_name() -> None:
    import subprocess

    for name in GOOD:
        checked = subprocess.run(["git", "check-ref-format", "--branch", name], check=False)
        assert checked.returncode == 0, name


def test_object_ids() -> None:
    assert is_object_id("a" * 40)
    assert is_object_id("0123456789abcdef" * 4)
    assert not is_object_id("A" * 40)
    assert not is_object_id("a" * 39)
    assert not is_object_id("a" * 40 + "\n")
    assert not is_object_id("--all")


def test_copies_and_their_state_are_keyed_by_project_and_branch(tmp_path: Path) -> None:
    home = tmp_path / "alca"
    one, other = tmp_path / "one", tmp_path / "other"
    a = BranchPaths.of(home, one, "agent/a")
    assert a.directory.parent.parent == home / "branches"
    assert a.work == a.directory / "work" and a.record == a.directory / "branch.json"
    assert a.directory.name == branch_key("agent/a")
    assert "agent" not in str(a.directory)  # the name never becomes a path
    keys = {
        BranchPaths.of(home, one, "agent/a").directory,
        BranchPaths.of(home, one, "agent/b").directory,
        BranchPaths.of(home, other, "agent/a").directory,
    }
    assert len(keys) == 3
    stores = {ProjectStore.of(home, BranchPaths(k).work).directory for k in keys}
    assert len(stores) == 3
    assert BranchPaths.of(home, one, "agent/a") == a  # stable
    with pytest.raises(UsageError):
        BranchPaths.of(home, one, "../x")


def test_inside() -> None:
    assert inside("/a/b", "/a")
    assert inside("/a", "/a")
    assert not inside("/ab", "/a")
    assert not inside("/a", "/a/b")


@pytest.mark.parametrize(
    ("running", "dirty", "force", "purge", "refused"),
    [
        (True, True, False, False, True),  # uncommitted work: kept
        (True, True, False, True, True),
        (True, True, True, False, False),  # --force: the sandbox goes, the copy stays
        (True, True, True, True, False),  # --force --purge: the user asked for it
        (True, False, False, True, False),
        (True, False, False, False, False),
        (False, True, False, False, False),  # not running: the copy is kept, nothing lost
        (False, True, False, True, True),  # cannot tell: no purge without --force
        (False, True, True, True, False),
    ],
)
def test_down_refusal(running: bool, dirty: bool, force: bool, purge: bool, refused: bool) -> None:
    check = DownCheck(running=running, dirty=dirty, force=force, purge=purge)
    assert (down_refusal(check) is not None) is refused
