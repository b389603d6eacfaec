"""Mutagen v0.18.1, driven through its CLI, to sync a project into a sandbox container.

Why Mutagen instead of a bind mount: a file matching an exclude pattern must never exist
inside the container, including one the user creates on the host later, and a bind mount
shows everything. Mutagen never scans, sends, overwrites or deletes an ignored path on
either side, so an excluded file on the host never reaches the container and a file the
sandbox writes at an excluded path never reaches the host (both verified by the
integration tests).

The pieces: the daemon private to alcatraz and its data directory (`daemon`), the
`sync create` arguments with the session settings they fix (`arguments`), what Mutagen
reports about its sessions (`sessions`), and the exact version required and how to install
it (`install`). This module runs the commands; it re-exports the names its callers use.
"""

from __future__ import annotations

import builtins
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

from alcatraz.errors import UnavailableError, quote
from alcatraz.proc import CommandFailed, Result
from alcatraz.sync import daemon
from alcatraz.sync.arguments import (
    LABEL_MOUNT,
    LABEL_PROJECT,
    beta_url,
    check_ignore,
    create_args,
    ignore_arg,
    project_selector,
    session_labels,
    session_name,
    valid_label_value,
)
from alcatraz.sync.daemon import MAX_DATA_DIR_BYTES
from alcatraz.sync.install import (
    EXECUTABLE,
    INSTALL_HINT,
    MUTAGEN_VERSION,
    check_agent_bundle,
    check_version,
)
from alcatraz.sync.sessions import (
    Problem,
    Session,
    SyncError,
    check_root,
    error_text,
    explain,
    parse_session,
    parse_sessions,
)

if TYPE_CHECKING:
    from alcatraz.proc import Runner

__all__ = [
    "INSTALL_HINT",
    "LABEL_MOUNT",
    "LABEL_PROJECT",
    "MAX_DATA_DIR_BYTES",
    "MUTAGEN_VERSION",
    "Mutagen",
    "Problem",
    "Session",
    "SyncError",
    "beta_url",
    "check_ignore",
    "create_args",
    "error_text",
    "explain",
    "ignore_arg",
    "parse_session",
    "parse_sessions",
    "project_selector",
    "session_labels",
    "session_name",
    "valid_label_value",
]

#: A transient daemon-side failure of `sync create` (the CLI's prompter was not registered).
_PROMPTER_LOST: Final = "prompter not found"

CREATE_TIMEOUT: Final = 120.0  # installs the agent into the container on first use
QUERY_TIMEOUT: Final = 30.0
FLUSH_TIMEOUT: Final = 60.0

# What Mutagen prints (stderr, "Error: ..."), matched to decide what a failure means.
_NOT_READY: Final = "not currently able to synchronize"
_NO_MATCH: Final = "did not match any sessions"
_VERSION_MISMATCH: Final = "client/daemon version mismatch"
_NO_DAEMON: Final = "unable to connect to daemon"


class Mutagen:
    """Mutagen with a daemon private to alcatraz (see `alcatraz.sync.daemon`)."""

    def __init__(
        self,
        runner: Runner,
        *,
        data_dir: Path,
        engine: str = "docker",
        environ: Mapping[str, str] | None = None,
        executable: str = EXECUTABLE,
        engine_executable: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if engine not in ("docker", "podman"):
            raise ValueError(f"unknown container engine {engine!r}")
        daemon.check_data_dir(data_dir)
        self.runner = runner
        self.data_dir = data_dir
        self.engine = engine
        self.executable = executable
        self.engine_executable = engine_executable or engine
        self._clock = clock
        self._sleep = sleep
        self._prepared = False
        source = os.environ if environ is None else environ
        self.env: Mapping[str, str] = daemon.isolated_env(source, engine, data_dir)

    @property
    def docker_dir(self) -> Path:
        return daemon.docker_dir(self.data_dir)

    @property
    def socket_path(self) -> Path:
        return daemon.socket_path(self.data_dir)

    # -- running mutagen --

    def _prepare(self) -> None:
        """Create the data dir and the `docker` symlink the daemon will use (once)."""
        if self._prepared:
            return
        daemon.prepare_data_dir(self.data_dir, self.engine, self.engine_executable, self.env)
        self._prepared = True

    def _exec(self, args: Sequence[str], timeout: float) -> Result:
        try:
            return self.runner.run([self.executable, *args], env=self.env, timeout=timeout)
        except UnavailableError:
            raise UnavailableError(
                f"{self.executable} is not installed (not found on PATH)", hint=INSTALL_HINT
            ) from None

    def _run(self, args: Sequence[str], *, timeout: float = QUERY_TIMEOUT) -> Result:
        self._prepare()
        result = self._exec(args, timeout)
        if not result.ok and _VERSION_MISMATCH in result.stderr:
            # A daemon left by another Mutagen build in our data dir: replace it, once.
            self.daemon_stop()
            result = self._exec(args, timeout)
        return result

    def _failed(self, result: Result, summary: str, hint: str | None = None) -> CommandFailed:
        clean = Result(result.argv, result.returncode, "", error_text(result))
        return CommandFailed(clean, summary, hint or "run with ALCA_DEBUG=1 to see each command")

    # -- installation --

    def check_installed(self) -> str:
        """Raise UnavailableError unless Mutagen 0.18.1 and its agent bundle are installed."""
        result = self._exec(["version"], QUERY_TIMEOUT)
        found = check_version(result, self.executable)
        check_agent_bundle(self.executable, self.env)
        return found

    # -- sessions --

    def _check_outside(self, alpha: str) -> None:
        data = os.path.realpath(self.data_dir)
        root = os.path.realpath(alpha)
        if os.path.commonpath([data, root]) == root:
            raise SyncError(
                f"the sync data directory {quote(str(self.data_dir))} lies inside the synced "
                f"directory {quote(alpha)}",
                hint="set ALCA_HOME to a directory outside the project",
            )

    def create(
        self,
        name: str,
        alpha: str,
        beta_container: str,
        beta_path: str,
        *,
        ignores: Sequence[str],
        one_way: bool,
        labels: Mapping[str, str],
        beta_user: str | None = None,
        watch_polling_interval: int | None = None,
        timeout: float = CREATE_TIMEOUT,
    ) -> Session:
        """Start syncing host `alpha` into `beta_path` in the container; returns the session.

        Replaces any session of the same name (Mutagen names are not unique). The parent of
        `beta_path` must exist in the container: Mutagen creates the root, not its parents,
        and otherwise reports a transition problem at "" (see `flush`). Sync into an empty
        directory: a new session has no common ancestor, so differing files already on both
        sides all become conflicts. Follow with `flush` before relying on the contents.
        """
        args = create_args(
            name,
            alpha,
            beta_container,
            beta_path,
            ignores=ignores,
            one_way=one_way,
            labels=labels,
            beta_user=beta_user,
            watch_polling_interval=watch_polling_interval,
        )
        if not os.path.isdir(alpha):
            raise SyncError(f"cannot sync {quote(alpha)}: it is not a directory on the host")
        self._check_outside(alpha)
        self.terminate(name)
        result = self._run(args, timeout=timeout)
        if not result.ok and _PROMPTER_LOST in result.stderr:
            # The daemon lost the CLI's status-line prompter while dialling the agent (seen
            # once in ~150 creates on this machine); nothing was created, so try once more.
            self.terminate(name)
            result = self._run(args, timeout=timeout)
        if not result.ok:
            raise self._failed(
                result,
                f"could not start syncing {alpha} into {beta_container}:{beta_path}",
                hint="check that the container is running (alca up)"
                if "container" in result.stderr
                else None,
            )
        return self._created(name, ignores)

    def _created(self, name: str, ignores: Sequence[str]) -> Session:
        """The new session, once Mutagen lists it with exactly the exclude patterns asked for."""
        session = self.get(name)
        if session is None:
            raise SyncError(f"mutagen created sync session {name} but does not list it")
        if session.ignore_paths != tuple(ignores):
            self.terminate(name)
            raise SyncError(
                f"mutagen recorded the exclude patterns {list(session.ignore_paths)} instead of "
                f"{list(ignores)}; the sync session was removed"
            )
        return session

    def list(self, label_selector: str | None = None) -> builtins.list[Session]:
        """Sessions, all of this daemon's or those matching `label_selector`."""
        args = ["sync", "list", "--template={{json .}}"]
        if label_selector is not None:
            args.append(f"--label-selector={label_selector}")
        result = self._run(args)
        if not result.ok:
            raise self._failed(result, "could not list sync sessions")
        return parse_sessions(result.stdout)

    def get(self, name: str) -> Session | None:
        """One session by name, or None."""
        result = self._run(["sync", "list", "--template={{json .}}", name])
        if not result.ok:
            if _NO_MATCH in result.stderr:
                return None
            raise self._failed(result, f"could not read sync session {name}")
        sessions = parse_sessions(result.stdout)
        return sessions[0] if sessions else None

    def flush(self, name: str, *, timeout: float = FLUSH_TIMEOUT) -> Session:
        """Run one full sync cycle now and wait for it; returns the session afterwards.

        Right after create or resume the session may still be connecting ("not currently
        able to synchronize"); that is retried until `timeout`. Conflicts do not fail a
        flush (read `Session.conflicts`); a problem with the synced root itself does.
        """
        try:
            self._flush([name], timeout, f"sync session {name}")
        except CommandFailed as exc:
            current = self.get(name)
            if current is None or not (current.paused or current.halted or current.last_error):
                raise
            if current.halted:
                hint = "`alca up` recreates the sync sessions"
            elif current.paused:
                hint = "resume it first"
            else:
                hint = "check that the container is running (alca up)"
            raise SyncError(
                f"could not synchronise sync session {name}: {explain(current)}", hint=hint
            ) from exc
        session = self.get(name)
        if session is None:
            raise SyncError(f"sync session {name} disappeared during a flush")
        check_root(session)
        return session

    def flush_all(
        self, label_selector: str, *, timeout: float = FLUSH_TIMEOUT
    ) -> builtins.list[Session]:
        """`flush` for every session matching `label_selector` (none is fine)."""
        self._flush([f"--label-selector={label_selector}"], timeout, "sync sessions")
        sessions = self.list(label_selector)
        for session in sessions:
            check_root(session)
        return sessions

    def _flush(self, selection: Sequence[str], timeout: float, what: str) -> None:
        deadline = self._clock() + timeout
        delay = 0.1
        while True:
            remaining = deadline - self._clock()
            result = self._run(["sync", "flush", *selection], timeout=max(remaining, 1.0))
            if result.ok:
                return
            if _NOT_READY in result.stderr and self._clock() + delay < deadline:
                self._sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            hint = None
            if _NOT_READY in result.stderr:
                hint = "the container may be stopped; `alca up` starts it"
            elif _NO_MATCH in result.stderr:
                hint = "`alca up` recreates the sync sessions"
            raise self._failed(result, f"could not synchronise {what}", hint)

    def _each(self, verb: str, names: Sequence[str], label_selector: str | None) -> None:
        if not names and label_selector is None:
            raise ValueError(f"sync {verb}: give session names or a label selector")
        selections = [[name] for name in names]  # one by one: one missing name fails all
        if label_selector is not None:
            selections.append([f"--label-selector={label_selector}"])
        for selection in selections:
            result = self._run(["sync", verb, *selection])
            if not result.ok and _NO_MATCH not in result.stderr:
                raise self._failed(result, f"could not {verb} sync session {selection[0]}")

    def terminate(self, *names: str, label_selector: str | None = None) -> None:
        """End sessions (files stay on both sides); a missing session is not an error."""
        self._each("terminate", names, label_selector)

    def pause(self, *names: str, label_selector: str | None = None) -> None:
        """Stop syncing until `resume` (changes on both sides wait, nothing is lost)."""
        self._each("pause", names, label_selector)

    def resume(self, *names: str, label_selector: str | None = None) -> None:
        """Resume paused sessions; also reconnects a disconnected one at once."""
        self._each("resume", names, label_selector)

    # -- the daemon --

    def daemon_running(self) -> bool:
        """Whether a daemon answers on our socket (no program is run)."""
        return daemon.socket_answers(self.socket_path)

    def daemon_start(self) -> None:
        """Start the daemon now, with our environment (any command would start it too).

        Sessions survive in the data dir but only sync while the daemon runs: after a
        reboot nothing syncs until some command here starts it again.
        """
        result = self._run(["daemon", "start"])
        if not result.ok:
            raise self._failed(result, "could not start the sync daemon")

    def daemon_stop(self, *, wait: float = 10.0) -> None:
        """Stop our daemon if it runs and wait until it is gone. Sessions are kept."""
        if not self.daemon_running():
            return
        result = self._exec(["daemon", "stop"], QUERY_TIMEOUT)
        if not result.ok and _NO_DAEMON not in result.stderr:
            raise self._failed(result, "could not stop the sync daemon")
        deadline = self._clock() + wait
        while self.daemon_running():
            if self._clock() >= deadline:
                raise SyncError(
                    f"the sync daemon ({self.socket_path}) is still running {wait:.0f} s after "
                    "being asked to stop"
                )
            self._sleep(0.05)
