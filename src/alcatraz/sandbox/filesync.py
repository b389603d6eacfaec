"""File sync around the lifecycle: which mounts are synced, and when sessions live.

A mount with exclude patterns (mount #0 with `workdir_exclude`, or a mount's `exclude`) is
synced with Mutagen instead of bind-mounted, so the excluded paths never exist inside the
container. Sessions are created after the container starts and before `commands.up`, and
flushed before it; they survive a stopped container (Mutagen reconnects when it starts
again, so no false conflicts) and are terminated by `down` and `cleanup`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alcatraz import protect, state
from alcatraz.app import App
from alcatraz.config.layer import Mount
from alcatraz.config.load import Config
from alcatraz.errors import AlcaError, RefusedError
from alcatraz.network.plan import project_key
from alcatraz.paths import CONFIG_NAME
from alcatraz.runtime.base import Runtime
from alcatraz.sandbox.plan import needs_sync as needs_sync  # re-exported: the commands ask here

if TYPE_CHECKING:
    from alcatraz.sync.conflicts import Conflict
    from alcatraz.sync.mutagen import Mutagen, Session

#: Polling interval (s) for files Mutagen does not watch natively (see docs/sync.md).
WATCH_POLLING_INTERVAL = 2
CONFLICT_CACHE = state.CONFLICTS_FILE  # the names of a project's files are `ProjectStore`'s


@dataclass(frozen=True)
class SyncedMount:
    index: int  # position in Config.all_mounts (0 = the project)
    mount: Mount
    ignores: tuple[str, ...]


def synced_mounts(config: Config) -> list[SyncedMount]:
    """Mounts that must be synced, with the patterns Mutagen will ignore."""
    result: list[SyncedMount] = []
    for index, mount in enumerate(config.all_mounts):
        if not mount.exclude:
            continue
        ignores = list(mount.exclude)
        if index == 0:
            # Configuration files are bind-mounted read-only instead; an `.alca.*.toml`
            # created inside the sandbox never reaches the host.
            ignores += [f"/{CONFIG_NAME}", "/.alca.*.toml"]
            root = config.project_root.resolve()
            for path in config.files:
                try:
                    ignores.append("/" + str(path.relative_to(root)))
                except ValueError:
                    continue
            # Files the host executes: bound read-only instead (alcatraz.protect), and
            # whatever the agent puts at those names never reaches the host.
            ignores += protect.sync_ignores(config, protect.placements_for(config))
        result.append(SyncedMount(index, mount, tuple(dict.fromkeys(ignores))))
    return result


def data_dir(app: App, engine: str) -> Path:
    """The private Mutagen daemon's directory, one per engine, short enough for its socket."""
    preferred = app.home / "m" / engine[0]
    if len(os.fsencode(str(preferred))) <= 80:
        return preferred
    fallback = Path("/tmp") / f"alcatraz-{os.getuid()}" / engine[0]  # noqa: S108 - owner-checked
    fallback.parent.mkdir(mode=0o700, exist_ok=True)
    info = fallback.parent.stat()
    if info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise RefusedError(
            f"{fallback.parent} is not private to you; refusing to keep sync state there",
            hint="set a shorter ALCA_HOME (the sync daemon's socket path must stay short)",
        )
    return fallback


def mutagen_for(app: App, runtime: Runtime) -> Mutagen:
    from alcatraz.sync.mutagen import Mutagen

    return Mutagen(
        app.runner,
        data_dir=data_dir(app, runtime.executable),
        engine=runtime.executable,
        environ=app.environ,
    )


def check_possible(app: App, runtime: Runtime, config: Config) -> None:
    """Refuse early (before anything is created) when excluded files cannot be hidden."""
    if not needs_sync(config):
        return
    if runtime.executable == "podman" and runtime.is_rootless():
        raise RefusedError(
            "hiding files (workdir_exclude / mount exclude) is not supported with rootless "
            "Podman here: the sync agent cannot be installed into a rootless container",
            hint="use rootful Podman (sudo) or Docker, or remove the exclude patterns and move "
            "the secrets out of the project",
        )
    mutagen_for(app, runtime).check_installed()


def prepare_container_paths(runtime: Runtime, name: str, config: Config) -> None:
    """Mutagen creates a sync root but not its parents."""
    parents = sorted({str(Path(m.mount.target).parent) for m in synced_mounts(config)})
    if parents:
        code = runtime.exec(name, ["mkdir", "-p", *parents])
        if code != 0:
            raise AlcaError(f"could not create {', '.join(parents)} in the container")


def start(app: App, runtime: Runtime, config: Config, project_id: str, container: str) -> None:
    """Make sure every synced mount has a healthy session; flush them all."""
    mounts = synced_mounts(config)
    if not mounts:
        return  # before importing Mutagen's modules: a warm `up` without sync needs none
    from alcatraz.sync.mutagen import project_selector, session_labels, session_name

    mutagen = mutagen_for(app, runtime)
    key = project_key(project_id)
    existing = {s.name: s for s in mutagen.list(project_selector(project_id))}
    wanted = set()
    for synced in mounts:
        name = session_name(key, synced.index)
        wanted.add(name)
        session = existing.get(name)
        if session is not None and _matches(session, synced) and not session.halted:
            if not session.connected:
                # After a container restart Mutagen would wait up to 15 s to reconnect.
                mutagen.resume(name)
            continue
        with app.progress(
            f"Setting up file sync for {synced.mount.source} -> {synced.mount.target}"
        ):
            mutagen.create(
                name,
                synced.mount.source,
                container,
                synced.mount.target,
                ignores=synced.ignores,
                one_way=synced.mount.readonly,
                labels=session_labels(project_id, synced.index),
                watch_polling_interval=WATCH_POLLING_INTERVAL,
            )
    stale = [name for name in existing if name not in wanted]
    if stale:
        mutagen.terminate(*stale)
    with app.progress("Waiting for file sync to complete..."):  # the first sync copies it all
        mutagen.flush_all(label_selector=project_selector(project_id))


def forget_conflicts(state_dir: Path) -> None:
    """The container is gone: its conflicts went with it."""
    (state_dir / CONFLICT_CACHE).unlink(missing_ok=True)


def _matches(session: Session, synced: SyncedMount) -> bool:
    return tuple(session.ignore_paths) == synced.ignores and (
        (session.mode == "one-way-replica") == synced.mount.readonly
    )


def stop(app: App, runtime: Runtime, project_id: str) -> None:
    """Terminate the project's sessions (nothing on either side is deleted)."""
    from alcatraz.sync.mutagen import project_selector

    try:
        mutagen = mutagen_for(app, runtime)
        if not mutagen.daemon_running():
            return
        mutagen.terminate(label_selector=project_selector(project_id))
        if not mutagen.list():
            mutagen.daemon_stop()  # the last project: leave no process behind
    except AlcaError as error:
        if "not installed" not in error.message:
            raise


def poll_conflicts(
    app: App, runtime: Runtime, project_id: str, state_dir: Path
) -> tuple[list[Conflict], list[Session]]:
    """Ask Mutagen now (never trust the cache for decisions), and refresh the cache."""
    from alcatraz.sync.conflicts import write_cache
    from alcatraz.sync.mutagen import project_selector

    mutagen = mutagen_for(app, runtime)
    sessions = mutagen.list(project_selector(project_id))
    conflicts: list[Conflict] = []
    unlisted = 0
    for session in sessions:
        conflicts += list(session.conflicts)
        unlisted += session.excluded_conflicts
    write_cache(state_dir / CONFLICT_CACHE, conflicts, unlisted=unlisted)
    return conflicts, sessions


def describe_sessions(sessions: Sequence[Session]) -> list[dict[str, Any]]:
    from alcatraz.sync.mutagen import explain

    return [
        {
            "name": s.name,
            "mount": s.mount_index,
            "status": s.status,
            "healthy": s.connected and not s.halted and not s.last_error,
            "conflicts": s.conflict_count,
            "last_error": s.last_error,
            "summary": explain(s),
            "cycles": s.successful_cycles,
        }
        for s in sessions
    ]
