"""`alca run`, stdlib only: find the project, read the cached run-spec, exec the engine.

`up` stores everything this needs (engine, container, workdir, enter command, env
templates) in the per-user state, so no TOML, msgspec or argparse is imported here. It ends
in `os.execvp`, so the TTY, signals and the exit status belong to the command.
"""

from __future__ import annotations

import os
import posixpath
import sys
from typing import TYPE_CHECKING

from alcatraz.errors import (
    AlcaError,
    ExitCode,
    NotInitializedError,
    RefusedError,
    UnavailableError,
    UsageError,
)
from alcatraz.network import resolver
from alcatraz.paths import alca_home_str, find_root
from alcatraz.printable import printable, printable_lines
from alcatraz.state import (
    ProjectStore,
    inside_layer_current,
    read_json,
    root_identity,
    stamps_current,
)

if TYPE_CHECKING:
    from typing import NoReturn

    from alcatraz.statefile import IsolationRecord, RunSpec


def single_quote(arg: str) -> str:
    """POSIX single quoting, always (as upstream), so `sh -c` sees the argument verbatim."""
    return "'" + arg.replace("'", "'\\''") + "'"


def container_workdir(workdir: str, project_root: str, cwd: str) -> str:
    """The container path matching the host subdirectory `alca run` was started from."""
    root = os.path.join(str(project_root), "")
    here = str(cwd)
    if not here.startswith(root):
        return workdir
    return posixpath.join(workdir, *here[len(root) :].split(os.sep))


def exec_parts(spec: RunSpec, args: list[str], cwd: str) -> tuple[list[str], list[str], str]:
    """The command, its `NAME=value` environment and its working directory: one source for
    the CLI's argv and the API's exec config, so both paths run exactly the same thing."""
    enter = spec.enter
    if enter:
        command = ["sh", "-c", " ".join([enter, *(single_quote(a) for a in args)])]
    else:
        command = list(args)
    env: list[str] = []
    for name, template in spec.override_envs.items():
        value = template
        if value.startswith("${") and value.endswith("}"):
            value = os.environ.get(value[2:-1], "")
        if value:
            env.append(f"{name}={value}")
    return command, env, container_workdir(spec.workdir, spec.project_root, cwd)


def build_argv(spec: RunSpec, args: list[str], cwd: str, tty: bool) -> list[str]:
    command, env, workdir = exec_parts(spec, args, cwd)
    argv = [spec.executable, "exec", "-i"]
    if tty:
        argv.append("-t")
    for assignment in env:
        argv += ["-e", assignment]
    argv += ["-w", workdir, spec.container]
    return argv + command


def _output(argv: list[str]) -> tuple[int, str]:
    """Run a small program and capture stdout, without importing `subprocess` (~16 ms)."""
    read_end, write_end = os.pipe()
    devnull = os.open(os.devnull, os.O_WRONLY)
    actions = [
        (os.POSIX_SPAWN_DUP2, write_end, 1),
        (os.POSIX_SPAWN_DUP2, devnull, 2),
        (os.POSIX_SPAWN_CLOSE, read_end),
    ]
    try:
        pid = os.posix_spawnp(argv[0], argv, os.environ, file_actions=actions)
    except FileNotFoundError:
        return 127, ""
    finally:
        os.close(write_end)
        os.close(devnull)
    chunks = []
    while chunk := os.read(read_end, 65536):
        chunks.append(chunk)
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), b"".join(chunks).decode(errors="replace")


def rules_loaded(isolation: IsolationRecord) -> bool:
    """Whether the kernel holds the sandbox's forward chain as `up` loaded it.

    One chain: asked over netlink when alcatraz is root with native nftables (well under a
    millisecond however many projects are loaded), else with one `nft list chain` (3 ms with
    one project, ~35 ms with 200: nft reads the whole table first). A missing, flushed or
    rewritten chain fails the check. (A missing dispatch entry needs no check: the base
    chain's backstop then drops the bridge's traffic, which fails closed.)
    """
    key, digest, command = isolation.key, isolation.digest, isolation.nft
    if command is None or not key or not digest:
        return False
    chain, tag = f"p_{key}_fwd", f"alcatraz {key} {digest}"
    if tuple(command) == ("nft",) and os.geteuid() == 0:
        from alcatraz.network.nlcheck import chain_has_comment

        found = chain_has_comment("alcatraz", chain, tag)
        if found is not None:
            return found
    code, out = _output([*command, "list", "chain", "inet", "alcatraz", chain])
    return code == 0 and f'comment "{tag}"' in out


def ensure_resolver(isolation: IsolationRecord) -> None:
    """Bring the project's resolver back when it is gone (a reboot, a kill); warn if it can't.

    Without it the sandbox resolves no name but nothing else changes, so `run` goes on.
    """
    entry = isolation.resolver
    if entry is None:
        return
    if isolation.egress:
        if resolver.running(entry) is None:
            raise RefusedError(
                "the sandbox's egress daemon (its resolver and name checker) is not running, "
                "so nothing it sends can pass: the command was not started",
                hint="run 'alca up' to start it again",
            )
        return
    problem = resolver.ensure(entry)
    if problem is not None:
        sys.stderr.write(
            f"Warning: names will not resolve in the sandbox: its resolver did not start "
            f"({printable_lines(problem)}); run 'alca up' as root\n"
        )


def api_socket(spec: RunSpec) -> str:
    """The engine API socket `alca run` execs through, or "" for the engine's CLI.

    `ALCA_ENGINE_API`: unset or `auto` = the socket `up` recorded (it answered then); `0`,
    `off` or `cli` = always the CLI (the escape hatch, and the tests' forced fallback).
    """
    choice = os.environ.get("ALCA_ENGINE_API", "")
    if choice in ("", "auto"):
        return spec.api_socket
    if choice in ("0", "off", "cli"):
        return ""
    raise UsageError(
        f"ALCA_ENGINE_API={printable(choice)} is not a known value",
        hint="unset it or use 'auto' (the engine's API socket when 'alca up' found it "
        "answering), or 'cli' (also '0', 'off') to always use the engine's command",
    )


def _debug() -> bool:
    return os.environ.get("ALCA_DEBUG", "") not in ("", "0")


def _leave(code: int) -> NoReturn:
    """End as `exec` would have: no interpreter shutdown (its garbage collection costs 2-15
    ms), the command's status (mod 256, as the kernel keeps it)."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:
        pass
    os._exit(code & 0xFF)


def exec_api(
    spec: RunSpec, socket_path: str, parts: tuple[list[str], list[str], str], tty: bool
) -> None:
    """Run the command through the engine's API and leave with its exit status.

    Returns only when nothing ran and the CLI may get through (no engine on the socket, an
    exec create refused for a reason other than a missing or stopped container). Once the
    command may have started it is never retried. Ends like the CLI: Ctrl-C (not a TTY: the
    command goes on in the sandbox, as with `docker exec`) 130; a closed stdout, SIGPIPE.
    """
    from alcatraz.runtime import engine_exec
    from alcatraz.runtime.engine_api import ApiError

    def announce() -> None:
        if _debug():
            sys.stderr.write(
                f"→ Engine API: exec in {printable(spec.container)} via {printable(socket_path)}\n"
            )

    command, env, workdir = parts
    try:
        code = engine_exec.run_exec(
            socket_path,
            spec.container,
            command,
            env=env,
            workdir=workdir,
            tty=tty,
            announce=announce,
        )
    except engine_exec.NotStarted as error:
        cause = error.cause
        if isinstance(cause, ApiError) and cause.status in (404, 409):
            raise AlcaError(
                f"the sandbox's container is not running ({printable_lines(cause.message)})",
                hint="run 'alca up' to start it again",
            ) from None
        return
    except engine_exec.ExecLost as error:
        raise AlcaError(f"the command was started, but {printable_lines(str(error))}") from None
    except KeyboardInterrupt:
        _leave(ExitCode.INTERRUPTED)
    except BrokenPipeError:
        import signal

        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGPIPE)
        _leave(128 + signal.SIGPIPE)
    _leave(code)


def exec_replace(argv: list[str]) -> NoReturn:
    """Become the engine's `exec` (like `alcatraz.proc.exec_replace`, minus its imports)."""
    if os.environ.get("ALCA_DEBUG", "") not in ("", "0"):
        import shlex

        sys.stderr.write("→ Executing: " + printable_lines(shlex.join(argv)) + "\n")
        sys.stderr.flush()
    try:
        os.execvp(argv[0], argv)  # noqa: S606 - argv list, no shell
    except FileNotFoundError:
        raise UnavailableError(f"{argv[0]} is not installed (not found on PATH)") from None


def _conflict_banner(store: ProjectStore) -> None:
    """Warn (stderr) about sync conflicts known from the last poll; never blocks the command."""
    try:
        cache = read_json(store.conflicts_path)
    except (OSError, ValueError):
        return
    if not cache:
        return
    conflicts = cache.get("conflicts") or []
    total = len(conflicts) + int(cache.get("unlisted") or 0)
    if total == 0:
        return
    noun = "conflict needs" if total == 1 else "conflicts need"
    lines = [f"⚠ {total} sync {noun} attention:"]
    for conflict in conflicts[:3]:
        lines.append(f"  {printable(str(conflict.get('path', '')))}")
    if total > 3:
        lines.append(f"  ...and {total - 3} more")
    lines.append("Run 'alca experimental sync resolve' to resolve.")
    sys.stderr.write("\n".join(lines) + "\n")


def run(args: list[str]) -> int:
    if not args:
        raise UsageError("alca run: missing command", hint="e.g. alca run make test")
    cwd = os.getcwd()
    root = find_root(cwd)
    if root is None:
        raise NotInitializedError(
            "configuration not found: run 'alca init' first",
            hint=f"no .alca.toml in {cwd} or any parent directory",
        )
    spec = checked_spec(root)
    tty = os.isatty(0)
    socket_path = api_socket(spec)
    if socket_path:
        command, env, workdir = exec_parts(spec, args, cwd)
        exec_api(spec, socket_path, (command, env, workdir), tty)
    exec_replace(build_argv(spec, args, cwd, tty))


def checked_argv(root: str, args: list[str], cwd: str) -> list[str]:
    """The engine's `exec` argv for `args` in the sandbox of `root`, after every check
    `alca run` makes (for `run -b`, which must wait for the command: no API exec here)."""
    return build_argv(checked_spec(root), args, cwd, os.isatty(0))


def checked_spec(root: str) -> RunSpec:
    """The run-spec of the sandbox of `root`, after every check `alca run` makes (rules
    loaded, second layer current, same directory); refuses otherwise."""
    store = ProjectStore.of(alca_home_str(), root)
    data = store.load()  # StateFileError (exit 1, file and key named) when it is unreadable
    spec = data.run_spec
    if spec is None or not data.snapshot:
        raise AlcaError("no sandbox for this project: run 'alca up' first")
    if data.root_identity != tuple(root_identity(root)):
        raise RefusedError(
            f"the directory {root} is not the one its sandbox was created for",
            hint="run 'alca down', then 'alca up' to recreate the sandbox here",
        )
    isolation = spec.isolation
    guarded = isolation is not None and (isolation.enforced or isolation.proxied)
    if isolation is not None and guarded and not rules_loaded(isolation):
        what = "network isolation rules" if isolation.enforced else "transparent proxy rules"
        raise RefusedError(
            f"the sandbox's {what} are not loaded: the command was not started",
            hint="run 'alca up' to restore them (they may have been flushed, or the machine "
            "rebooted without the network helper installed)",
        )
    if isolation is not None and not inside_layer_current(isolation):
        raise RefusedError(
            "the sandbox restarted without alcatraz (or is stopped): its network rules inside "
            "the sandbox are not loaded and its sources were not checked; the command was not "
            "started",
            hint="run 'alca up' to check the workspace and restore them",
        )
    if isolation is not None:
        ensure_resolver(isolation)
    _conflict_banner(store)
    if not stamps_current(spec.stamps):
        sys.stderr.write(
            "Note: the configuration changed since the last 'alca up'; run 'alca up' to apply it.\n"
        )
    return spec
