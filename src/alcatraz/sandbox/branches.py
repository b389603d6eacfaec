"""Branch sandboxes (`-b NAME`): one sandbox per branch, each on a private copy, results
back as branches of the user's repository.

The copy is the sandbox's project root, so its state, container, network and rules are
keyed by project and branch; its configuration is the project's, approved in the user's
checkout and never read from the copy; the user's objects are shared read-only at their
own path. See docs/parallel-agents.md and decision 0017.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path
from typing import NamedTuple

from alcatraz import proc, state
from alcatraz.app import App
from alcatraz.config import private
from alcatraz.config.load import Config
from alcatraz.config.values import Mount
from alcatraz.errors import AlcaError, RefusedError, UsageError
from alcatraz.printable import printable
from alcatraz.runtime.base import ContainerState, Runtime
from alcatraz.sandbox import branchgit, down, enter, project, trust, up
from alcatraz.sandbox.branchname import BranchPaths, DownCheck, down_refusal, inside


class BranchRecord(NamedTuple):
    """What `up -b` recorded beside the copy (in the alcatraz home, not in the copy)."""

    name: str
    user_root: str
    base: str
    created: str


def read_record(paths: BranchPaths) -> BranchRecord | None:
    data = state.read_json(paths.record)
    if data is None:
        return None
    try:
        return BranchRecord(**{field: str(data[field]) for field in BranchRecord._fields})
    except KeyError:
        raise AlcaError(f"{paths.record} is damaged", hint="remove it and its copy") from None


def _require(app: App, name: str) -> tuple[Path, BranchPaths, BranchRecord]:
    user_root = project.locate(app)
    paths = BranchPaths.of(app.home, user_root, name)
    record = read_record(paths)
    if record is None:
        raise AlcaError(
            f"no branch sandbox {printable(name)} for this project",
            hint=f"create it with 'alca up -b {printable(name)}'",
        )
    return user_root, paths, record


def branch_config(app: App, config: Config, user_root: Path, copy: Path) -> Config:
    """The project's configuration, aimed at the copy: the user's objects read-only at their
    own path, private directories of the branch's own, no host hooks (they would run in the
    agent's copy), the copy's config files bound read-only over themselves."""
    objects = branchgit.objects_dir(app, user_root)
    for target in (config.workdir, *(m.target for m in config.mounts)):
        if inside(objects, target) or inside(target, objects):
            raise RefusedError(
                f"the repository's objects ({printable(str(objects))}) would be mounted at or "
                f"over {printable(target)}; nothing was started",
                hint="set workdir (and mount targets) to a path outside the repository, "
                'e.g. workdir = "/workspace"',
            )
    shared = private.private_root(app.home, user_root)
    own = private.private_root(app.home, copy)
    mounts = [
        dataclasses.replace(m, source=str(own / Path(m.source).name))
        if Path(m.source).parent == shared
        else m
        for m in config.mounts
    ]
    mounts.append(Mount(str(objects), str(objects), readonly=True))
    real_root = user_root.resolve()
    files = []
    for path in config.files:
        if inside(path, real_root) and os.path.lexists(copy / path.relative_to(real_root)):
            files.append(copy / path.relative_to(real_root))
    return dataclasses.replace(
        config, project_root=copy, mounts=tuple(mounts), files=tuple(files), post_up="",
        pre_down="",
    )  # fmt: skip


def _approved_config(app: App, user_root: Path, *, assume_yes: bool) -> Config:
    config = project.load(app, user_root)
    opened = project.open_project(app, user_root)
    with opened.store.lock():
        opened = project.open_project(app, user_root)
        project.require_approval(app, config, opened, assume_yes=assume_yes)
    return config


def up_branch(app: App, name: str, *, start: str | None, force: bool, assume_yes: bool) -> None:
    """`alca up -b NAME [--from REF]`: make the copy once, then `up` its sandbox."""
    user_root = project.locate(app)
    paths = BranchPaths.of(app.home, user_root, name)
    config = _approved_config(app, user_root, assume_yes=assume_yes)
    with state.ProjectStore.of(app.home, paths.work).lock():
        record = read_record(paths)
        if record is None:
            _create(app, user_root, paths, name, start)
        elif start is not None:
            raise UsageError(
                f"branch sandbox {printable(name)} already exists",
                hint="drop --from, or remove it with 'alca down -b NAME --purge' first",
            )
        chosen = branch_config(app, config, user_root, paths.work)
        trust.approve(chosen, Path(state.ProjectStore.of(app.home, paths.work).directory))
    up.up_approved(app, chosen, paths.work, force=force)


def _create(app: App, user_root: Path, paths: BranchPaths, name: str, start: str | None) -> None:
    base = branchgit.start_commit(app, user_root, name, start)
    app.step(f"Creating a private copy on branch {printable(name)} at {base[:12]}...")
    if paths.work.exists():  # unrecorded: an `up -b` killed while copying, or a lost record
        raise RefusedError(
            f"a copy without a record is in the way at {paths.work}; nothing was changed",
            hint="look at it (it may hold an agent's work), remove it, then try again",
        )
    try:
        branchgit.create_copy(app, user_root, paths, name, base)
    except BaseException:
        shutil.rmtree(paths.work, ignore_errors=True)
        raise
    record = BranchRecord(name, str(user_root), base, project.now())
    state.write_json(paths.record, record._asdict())


class _Sandbox(NamedTuple):
    runtime: Runtime
    container: str
    workdir: str
    running: bool


def _sandbox(app: App, paths: BranchPaths) -> _Sandbox | None:
    """The branch's running (or stopped) container, from its state; None when there is none."""
    opened = project.open_project(app, paths.work, allow_replaced=True)
    spec = opened.state.run_spec
    if opened.project_id is None or spec is None:
        return None
    runtime = project.engine_for(app, "auto", opened.state)
    info = project.find_container(runtime, opened)
    if info is None:
        return None
    running = info.state is ContainerState.RUNNING
    return _Sandbox(runtime, info.name, spec.workdir, running)


def bring_back(app: App, paths: BranchPaths, record: BranchRecord) -> str | None:
    """The branch's commits into the user's repository; the line that says so, if any moved."""
    found = _sandbox(app, paths)
    if found is None or not found.running:
        raise RefusedError(
            f"branch sandbox {printable(record.name)} is not running: its commits cannot be "
            "read", hint=f"run 'alca up -b {printable(record.name)}' first",
        )  # fmt: skip
    moved = branchgit.bring_back(
        app, found.runtime, found.container, found.workdir, Path(record.user_root), paths,
        record.name, record.base,
    )  # fmt: skip
    if moved is None:
        return None
    return f"Branch {printable(record.name)} of your repository is now at {moved[:12]}"


def run_branch(app: App, name: str, args: list[str]) -> int:
    """`alca run -b NAME CMD…`: the command in the branch's sandbox, then its commits back."""
    if not args:
        raise UsageError("alca run: missing command", hint="e.g. alca run -b NAME make test")
    user_root, paths, record = _require(app, name)
    cwd = str(app.cwd)
    here = os.path.relpath(cwd, user_root) if inside(app.cwd, user_root) else "."
    argv = enter.checked_argv(str(paths.work), args, str(paths.work / here))
    code = proc.run_attached(argv)
    moved = bring_back(app, paths, record)
    if moved is not None and not app.quiet:
        app.err(f"→ {moved}")  # stderr: stdout is the command's
    return code


def down_branch(app: App, name: str, *, force: bool, purge: bool) -> None:
    """`alca down -b NAME`: commits back, then the sandbox removed; the copy kept unless
    `--purge` (and kept when it holds uncommitted work, unless `--force`)."""
    user_root, paths, record = _require(app, name)
    found = _sandbox(app, paths)
    running = found is not None and found.running
    dirty = True
    if found is not None and running:
        try:
            moved = bring_back(app, paths, record)
            if moved is not None:
                app.step(moved)
        except RefusedError:
            if not force:
                raise
        dirty = branchgit.has_uncommitted(found.runtime, found.container, found.workdir)
    refusal = down_refusal(DownCheck(running=running, dirty=dirty, force=force, purge=purge))
    if refusal is not None:
        raise RefusedError(
            f"{refusal}; nothing was removed",
            hint=f"commit inside (alca run -b {printable(name)} git commit -am ...), or add "
            "--force (the copy is kept unless --purge)",
        )

    def load() -> Config:
        return branch_config(app, project.load(app, user_root), user_root, paths.work)

    down.down_at(app, paths.work, load, force=force)
    if purge:
        purge_copy(app, paths, name)
    else:
        app.info(f"The copy is kept at {paths.work} (remove it with --purge)")


def purge_copy(app: App, paths: BranchPaths, name: str) -> None:
    """Remove a branch sandbox's copy and its state (`down -b --purge`, the sandbox down)."""
    store = state.ProjectStore.of(app.home, paths.work)
    shutil.rmtree(store.directory, ignore_errors=True)
    try:
        shutil.rmtree(paths.directory)
    except OSError as error:  # e.g. files a rootless sandbox made under another uid
        raise AlcaError(
            f"the sandbox is down, but its copy could not be removed: "
            f"{printable(str(error.filename or paths.directory))}: "
            f"{printable(error.strerror or str(error))}",
            hint=f"remove {paths.directory} yourself (rootless Podman: podman unshare "
            f"rm -rf {paths.directory})",
        ) from None
    app.step(f"Removed the copy of branch {printable(name)}")


def _isolation_word(paths: BranchPaths, app: App) -> str:
    isolation = state.ProjectStore.of(app.home, paths.work).load().isolation
    if isolation is None:
        return "none"
    return "enforced" if isolation.enforced else ("proxied" if isolation.proxied else "off")


def describe(app: App, paths: BranchPaths, record: BranchRecord) -> dict[str, object]:
    """One branch sandbox as `status -b` and `list` show it (the copy is not read)."""
    user_root = Path(record.user_root)
    try:
        found = _sandbox(app, paths)
        status = "absent" if found is None else ("running" if found.running else "stopped")
    except AlcaError:  # no engine answers, the state is damaged: not known to be gone
        found, status = None, "unknown"
    try:
        ahead = branchgit.ahead(app, user_root, record.base, record.name)
    except AlcaError:
        ahead = None
    return {
        "branch": record.name,
        "project": record.user_root,
        "base": record.base,
        "ahead": ahead,
        "container": found.container if found is not None else None,
        "status": status,
        "isolation": _isolation_word(paths, app),
        "copy": str(paths.work),
    }


def status_branch(app: App, name: str) -> dict[str, object]:
    _user_root, paths, record = _require(app, name)
    return describe(app, paths, record)


def every_branch(app: App) -> list[dict[str, object]]:
    """Every branch sandbox of every project under this alcatraz home."""
    rows = []
    for record_path in sorted((app.home / "branches").glob("*/*/branch.json")):
        paths = BranchPaths(record_path.parent)
        record = read_record(paths)
        if record is not None:
            rows.append(describe(app, paths, record))
    return rows


def stale_copies(app: App) -> list[dict[str, object]]:
    """Branch sandboxes whose sandbox is gone and whose project or branch is gone too."""
    stale = []
    for row in every_branch(app):
        if row["status"] != "absent":
            continue
        project_root = Path(str(row["project"]))
        if not (project_root / ".git").exists():
            stale.append({**row, "reason": "the project (or its repository) is gone"})
            continue
        try:
            has_branch = branchgit.tip(app, project_root, str(row["branch"])) is not None
        except AlcaError:
            has_branch = False
        if not has_branch:
            stale.append({**row, "reason": "the branch is gone from the project's repository"})
    return stale
