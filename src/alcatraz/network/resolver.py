"""Start, find and stop a project's resolver (`alcatraz.network.dnsproxy`).

One forwarder process per isolated project, listening on the project's gateway. `up` starts
it before the container runs; `alca run` starts it again when it is gone (after a reboot);
`down` stops it after the container is removed. A process is only ever signalled after its
command line shows it is this project's resolver (a pid file alone may be stale).

Standard library only, and cheap to import: `alca run` uses `running()` and `spawn()`.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from alcatraz.errors import AlcaError
from alcatraz.statefile import ResolverEntry

if TYPE_CHECKING:
    from pathlib import Path

    from alcatraz.config.load import Config

MODULE = "alcatraz.network.dnsproxy"
PIDFILE = "resolver.pid"
LOGFILE = "resolver.log"
READY_TIMEOUT = 10.0
#: Where the resolver reads the host's resolvers (tests point it at a lab resolv.conf).
RESOLV_CONF_ENV = "ALCA_HOST_RESOLV_CONF"


def expected(config: Config) -> bool:
    """Whether an isolated sandbox here gets the project's resolver (root on Linux).

    The isolation rules block the host's resolvers when they sit on a private, loopback or
    link-local address (the usual case), so the sandbox asks the project's resolver on its
    gateway, which asks them from the host's namespace. It binds port 53: root only.
    """
    return not config.allow_all_lan and sys.platform == "linux" and os.geteuid() == 0


def start(
    listen: str, state_dir: Path, environ: Mapping[str, str], policy: str = ""
) -> ResolverEntry:
    """Start (or find) the project's resolver on `listen`; the record `run` restarts from.

    `policy`: the daemon's policy file (egress, host-LAN sets); a resolver already running
    with an older policy is restarted."""
    entry = record(listen, str(state_dir), resolv_conf_path(environ))._replace(policy=policy)
    problem = ensure(entry)
    if problem is not None:
        raise AlcaError(
            f"cannot start the sandbox's resolver on {listen} port 53: {problem}",
            hint=f"see {entry.log}; another program may listen on that address's port 53",
        )
    return entry


def record(listen: str, state_dir: str, resolv_conf: str) -> ResolverEntry:
    """What the isolation record keeps about the resolver (`alca run` restarts from it)."""
    return ResolverEntry(
        listen=listen,
        pidfile=os.path.join(state_dir, PIDFILE),
        log=os.path.join(state_dir, LOGFILE),
        resolv_conf=resolv_conf,
    )


def resolv_conf_path(environ: Mapping[str, str]) -> str:
    return environ.get(RESOLV_CONF_ENV) or "/etc/resolv.conf"


def argv(entry: ResolverEntry) -> list[str]:
    policy = ["--policy", entry.policy] if entry.policy else []
    return [
        sys.executable,
        "-m",
        MODULE,
        "--listen",
        entry.listen,
        "--pidfile",
        entry.pidfile,
        "--resolv-conf",
        entry.resolv_conf or "/etc/resolv.conf",
        *policy,
    ]


def running(entry: ResolverEntry, *, exact: bool = True) -> int | None:
    """The pid of the project's resolver when it runs, else None.

    `exact`: it also runs with the entry's policy file (not an older daemon without one)."""
    try:
        with open(entry.pidfile, encoding="ascii") as handle:
            pid = int(handle.read().strip() or "0")
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            words = handle.read().split(b"\0")
    except (OSError, ValueError):
        return None
    wanted = [MODULE.encode(), entry.listen.encode(), entry.pidfile.encode()]
    if exact and entry.policy:
        wanted.append(entry.policy.encode())
    if pid <= 0 or not all(word in words for word in wanted):
        return None
    try:  # a process in a container (another pid namespace) is never ours
        if os.readlink(f"/proc/{pid}/ns/pid") != os.readlink("/proc/self/ns/pid"):
            return None
    except OSError:
        return None
    return pid


def spawn(entry: ResolverEntry) -> str | None:
    """Start the resolver detached; None when it is ready, else why it is not."""
    read_end, write_end = os.pipe()
    log = os.open(entry.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    devnull = os.open(os.devnull, os.O_RDONLY)
    actions = [
        (os.POSIX_SPAWN_DUP2, devnull, 0),
        (os.POSIX_SPAWN_DUP2, write_end, 1),
        (os.POSIX_SPAWN_DUP2, log, 2),
        (os.POSIX_SPAWN_CLOSE, read_end),
    ]
    try:
        pid = os.posix_spawn(
            sys.executable, argv(entry), dict(os.environ), file_actions=actions, setsid=True
        )
    except OSError as error:
        return f"cannot start {sys.executable}: {error.strerror}"
    finally:
        for fd in (write_end, log, devnull):
            os.close(fd)
    answer = _read_line(read_end, READY_TIMEOUT)
    os.close(read_end)
    if answer == "ready":
        _reap_later(pid)
        return None
    _reap_later(pid)
    return answer.removeprefix("error: ") or "it exited without saying why (see " + entry.log + ")"


def _read_line(fd: int, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    data = b""
    while b"\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return "it did not become ready in time"
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace").split("\n", 1)[0].strip()


def _reap_later(pid: int) -> None:
    """Collect the child if it already exited; a running one outlives us (setsid)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def ensure(entry: ResolverEntry) -> str | None:
    """Running, or started now; None when fine, else why it could not start."""
    if running(entry) is not None:
        return None
    return spawn(entry)


def describe(entry: ResolverEntry | None) -> dict[str, Any]:
    """The resolver as `status` and `doctor` show it: state, address, the host's resolvers."""
    if entry is None or not entry.listen:
        return {"state": "engine"}  # the engine's own resolver serves the sandbox
    from alcatraz.network.resolvconf import parse_resolv_conf

    path = entry.resolv_conf or "/etc/resolv.conf"
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            upstreams = parse_resolv_conf(handle.read(65536))
    except OSError:
        upstreams = []
    policy = _policy_summary(entry.policy)
    return {
        "state": "running" if running(entry) is not None else "stopped",
        "listen": entry.listen,
        "upstreams": policy.get("upstreams") or upstreams,
        "resolv_conf": path,
        "egress": policy.get("egress"),
    }


def _policy_summary(path: str) -> dict[str, Any]:
    """The upstreams and egress entries of the daemon's policy file (written by `up`)."""
    if not path:
        return {}
    import json

    try:
        with open(path, encoding="utf-8") as handle:
            data = json.loads(handle.read(1 << 20))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    egress = data.get("egress")
    upstreams = data.get("upstreams")
    return {
        "egress": [str(e) for e in egress] if isinstance(egress, list) else None,
        "upstreams": [str(u) for u in upstreams] if isinstance(upstreams, list) else [],
    }


def stop(entry: ResolverEntry, *, timeout: float = 3.0) -> bool:
    """End the project's resolver (only after its command line proves it, with or without a
    policy file); True if it ran."""
    pid = running(entry, exact=False)
    if pid is None:
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if running(entry, exact=False) != pid:
            return True
        time.sleep(0.05)
    if running(entry, exact=False) == pid:
        os.kill(pid, signal.SIGKILL)
    return True
