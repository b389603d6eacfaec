"""A branch sandbox runs on the project's configuration aimed at its copy: the user's objects
read-only at their own path, private directories of its own, no host hooks; `-b` reaches
the branch commands and nothing else changes without it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from alcatraz.cli import _run_option, main
from alcatraz.config.load import load_config
from alcatraz.config.values import Mount
from alcatraz.errors import ExitCode, RefusedError
from alcatraz.sandbox.branches import branch_config, read_record
from alcatraz.sandbox.branchname import BranchPaths
from tests.fakes import project_app


def repository(root: Path, config: str) -> None:
    (root / ".alca.toml").write_text(config)
    subprocess.run(["git", "init", "-q", str(root)], check=True)


def committed_repository(root: Path) -> None:
    """A project repository with one (empty) commit, as `up -b` needs a start."""
    repository(root, 'image = "alpine:3.21"\n')
    subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=u", "-c", "user.email=u@x.invalid",
         "commit", "-q", "--allow-empty", "-m", "base"],
        check=True,
    )  # fmt: skip


def test_the_config_is_the_projects_aimed_at_the_copy(tmp_path: Path) -> None:
    app = project_app(tmp_path)
    user = app.cwd
    repository(
        user,
        'image = "alpine:3.21"\n'
        'mounts = [{ source = "${alca:PRIVATE}/agent", target = "/home/agent" }]\n'
        '[hooks]\npost_up = "touch hooked"\npre_down = "touch hooked"\n',
    )
    config = load_config(user, environ=app.environ, cwd=user)
    assert config.post_up and config.pre_down  # the positive control
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / ".alca.toml").write_text("")
    chosen = branch_config(app, config, user, copy)
    objects = str((user / ".git" / "objects").resolve())
    assert chosen.project_root == copy
    assert chosen.workdir_mount.source == str(copy)
    assert chosen.mounts[-1] == Mount(objects, objects, readonly=True)
    private = chosen.mounts[0].source
    assert private != config.mounts[0].source and Path(private).name == "agent"
    assert chosen.post_up == "" and chosen.pre_down == ""
    assert chosen.files == (copy / ".alca.toml",)  # bound read-only over itself inside
    assert chosen.image == config.image


def test_objects_over_the_workdir_are_refused(tmp_path: Path) -> None:
    app = project_app(tmp_path)
    user = app.cwd
    repository(user, f'image = "alpine:3.21"\nworkdir = "{user}"\n')
    config = load_config(user, environ=app.environ, cwd=user)
    with pytest.raises(RefusedError, match="would be mounted"):
        branch_config(app, config, user, tmp_path / "copy")


def test_a_missing_record_is_none_and_a_damaged_one_an_error(tmp_path: Path) -> None:
    paths = BranchPaths(tmp_path / "b")
    assert read_record(paths) is None
    paths.directory.mkdir()
    paths.record.write_text('{"name": "x"}')
    with pytest.raises(Exception, match="damaged"):
        read_record(paths)


@pytest.mark.parametrize(
    ("first", "parsed"),
    [
        ([], False),
        (["make"], False),
        (["ls", "-b"], False),
        (["-h"], True),
        (["--help"], True),
        (["-b"], True),
        (["-bNAME"], True),
        (["--branch"], True),
        (["--branch=x"], True),
    ],
)
def test_run_takes_the_parser_only_for_its_own_options(first: list[str], parsed: bool) -> None:
    assert _run_option(first[:1]) is parsed


def test_branch_options_need_b(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["up", "--from", "main"]) == ExitCode.USAGE
    assert "--from needs -b" in capsys.readouterr().err
    assert main(["down", "--purge"]) == ExitCode.USAGE
    assert "--purge needs -b" in capsys.readouterr().err
    assert main(["up", "-b", "../x"]) == ExitCode.USAGE
    assert main(["run", "-b", "-rf", "true"]) == ExitCode.USAGE


def test_stale_copies_are_those_whose_project_or_branch_is_gone(tmp_path: Path) -> None:
    from alcatraz import state
    from alcatraz.sandbox.branches import BranchRecord, every_branch, stale_copies

    app = project_app(tmp_path)
    user = app.cwd
    committed_repository(user)
    subprocess.run(["git", "-C", str(user), "branch", "kept"], check=True)
    gone_project = tmp_path / "gone"
    for root, name in ((user, "kept"), (user, "deleted"), (gone_project, "kept")):
        paths = BranchPaths.of(app.home, root, name)
        paths.work.mkdir(parents=True)
        state.write_json(paths.record, BranchRecord(name, str(root), "0" * 40, "now")._asdict())
    assert len(every_branch(app)) == 3
    assert {row["status"] for row in every_branch(app)} == {"absent"}
    stale = {(row["branch"], row["project"]) for row in stale_copies(app)}
    assert stale == {("deleted", str(user)), ("kept", str(gone_project))}


def test_an_unrecorded_copy_in_the_way_is_refused_not_removed(tmp_path: Path) -> None:
    from alcatraz.sandbox.branches import up_branch

    app = project_app(tmp_path)
    user = app.cwd
    committed_repository(user)
    paths = BranchPaths.of(app.home, user, "agent/a")
    paths.work.mkdir(parents=True)
    (paths.work / "work-in-progress").write_text("keep me")
    with pytest.raises(RefusedError, match="without a record"):
        up_branch(app, "agent/a", start=None, force=False, assume_yes=True)
    assert (paths.work / "work-in-progress").read_text() == "keep me"
    assert read_record(paths) is None


def test_a_copy_that_cannot_be_removed_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files a rootless sandbox made under another uid: alca's error, the path printable."""
    import shutil

    from alcatraz.errors import AlcaError
    from alcatraz.sandbox import branches

    app = project_app(tmp_path)
    paths = BranchPaths.of(app.home, tmp_path / "project", "agent/one")
    paths.work.mkdir(parents=True)

    def refuse(path: object, ignore_errors: bool = False) -> None:
        if not ignore_errors:
            raise PermissionError(13, "Permission denied", str(paths.work / "x\x1b[2Jy"))

    monkeypatch.setattr(shutil, "rmtree", refuse)
    with pytest.raises(AlcaError) as raised:
        branches.purge_copy(app, paths, "agent/one")
    text = raised.value.render()
    assert "could not be removed" in text and "Permission denied" in text
    assert "\x1b" not in text and "podman unshare" in text
    assert paths.work.exists()
