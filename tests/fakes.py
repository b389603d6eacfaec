"""The test doubles every unit test shares: a runner, an App, an engine and a clock.

One copy of each, shaped like the real interface it stands in for (`alcatraz.proc.Runner`,
`alcatraz.app.App`, `alcatraz.runtime.base.Runtime`), so a change to that interface breaks
one place and mypy points at it. None of them runs a program or touches the host.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from alcatraz.app import App
from alcatraz.proc import CommandFailed, Result, SubprocessRunner
from alcatraz.runtime.base import ContainerInfo, ContainerSpec, ContainerState, NetworkInfo

if TYPE_CHECKING:
    from alcatraz.proc import Runner
    from alcatraz.runtime.base import Runtime

#: What a scripted command does: finish with a result, or raise (a missing program, a timeout).
Answer = Result | BaseException
#: Answers any command not scripted with `on` or `raises`.
Handler = Callable[[tuple[str, ...]], Answer]


# --- runner ------------------------------------------------------------------------------------


class FakeRunner:
    """A `Runner` that runs nothing: it records every command and answers from a script.

    Scripted prefixes (`on`, `raises`) are tried first, in order, and the first whose words
    begin the argv answers; then `handler`; a command neither expects fails the test.
    `check=True` raises `CommandFailed` on a non-zero answer, as the real runner does.
    """

    def __init__(self, handler: Handler | None = None, *, streams: bool = True) -> None:
        """`streams=False`: the code under test must never stream (`stream` fails the test)."""
        self.handler = handler
        self.streams = streams
        self.script: list[tuple[tuple[str, ...], Answer]] = []
        self.calls: list[tuple[str, ...]] = []  # each `run`, in order
        self.envs: list[Mapping[str, str] | None] = []  # the env of each `run`
        self.inputs: list[str | None] = []  # the stdin text of each `run`
        self.streamed: list[tuple[str, ...]] = []  # each `stream`, in order

    def on(self, *prefix: str, rc: int = 0, out: str = "", err: str = "") -> FakeRunner:
        """Answer commands starting with `prefix` with this exit code and output."""
        self.script.append((prefix, Result(prefix, rc, out, err)))
        return self

    def raises(self, *prefix: str, exc: BaseException) -> FakeRunner:
        """Raise `exc` for commands starting with `prefix`."""
        self.script.append((prefix, exc))
        return self

    def answer(self, argv: tuple[str, ...]) -> Result:
        """The scripted outcome of `argv`, raised if it is an exception."""
        answer: Answer | None = None
        for prefix, scripted in self.script:
            if argv[: len(prefix)] == prefix:
                answer = scripted
                break
        if answer is None and self.handler is not None:
            answer = self.handler(argv)
        if answer is None:
            raise AssertionError(f"unexpected command: {argv}")
        if isinstance(answer, BaseException):
            raise answer
        return Result(argv, answer.returncode, answer.stdout, answer.stderr)

    def run(
        self,
        argv: Sequence[str],
        *,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        timeout: float | None = None,
        check: bool = False,
    ) -> Result:
        args = tuple(argv)
        self.calls.append(args)
        self.envs.append(env)
        self.inputs.append(input)
        result = self.answer(args)
        if check and not result.ok:
            raise CommandFailed(result)
        return result

    def stream(
        self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: str | None = None
    ) -> int:
        args = tuple(argv)
        if not self.streams:
            raise AssertionError(f"{args[0]} is never streamed: {args}")
        self.streamed.append(args)
        return self.answer(args).returncode

    def verbs(self) -> list[tuple[str, ...]]:
        """Each call's words up to the first flag or name, e.g. ("sync", "flush")."""
        return [tuple(a for a in call[1:3] if not a.startswith("-")) for call in self.calls]


# --- app ---------------------------------------------------------------------------------------


class FakeTTY(io.StringIO):
    """A stdin (or stdout) that claims to be a terminal, with scripted answers."""

    def isatty(self) -> bool:
        return True


def make_app(
    cwd: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    runner: Runner | None = None,
    quiet: bool = False,
) -> App:
    """An App that reads and writes memory: empty stdin, `StringIO` stdout and stderr.

    `environ` is copied (empty by default), so nothing of the test's process leaks in and
    the command cannot change the caller's mapping. The runner is the real one unless given.
    """
    return App(
        stdin=stdin if stdin is not None else io.StringIO(),
        stdout=stdout if stdout is not None else io.StringIO(),
        stderr=stderr if stderr is not None else io.StringIO(),
        environ=dict(environ or {}),
        cwd=cwd if cwd is not None else Path.cwd(),
        runner=runner if runner is not None else SubprocessRunner(),
        quiet=quiet,
    )


def project_app(
    tmp_path: Path,
    stdin: TextIO | None = None,
    /,
    *,
    name: str = "project",
    path: str | None = None,
    **environ: str,
) -> App:
    """An App working in a fresh project `tmp_path/name`, with HOME and ALCA_HOME of its own.

    HOME is `tmp_path/home` (not created); PATH is the test process's unless `path` is
    given; `environ` adds or overrides variables.
    """
    project = tmp_path / name
    project.mkdir(exist_ok=True)
    home = tmp_path / "home"
    variables = {
        "HOME": str(home),
        "ALCA_HOME": str(home / ".alcatraz"),
        "PATH": path if path is not None else os.environ.get("PATH", "/usr/bin:/bin"),
        **environ,
    }
    return make_app(project, environ=variables, stdin=stdin)


# --- engine ------------------------------------------------------------------------------------


class FakeEngine:
    """A `Runtime` that keeps its containers and networks in memory.

    Seed it with the containers another party made (`FakeEngine(info)`); `create` adds one
    from its spec. Lookups answer by name or id, labels filter as the engines' `--filter
    label=` does, and `removed` lists what the code under test removed, in order.
    """

    def __init__(
        self,
        *containers: ContainerInfo,
        name: str = "Docker",
        executable: str = "docker",
        rootless: bool = False,
    ) -> None:
        self.name = name
        self.executable = executable
        self.rootless = rootless
        self.containers: list[ContainerInfo] = list(containers)
        self.network_list: list[NetworkInfo] = []
        self.removed: list[str] = []  # containers, by the name they were asked for
        self.execs: list[tuple[str, tuple[str, ...]]] = []  # (container, command)
        self.images: set[str] = set()

    def _find(self, name: str) -> ContainerInfo | None:
        return next((c for c in self.containers if name in (c.name, c.id)), None)

    def _set_state(self, name: str, state: ContainerState) -> None:
        info = self._find(name)
        if info is None:
            raise CommandFailed(Result((self.executable, name), 1, "", f"no such container {name}"))
        self.containers[self.containers.index(info)] = replace(info, state=state)

    def available(self) -> bool:
        return True

    def version(self) -> str:
        return "0.0-fake"

    def is_rootless(self) -> bool:
        return self.rootless

    def run_argv(self, spec: ContainerSpec) -> list[str]:
        return ["run", "--name", spec.name, spec.image, *spec.keepalive]

    def create(self, spec: ContainerSpec) -> str:
        container_id = f"fake{len(self.containers)}"
        info = ContainerInfo(
            container_id, spec.name, ContainerState.RUNNING, spec.image, "", "", dict(spec.labels)
        )
        self.containers.append(info)
        return container_id

    def start(self, name: str) -> None:
        self._set_state(name, ContainerState.RUNNING)

    def stop(self, name: str, timeout: int = 10) -> None:
        self._set_state(name, ContainerState.STOPPED)

    def remove(self, name: str) -> None:
        self.removed.append(name)
        self.containers = [c for c in self.containers if name not in (c.name, c.id)]

    def inspect(self, name: str) -> ContainerInfo | None:
        return self._find(name)

    def list_by_label(self, label: str) -> list[ContainerInfo]:
        key, has_value, value = label.partition("=")
        return [
            c
            for c in self.containers
            if key in c.labels and (not has_value or c.labels[key] == value)
        ]

    def exec_argv(
        self,
        name: str,
        command: Sequence[str],
        *,
        workdir: str | None = None,
        env: Mapping[str, str] | None = None,
        tty: bool = False,
        interactive: bool = True,
    ) -> list[str]:
        return [self.executable, "exec", name, *command]

    def exec(
        self,
        name: str,
        command: Sequence[str],
        *,
        workdir: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> int:
        self.execs.append((name, tuple(command)))
        return 0

    def exec_capture(
        self,
        name: str,
        command: Sequence[str],
        *,
        workdir: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Result:
        self.execs.append((name, tuple(command)))
        return Result(tuple(self.exec_argv(name, command)), 0, "", "")

    def image_exists(self, image: str) -> bool:
        return image in self.images

    def network_create(
        self,
        name: str,
        *,
        subnet: str,
        gateway: str,
        interface: str,
        labels: Mapping[str, str],
        engine_dns: bool = True,
    ) -> NetworkInfo:
        network = NetworkInfo(name, interface, (subnet,), (gateway,), dict(labels), engine_dns)
        self.network_list.append(network)
        return network

    def network_inspect(self, name: str) -> NetworkInfo | None:
        return next((n for n in self.network_list if n.name == name), None)

    def network_remove(self, name: str) -> None:
        self.network_list = [n for n in self.network_list if n.name != name]

    def networks(self) -> list[NetworkInfo]:
        return list(self.network_list)


# --- clock -------------------------------------------------------------------------------------


class FakeClock:
    """A monotonic clock the test moves by hand; `sleep` moves it and records the wait."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


if TYPE_CHECKING:  # the fakes keep the real interfaces' shape (mypy checks these lines)
    _runner: Runner = FakeRunner()
    _engine: Runtime = FakeEngine()
