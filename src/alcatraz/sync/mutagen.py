"""Mutagen v0.18.1, driven through its CLI, to sync a project into a sandbox container.

Why Mutagen instead of a bind mount: a file matching an exclude pattern must never exist
inside the container, including one the user creates on the host later, and a bind mount
shows everything. Mutagen never scans, sends, overwrites or deletes an ignored path on
either side, so an excluded file on the host never reaches the container and a file the
sandbox writes at an excluded path never reaches the host (both verified by the
integration tests).

Isolation. Every command runs with `MUTAGEN_DATA_DIRECTORY=<data_dir>`: a daemon private to
alcatraz, so a user's own Mutagen (another version, `~/.mutagen`) never meets ours. All other
`MUTAGEN_*` variables are removed from the environment (`MUTAGEN_BETA_DOCKER_HOST` and the
like would redirect an endpoint), and `sync create` gets `--no-global-configuration`, so
`~/.mutagen.yml` cannot add ignores, negations or modes. The docker:// transport runs a
program named `docker` found in `MUTAGEN_DOCKER_PATH`; this points at `<data_dir>/bin`, where
`docker` is a symlink to the engine's CLI (`podman` for Podman), so the daemon drives the
right engine whatever PATH started it. The daemon looks that program up on every call, so
one data directory serves one engine (recorded in `<data_dir>/engine`).

Layout and its limit. `<data_dir>/daemon/daemon.sock` is a Unix socket, and Linux socket
paths hold at most 107 bytes, so `data_dir` may be at most 88 bytes long. Longer, and Mutagen
fails with the misleading "unable to connect to daemon: connection timed out (is the daemon
running?)", so it is refused up front. A path like `~/.alcatraz/m/<8 chars>` fits. It must
not lie inside a synced directory (the daemon's own writes would be synced forever).

Session settings, each passed explicitly so no default can change under us:

- `--mode=two-way-safe`, or `one-way-replica` for a read-only mount: the container copy
  mirrors the host and nothing written inside ever reaches the host (upstream S4).
- `--symlink-mode=portable`: only relative links that stay inside the synced root are
  synced. A link the sandbox makes to `/etc/passwd` or `../../x` stays in the container (a
  scan problem), so it can never appear on the host pointing outside the project.
  `posix-raw` would copy such links to the host; `ignore` would break repositories that use
  in-tree links.
- `--no-ignore-vcs`: `.git` is synced, as upstream does, so git works inside; exclude it
  like any other path if it must stay out.
- `--permissions-mode=portable`: only the executable bit crosses. Files Mutagen writes on the
  host get 0600 (directories 0700), so a change made inside never widens a host file's mode;
  inside the container they get 0644/0755 so that any user there can read them.
- Ignores use Mutagen's default syntax; see `check_ignore` for the semantics.

Mutagen itself must be 0.18.1 exactly (CLI, daemon and in-container agent must match, and
0.18.0 cannot install its agent into Docker >= 28 or Podman); `check_installed` says how to
get it.
"""

from __future__ import annotations

import builtins
import json
import os
import re
import shutil
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Final

from alcatraz.errors import AlcaError, UnavailableError, quote
from alcatraz.printable import printable
from alcatraz.proc import CommandFailed, Result
from alcatraz.sync.conflicts import Conflict, parse_conflicts

if TYPE_CHECKING:
    from alcatraz.proc import Runner

__all__ = [
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
]

MUTAGEN_VERSION: Final = "0.18.1"
#: A transient daemon-side failure of `sync create` (the CLI's prompter was not registered).
_PROMPTER_LOST: Final = "prompter not found"
EXECUTABLE: Final = "mutagen"
AGENT_BUNDLE: Final = "mutagen-agents.tar.gz"
INSTALL_HINT: Final = (
    f"install Mutagen {MUTAGEN_VERSION}: put `mutagen` and `{AGENT_BUNDLE}` from its release "
    "archive in one directory on PATH, or build both from the Go module proxy "
    f"(github.com/mutagen-io/mutagen@v{MUTAGEN_VERSION}) as scripts/setup-test-env.sh does"
)

SOCKET_PATH_MAX: Final = 107
"""Bytes in a Linux Unix-socket path (`sun_path` is 108 with the terminating NUL)."""
_SOCKET_SUFFIX: Final = "/daemon/daemon.sock"
MAX_DATA_DIR_BYTES: Final = SOCKET_PATH_MAX - len(_SOCKET_SUFFIX)  # 88

LABEL_PROJECT: Final = "alca-project"
LABEL_MOUNT: Final = "alca-mount"

MODE_TWO_WAY: Final = "two-way-safe"
MODE_ONE_WAY: Final = "one-way-replica"
HOST_FILE_MODE: Final = "0600"
HOST_DIRECTORY_MODE: Final = "0700"
CONTAINER_FILE_MODE: Final = "0644"
CONTAINER_DIRECTORY_MODE: Final = "0755"

CREATE_TIMEOUT: Final = 120.0  # installs the agent into the container on first use
QUERY_TIMEOUT: Final = 30.0
FLUSH_TIMEOUT: Final = 60.0

# What Mutagen prints (stderr, "Error: ..."), matched to decide what a failure means.
_NOT_READY: Final = "not currently able to synchronize"
_NO_MATCH: Final = "did not match any sessions"
_VERSION_MISMATCH: Final = "client/daemon version mismatch"
_NO_DAEMON: Final = "unable to connect to daemon"

_SESSION_NAME: Final = re.compile(r"[A-Za-z][A-Za-z0-9-]*")
_LABEL_PART: Final = re.compile(r"[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?")
_CONTAINER: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_USER: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_FORBIDDEN_TARGETS: Final = ("/proc", "/sys", "/dev")
# Captured by `sync create` and replayed to every docker call; meaningless for Podman.
_DOCKER_VARS: Final = (
    "DOCKER_HOST",
    "DOCKER_TLS",
    "DOCKER_TLS_VERIFY",
    "DOCKER_CERT_PATH",
    "DOCKER_CONTEXT",
    "DOCKER_CONFIG",
    "DOCKER_API_VERSION",
)


class SyncError(AlcaError):
    """A sync operation could not be done, or its result cannot be trusted."""


# --- names, labels, patterns: pure -------------------------------------------------------


def session_name(project_key: str, index: int) -> str:
    """`alca-<project key>-<mount index>`; index 0 is the workdir mount."""
    name = f"alca-{project_key}-{index}"
    if index < 0 or not _SESSION_NAME.fullmatch(name):
        raise ValueError(f"invalid sync session name {name!r}: use letters, digits and -")
    return name


def session_labels(project_id: str, index: int) -> dict[str, str]:
    """The labels that find a project's sessions and map a session back to its mount."""
    return {LABEL_PROJECT: project_id, LABEL_MOUNT: str(index)}


def project_selector(project_id: str) -> str:
    """A label selector for every session of one project."""
    _check_label(LABEL_PROJECT, project_id)
    return f"{LABEL_PROJECT}={project_id}"


def valid_label_value(value: str) -> bool:
    """Whether `value` can be a session label's value (an engine label may hold anything)."""
    return bool(_LABEL_PART.fullmatch(value))


def _check_label(key: str, value: str) -> None:
    if not _LABEL_PART.fullmatch(key):
        raise ValueError(f"invalid sync label key {key!r}")
    if value and not _LABEL_PART.fullmatch(value):
        raise ValueError(
            f"invalid sync label value {value!r}: at most 63 letters, digits, - _ ., "
            "starting and ending alphanumeric"
        )


def check_ignore(pattern: str) -> str:
    """Refuse a pattern that could un-hide something or that Mutagen would read differently.

    Mutagen's default ignore syntax (verified against 0.18.1, see the integration tests):

    - no `/`: matches the name at any depth (`.env` hides `.env`, `a/.env`, `a/b/.env`,
      but not `.envrc`); `*` and `?` never cross `/`; `*.{key,crt}` alternatives work;
    - a `/` anywhere but at the end anchors at the synced root: `/.env` and
      `conf/secret.yml` match only at the top level, not `a/conf/secret.yml`;
    - `**/` matches any depth including the top: `**/conf/secret.yml`;
    - a trailing `/` matches directories only, at any depth when there is no other `/`:
      `secrets/` hides `secrets/` and `a/secrets/` but not a file named `secrets`;
    - matching is case-sensitive: `*.pem` does not hide `KEY.PEM`;
    - nothing inside an ignored directory can be re-included.

    A leading `!` would re-include what an earlier pattern hid, so it is refused (the
    configuration refuses it too); with `--no-global-configuration` no other source of
    patterns exists, so an excluded path can never be un-excluded. Empty patterns are
    refused because Mutagen silently drops `--ignore=` (nothing would be hidden).
    """
    if not pattern or not pattern.strip():
        raise ValueError("empty exclude pattern")
    if pattern.startswith("!"):
        raise ValueError(f"negated exclude pattern {pattern!r} would re-include files")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in pattern):
        raise ValueError(f"exclude pattern {pattern!r} contains a control character")
    if pattern.strip("/") == "":
        raise ValueError(f"exclude pattern {pattern!r} would hide the whole mount")
    return pattern


def ignore_arg(pattern: str) -> str:
    """`--ignore=<pattern>`, CSV-quoted when needed.

    Mutagen reads `--ignore` as a string slice: the value is parsed as one CSV record, so a
    bare `,` splits `*.{key,crt}` into two broken patterns and a bare `"` is an error.
    Quoting the field keeps the pattern whole.
    """
    check_ignore(pattern)
    if any(ch in pattern for ch in ',"'):
        pattern = '"' + pattern.replace('"', '""') + '"'
    return "--ignore=" + pattern


def _check_container_path(path: str) -> str:
    pure = PurePosixPath(path)
    if (
        not path.startswith("/")
        or str(pure) != path
        or ".." in pure.parts
        or any(ch.isspace() or ord(ch) < 32 for ch in path)
    ):
        raise ValueError(f"container path {path!r} must be absolute and normalised, without spaces")
    if path == "/" or any(path == p or path.startswith(p + "/") for p in _FORBIDDEN_TARGETS):
        raise ValueError(f"refusing to sync into {path!r}")
    return path


def beta_url(container: str, path: str, user: str | None = None) -> str:
    """`docker://[user@]<container><path>`."""
    if not _CONTAINER.fullmatch(container):
        raise ValueError(f"invalid container name or id {container!r}")
    if user is not None and not _USER.fullmatch(user):
        raise ValueError(f"invalid container user {user!r}")
    prefix = f"{user}@" if user else ""
    return f"docker://{prefix}{container}{_check_container_path(path)}"


def create_args(
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
) -> list[str]:
    """The arguments of `mutagen sync create` (without the executable); pure."""
    if not _SESSION_NAME.fullmatch(name) or name == "defaults":
        raise ValueError(f"invalid sync session name {name!r}: use letters, digits and -")
    if not os.path.isabs(alpha) or os.path.normpath(alpha) == "/":
        raise ValueError(f"host path {alpha!r} must be absolute and not /")
    args = ["sync", "create", f"--name={name}"]
    for key in sorted(labels):
        _check_label(key, labels[key])
        args.append(f"--label={key}={labels[key]}")
    args += [
        f"--mode={MODE_ONE_WAY if one_way else MODE_TWO_WAY}",
        "--no-global-configuration",
        "--ignore-syntax=mutagen",
        "--no-ignore-vcs",
        "--symlink-mode=portable",
        "--permissions-mode=portable",
        f"--default-file-mode-alpha={HOST_FILE_MODE}",
        f"--default-directory-mode-alpha={HOST_DIRECTORY_MODE}",
        f"--default-file-mode-beta={CONTAINER_FILE_MODE}",
        f"--default-directory-mode-beta={CONTAINER_DIRECTORY_MODE}",
    ]
    if watch_polling_interval is not None:
        if watch_polling_interval < 1:
            raise ValueError("the watch polling interval is a whole number of seconds >= 1")
        args.append(f"--watch-polling-interval={watch_polling_interval}")
    args += [ignore_arg(pattern) for pattern in ignores]
    args += [alpha, beta_url(beta_container, beta_path, beta_user)]
    return args


# --- sessions: parsed from `sync list --template '{{json .}}'` ----------------------------


@dataclass(frozen=True)
class Problem:
    """A path Mutagen could not scan or write on one endpoint."""

    endpoint: str  # "alpha" (host) or "beta" (container)
    kind: str  # "scan" or "transition"
    path: str  # relative to the synced root; "" = the root itself
    error: str


@dataclass(frozen=True)
class Session:
    """What `mutagen sync list` says about one session."""

    name: str
    identifier: str
    status: str  # "watching", "scanning", "disconnected", "halted-on-root-emptied", ...
    paused: bool
    alpha_connected: bool
    beta_connected: bool
    last_error: str
    successful_cycles: int
    conflicts: tuple[Conflict, ...]
    excluded_conflicts: int  # conflicts beyond the 10 Mutagen lists
    problems: tuple[Problem, ...]
    labels: Mapping[str, str] = field(default_factory=dict)
    mode: str = ""
    ignore_paths: tuple[str, ...] = ()
    alpha_path: str = ""
    beta_host: str = ""
    beta_path: str = ""

    @property
    def mount_index(self) -> int:
        """From the `alca-mount` label; -1 if missing (then it maps to no mount)."""
        return _mount_index(self.labels)

    @property
    def connected(self) -> bool:
        return self.alpha_connected and self.beta_connected

    @property
    def halted(self) -> bool:
        """Mutagen stopped to protect data (e.g. the container's copy was emptied)."""
        return self.status.startswith("halted")

    @property
    def conflict_count(self) -> int:
        return len(self.conflicts) + self.excluded_conflicts

    @property
    def root_problems(self) -> tuple[Problem, ...]:
        """Problems with the synced root itself: nothing syncs (e.g. a missing parent)."""
        return tuple(p for p in self.problems if p.path == "")


def _mount_index(labels: Mapping[str, str]) -> int:
    value = labels.get(LABEL_MOUNT, "")
    return int(value) if value.isascii() and value.isdigit() else -1


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _dict(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _problems(endpoint: str, data: Mapping[str, Any]) -> list[Problem]:
    found = []
    for kind in ("scan", "transition"):
        raw = data.get(f"{kind}Problems")
        for item in raw if isinstance(raw, list) else []:
            item = _dict(item)
            found.append(Problem(endpoint, kind, _str(item.get("path")), _str(item.get("error"))))
    return found


def parse_session(data: Mapping[str, Any]) -> Session:
    """One session object; tolerant of missing fields (Mutagen omits zero values)."""
    alpha, beta = _dict(data.get("alpha")), _dict(data.get("beta"))
    labels = {str(k): str(v) for k, v in _dict(data.get("labels")).items()}
    paths = _dict(data.get("ignore")).get("paths")
    return Session(
        name=_str(data.get("name")),
        identifier=_str(data.get("identifier")),
        status=_str(data.get("status")),
        paused=data.get("paused") is True,
        alpha_connected=alpha.get("connected") is True,
        beta_connected=beta.get("connected") is True,
        last_error=_str(data.get("lastError")),
        successful_cycles=_int(data.get("successfulCycles")),
        conflicts=tuple(parse_conflicts(data, mount_index=_mount_index(labels))),
        excluded_conflicts=_int(data.get("excludedConflicts")),
        problems=tuple(_problems("alpha", alpha) + _problems("beta", beta)),
        labels=labels,
        mode=_str(data.get("mode")),
        ignore_paths=tuple(p for p in paths if isinstance(p, str))
        if isinstance(paths, list)
        else (),
        alpha_path=_str(alpha.get("path")),
        beta_host=_str(beta.get("host")),
        beta_path=_str(beta.get("path")),
    )


def parse_sessions(text: str) -> list[Session]:
    """The output of `mutagen sync list --template '{{json .}}'` (a JSON array)."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise SyncError(f"mutagen printed a session list that is not JSON: {exc}") from None
    if data is None:
        return []
    if not isinstance(data, list):
        raise SyncError("mutagen printed a session list that is not a JSON array")
    return [parse_session(item) for item in data if isinstance(item, Mapping)]


def error_text(result: Result) -> str:
    """Mutagen's own error line, without the `\\r` progress lines around it."""
    text = (result.stderr or result.stdout).replace("\r", "\n")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line.removeprefix("Error: ") for line in lines if line.startswith("Error: ")]
    if errors:
        return errors[-1]
    return lines[-1] if lines else "(no output)"


# --- the wrapper ---------------------------------------------------------------------------


class Mutagen:
    """Mutagen with a daemon private to alcatraz; see the module docstring."""

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
        if not data_dir.is_absolute():
            raise ValueError(f"the sync data directory must be absolute, not {str(data_dir)!r}")
        size = len(os.fsencode(str(data_dir)))
        if size > MAX_DATA_DIR_BYTES:
            raise SyncError(
                f"the sync data directory {quote(str(data_dir))} is {size} bytes long; "
                f"at most {MAX_DATA_DIR_BYTES} fit (its daemon socket path must stay within "
                f"{SOCKET_PATH_MAX} bytes)",
                hint="use a shorter ALCA_HOME or HOME",
            )
        self.runner = runner
        self.data_dir = data_dir
        self.engine = engine
        self.executable = executable
        self.engine_executable = engine_executable or engine
        self._clock = clock
        self._sleep = sleep
        self._prepared = False
        source = os.environ if environ is None else environ
        env = {k: v for k, v in source.items() if not k.startswith("MUTAGEN_")}
        if engine == "podman":
            for key in _DOCKER_VARS:
                env.pop(key, None)
        env["MUTAGEN_DATA_DIRECTORY"] = str(data_dir)
        env["MUTAGEN_DOCKER_PATH"] = str(self.docker_dir)
        self.env: Mapping[str, str] = env

    @property
    def docker_dir(self) -> Path:
        return self.data_dir / "bin"

    @property
    def socket_path(self) -> Path:
        return self.data_dir / "daemon" / "daemon.sock"

    # -- running mutagen --

    def _prepare(self) -> None:
        """Create the data dir and the `docker` symlink the daemon will use (once)."""
        if self._prepared:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        marker = self.data_dir / "engine"
        try:
            recorded = marker.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            recorded = ""
        if recorded and recorded != self.engine:
            raise SyncError(
                f"the sync data directory {quote(str(self.data_dir))} belongs to {recorded}, "
                f"not {self.engine}",
                hint="use one sync data directory per container engine",
            )
        target = shutil.which(self.engine_executable, path=self.env.get("PATH", os.defpath))
        if target is None:
            raise UnavailableError(
                f"{self.engine_executable} is not installed (not found on PATH)",
                hint=f"install {self.engine}, or fix PATH",
            )
        target = os.path.abspath(target)
        self.docker_dir.mkdir(mode=0o700, exist_ok=True)
        link = self.docker_dir / "docker"
        try:
            current = os.readlink(link)
        except OSError:
            current = None
        if current != target:
            staged = self.docker_dir / f".docker.{os.getpid()}"
            staged.unlink(missing_ok=True)
            staged.symlink_to(target)
            staged.replace(link)
        if not recorded:
            marker.write_text(self.engine + "\n", encoding="utf-8")
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
        found = result.stdout.strip()
        if not result.ok or not found:
            raise UnavailableError(
                f"`{self.executable} version` failed: {error_text(result)}", hint=INSTALL_HINT
            )
        if found != MUTAGEN_VERSION:
            raise UnavailableError(
                f"mutagen {MUTAGEN_VERSION} is required, found {found}", hint=INSTALL_HINT
            )
        where = shutil.which(self.executable, path=self.env.get("PATH", os.defpath))
        if where is not None:
            real = Path(os.path.realpath(where))
            candidates = [real.parent / AGENT_BUNDLE]
            if real.parent.name == "bin":
                candidates.append(real.parent.parent / "libexec" / AGENT_BUNDLE)
            if not any(path.is_file() for path in candidates):
                raise UnavailableError(
                    f"mutagen's agent bundle {AGENT_BUNDLE} is missing (looked for "
                    + ", ".join(str(p) for p in candidates)
                    + "); without it nothing can be synced into a container",
                    hint=INSTALL_HINT,
                )
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
        _check_root(session)
        return session

    def flush_all(
        self, label_selector: str, *, timeout: float = FLUSH_TIMEOUT
    ) -> builtins.list[Session]:
        """`flush` for every session matching `label_selector` (none is fine)."""
        self._flush([f"--label-selector={label_selector}"], timeout, "sync sessions")
        sessions = self.list(label_selector)
        for session in sessions:
            _check_root(session)
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
        path = self.socket_path
        if not path.exists():
            return False
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(2.0)
            try:
                sock.connect(os.fsencode(str(path)))
            except OSError:
                return False
        return True

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


_HALTED: Final = {
    "halted-on-root-emptied": "one side's copy was emptied (a recreated container?), and Mutagen "
    "stopped rather than delete the other side's files",
    "halted-on-root-deletion": "the synced directory was deleted on one side, and Mutagen "
    "stopped rather than delete it on the other",
    "halted-on-root-type-change": "the synced path changed between file and directory on one "
    "side, and Mutagen stopped",
}


def explain(session: Session) -> str:
    """Why a session is not syncing, in words."""
    if session.paused:
        return "it is paused"
    if session.status in _HALTED:
        return _HALTED[session.status]
    if session.last_error:
        return f"{session.status or 'not syncing'} ({session.last_error})"
    return (session.status or "unknown state") + _unsynced(session)


def _unsynced(session: Session) -> str:
    """The paths Mutagen skipped (a name it cannot carry, a file it cannot read), or ""."""
    skipped = [p for p in session.problems if p.path]
    if not skipped:
        return ""
    first = skipped[0]
    side = "host" if first.endpoint == "alpha" else "container"
    more = f" and {len(skipped) - 1} more" if len(skipped) > 1 else ""
    return f"; not synced: {printable(first.path)} in the {side} ({first.error}){more}"


def _check_root(session: Session) -> None:
    problems = session.root_problems
    if problems:
        where = "host" if problems[0].endpoint == "alpha" else "container"
        raise SyncError(
            f"sync session {session.name} cannot write its {where} directory: {problems[0].error}",
            hint="check that the directory's parent exists and is writable",
        )
