"""Branch sandboxes, the git part: make the private copy, bring the agent's commits back.

The host runs git only in the user's repository (its config and hooks are the user's) and,
once, in a copy it has just made and no agent has seen. After that the copy is the agent's:
the host never runs git there, never reads its config, refs or hooks. What it needs from the
copy it asks the sandbox for, through the engine: the commit at `refs/heads/NAME` (checked
to be an object name) and a pack of the commits not yet in the user's repository, streamed
out of `exec` into a file under the alcatraz home. That pack is indexed in the user's
repository with `index-pack --strict` (every object checked, as `transfer.fsckObjects`
would; git 2.39 does not check a bundle's objects on fetch), then the branch moves,
fast-forward only, compare-and-swap (decision 0017).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Final

from alcatraz import proc
from alcatraz.app import App
from alcatraz.errors import AlcaError, RefusedError, UsageError
from alcatraz.printable import printable
from alcatraz.proc import Result
from alcatraz.runtime.base import Runtime
from alcatraz.sandbox.branchname import (
    BranchPaths,
    branch_ref,
    incoming_ref,
    is_object_id,
)

#: The most a sandbox may send back at once (the pack of its new commits).
PACK_LIMIT: Final = 4 << 30
_TIMEOUT: Final = 600.0
#: The longest a sandbox may take to send that pack (it may send nothing, forever).
PACK_TIMEOUT: Final = 1800.0


def git(app: App, root: Path, *args: str, check: bool = True) -> Result:
    """git in a repository the host trusts (the user's; a copy before the agent has it)."""
    return app.runner.run(["git", "-C", str(root), *args], check=check, timeout=_TIMEOUT)


def objects_dir(app: App, user_root: Path) -> Path:
    """The user's object directory (real path): mounted read-only at the same path inside,
    where the copy's `objects/info/alternates` points."""
    result = git(app, user_root, "rev-parse", "--path-format=absolute", "--git-common-dir")
    objects = Path(os.path.realpath(Path(result.stdout.strip()) / "objects"))
    if not objects.is_dir():
        raise AlcaError(f"{printable(str(user_root))} is not a git repository with objects")
    if (objects / "info" / "alternates").exists():
        raise RefusedError(
            "this repository borrows objects from another (objects/info/alternates): a "
            "branch sandbox would not see them; nothing was created",
            hint="run 'git repack -a -d' and remove objects/info/alternates, then try again",
        )
    return objects


def tip(app: App, user_root: Path, name: str) -> str | None:
    """The commit branch `name` of the user's repository is at, or None."""
    found = git(app, user_root, "rev-parse", "--verify", "--quiet", branch_ref(name), check=False)
    text = found.stdout.strip()
    return text if found.ok and is_object_id(text) else None


def start_commit(app: App, user_root: Path, name: str, start: str | None) -> str:
    """Where branch `name` starts: the user's branch `name` if it exists, else `start` (HEAD)."""
    existing = tip(app, user_root, name)
    if existing is not None:
        if start is not None:
            raise UsageError(
                f"branch {printable(name)} already exists in your repository",
                hint="drop --from: the sandbox starts from the branch as it is",
            )
        return existing
    ref = start or "HEAD"
    found = git(
        app, user_root, "rev-parse", "--verify", "--quiet", "--end-of-options", ref + "^{commit}",
        check=False,
    )  # fmt: skip
    text = found.stdout.strip()
    if not found.ok or not is_object_id(text):
        raise UsageError(
            f"{printable(ref)} is not a commit of {printable(str(user_root))}",
            hint="name a branch, tag or commit with --from (the default is HEAD)",
        )
    return text


def create_copy(app: App, user_root: Path, paths: BranchPaths, name: str, base: str) -> None:
    """Clone the user's repository without copying its objects, then check out `name` at
    `base`: only tracked files, so untracked secrets (`.env`) are never in the copy."""
    objects = objects_dir(app, user_root)
    paths.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    work = paths.work
    app.runner.run(
        ["git", "clone", "--quiet", "--shared", "--no-checkout", "--template=", "--",
         str(user_root), str(work)],
        check=True, timeout=_TIMEOUT,
    )  # fmt: skip
    (work / ".git" / "objects" / "info" / "alternates").write_text(f"{objects}\n")
    git(app, work, "remote", "remove", "origin")
    git(app, work, "-c", "core.hooksPath=/dev/null", "checkout", "--quiet", "-b", name, base)


def _agent_tip(runtime: Runtime, container: str, workdir: str, name: str) -> str:
    found = runtime.exec_capture(
        container,
        ["git", "rev-parse", "--verify", "--quiet", branch_ref(name) + "^{commit}"],
        workdir=workdir,
        timeout=_TIMEOUT,
    )
    text = found.stdout.strip()
    if not found.ok or not is_object_id(text):
        raise RefusedError(
            f"the branch sandbox has no branch {printable(name)} (the agent deleted or broke "
            "it); nothing was brought back",
            hint=f"recreate it inside: alca run -b {printable(name)} git checkout -B "
            f"{printable(name)}",
        )
    return text


def remove_stale_incoming(incoming: Path) -> None:
    """Remove what a killed bring-back left (a pack read from the sandbox can be 4 GiB): the
    files of processes that are gone, and of an earlier process with this one's pid."""
    for entry in os.scandir(incoming):
        owner = entry.name.split(".", 1)[0].split("-", 1)[0]
        if not owner.isdigit():
            continue
        pid = int(owner)
        if pid != os.getpid():
            try:
                os.kill(pid, 0)
                continue  # another bring-back of this branch is running
            except ProcessLookupError:
                pass
            except PermissionError:
                continue
        with contextlib.suppress(FileNotFoundError):
            os.unlink(entry.path)


def _import_pack(
    app: App, runtime: Runtime, container: str, workdir: str, user_root: Path,
    paths: BranchPaths, wanted: str, have: list[str],
) -> None:  # fmt: skip
    """Stream the commits the user lacks out of the sandbox into a file, then index them
    into the user's repository with every object checked."""
    revs = wanted + "\n" + "".join(f"^{commit}\n" for commit in have)
    argv = runtime.exec_argv(
        container,
        ["git", "pack-objects", "--stdout", "--revs", "--thin", "--quiet"],
        workdir=workdir,
        interactive=True,
    )
    paths.incoming.mkdir(mode=0o700, exist_ok=True)
    remove_stale_incoming(paths.incoming)
    pack = paths.incoming / f"{os.getpid()}.pack"
    fd = os.open(pack, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        made = proc.run_binary(
            [runtime.executable, *argv],
            input=revs.encode(),
            output=fd,
            limit=PACK_LIMIT,
            timeout=PACK_TIMEOUT,
        )
        if not made.ok:
            raise proc.CommandFailed(made, "the sandbox could not pack its commits")
        os.lseek(fd, 0, os.SEEK_SET)
        _index_into(app, user_root, fd, paths.incoming / f"{os.getpid()}-checked")
    finally:
        os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            pack.unlink()
    excluded = [f"^{commit}" for commit in have]
    git(app, user_root, "rev-list", "--objects", "--quiet", wanted, *excluded)  # all there


def _index_into(app: App, user_root: Path, fd: int, checked: Path) -> None:
    """Index the pack read from `fd` beside itself under the alcatraz home, checked against
    the user's repository; only a pack that passed goes into its `objects/pack`. (With
    `--stdin` alone git spools it there first and leaves it behind when it fails: up to
    `PACK_LIMIT` of the agent's bytes in the user's repository on every refusal.)"""
    made = [checked.with_suffix(suffix) for suffix in (".pack", ".rev", ".idx")]
    try:
        indexed = proc.run_binary(
            ["git", "-C", str(user_root), "index-pack", "--strict", "--fix-thin", "--stdin",
             "-o", str(made[2]), str(made[0])],
            stdin=fd,
        )  # fmt: skip
        name = indexed.stdout.split()[-1] if indexed.ok and indexed.stdout.split() else ""
        if not indexed.ok or not is_object_id(name):
            raise RefusedError(
                "the commits from the branch sandbox failed git's object checks "
                f"({printable(indexed.stderr.strip()[:300])}); your repository was not changed",
                hint="look at the branch inside the sandbox; the agent may have written "
                "malformed objects",
            )
        into = objects_dir(app, user_root) / "pack"
        for source in made:  # the .idx last: git reads a pack only once its index is there
            if source.exists():
                target = into / f"pack-{name}{source.suffix}"
                if not target.exists():
                    spooled = into / f"tmp_alca_{os.getpid()}{source.suffix}"
                    shutil.copyfile(source, spooled)
                    spooled.chmod(0o444)
                    os.replace(spooled, target)
    finally:
        for path in made:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def bring_back(
    app: App, runtime: Runtime, container: str, workdir: str, user_root: Path,
    paths: BranchPaths, name: str, base: str,
) -> str | None:  # fmt: skip
    """Set the user's branch `name` to the agent's, fast-forward only: its new commit, or
    None when there is nothing new. Refused (nothing moved) otherwise, the agent's commits
    kept at `refs/alca/branches/NAME`."""
    wanted = _agent_tip(runtime, container, workdir, name)
    old = tip(app, user_root, name)
    if wanted == old:
        return None
    have = [commit for commit in (base, old) if commit is not None]
    _import_pack(app, runtime, container, workdir, user_root, paths, wanted, have)
    git(app, user_root, "update-ref", incoming_ref(name), wanted)
    kept = f"the agent's commits are kept at {incoming_ref(name)}"
    if old is not None and not is_ancestor(app, user_root, old, wanted):
        raise RefusedError(
            f"branch {printable(name)} of your repository has commits the agent's branch does "
            f"not: not a fast-forward, so it was not moved; {kept}",
            hint=f"combine them: git checkout {name} && git merge {incoming_ref(name)} "
            f"(or take the agent's version: git branch -f {name} {incoming_ref(name)})",
        )
    if checked_out(app, user_root, name):
        raise RefusedError(
            f"branch {printable(name)} is checked out in your repository, so it was not "
            f"moved; {kept}",
            hint=f"git merge --ff-only {incoming_ref(name)}",
        )
    expected = old if old is not None else "0" * len(wanted)
    git(app, user_root, "update-ref", "-m", "alca: from the branch sandbox",
        branch_ref(name), wanted, expected)  # fmt: skip
    git(app, user_root, "update-ref", "-d", incoming_ref(name))
    return wanted


def is_ancestor(app: App, user_root: Path, older: str, newer: str) -> bool:
    found = git(app, user_root, "merge-base", "--is-ancestor", older, newer, check=False)
    return found.returncode == 0


def checked_out(app: App, user_root: Path, name: str) -> bool:
    """Whether any worktree of the user's repository has branch `name` checked out."""
    listed = git(app, user_root, "worktree", "list", "--porcelain")
    return f"branch {branch_ref(name)}" in listed.stdout.splitlines()


def has_uncommitted(runtime: Runtime, container: str, workdir: str) -> bool:
    """Whether the copy holds changes not committed (asked inside; unsure counts as yes)."""
    found = runtime.exec_capture(
        container, ["git", "status", "--porcelain"], workdir=workdir, timeout=_TIMEOUT
    )
    return not found.ok or bool(found.stdout.strip())


def ahead(app: App, user_root: Path, base: str, name: str) -> int | None:
    """Commits branch `name` of the user's repository has beyond `base`."""
    if tip(app, user_root, name) is None:
        return None
    found = git(app, user_root, "rev-list", "--count", f"{base}..{branch_ref(name)}", check=False)
    text = found.stdout.strip()
    return int(text) if found.ok and text.isdigit() else None
