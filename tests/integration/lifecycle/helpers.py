"""Drive `alca` the way a user does: one subprocess per command, in a project under /tmp.

Every project gets a short directory of its own (`/tmp/ait-XXXX/<name>`, engines dislike
long paths) and every test its own alcatraz home, so nothing here reads or changes the real
`~/.alcatraz`. At the end `Projects.cleanup` runs `alca down` and then removes what is still
there, touching only this test's objects: containers by name (from the state file and from
the `alca.project.path` label, a path only this test uses), the project networks with that
label, the firewall rules of this test's project ids, and Mutagen daemons whose data
directory is under this test's directory.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alcatraz import state
from alcatraz.cli.parser import build_parser
from alcatraz.proc import Result, SubprocessRunner
from tests.fakes import make_app

IMAGE = "alpine:3.21"
OTHER_IMAGE = "alpine:3.20"  # a second local tag, for image drift (never pulled)
ENGINES = ("docker", "podman")
ENGINE_NAMES = {"docker": "Docker", "podman": "Podman"}

DEFAULT_CAP_EFF = 0xEB  # CHOWN DAC_OVERRIDE FOWNER KILL SETGID SETUID
NET_RAW_BIT = 1 << 13

ALCA = (sys.executable, "-m", "alcatraz")
COMMAND_TIMEOUT = 120.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def other_engine(engine: str) -> str:
    return "podman" if engine == "docker" else "docker"


def config_text(engine: str, *, top: str = "", network: str = "", tables: str = "") -> str:
    """A config this version of alca accepts: local image, pinned engine, no LAN isolation."""
    return (
        f'image = "{IMAGE}"\n'
        f'runtime = "{engine}"\n'
        f"{top}\n"
        "[network]\n"
        'lan-access = ["*"]\n'
        f"{network}\n"
        f"{tables}\n"
    )


@dataclass(frozen=True)
class Outcome:
    """What one `alca` command did."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def progress_lines(self) -> list[str]:
        return [line for line in self.output.splitlines() if line.startswith(("→", "✓"))]

    def __str__(self) -> str:
        return (
            f"alca {' '.join(self.args)} -> exit {self.returncode}\n"
            f"--- stdout ---\n{self.stdout}--- stderr ---\n{self.stderr}"
        )


def run_alca(
    args: Sequence[str],
    *,
    cwd: Path,
    env: dict[str, str],
    tty_input: str | None,
    timeout: float,
    command: Sequence[str] = ALCA,
) -> Outcome:
    """Run `alca` (`command`); with `tty_input` its stdin is a pseudo-terminal holding it."""
    argv = [*command, *args]
    if tty_input is None:
        done = subprocess.run(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    else:
        leader, follower = os.openpty()
        try:
            os.write(leader, tty_input.encode())  # queued until alca reads its stdin
            done = subprocess.run(
                argv,
                cwd=cwd,
                env=env,
                stdin=follower,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        finally:
            os.close(leader)
            os.close(follower)
    return Outcome(tuple(args), done.returncode, done.stdout, done.stderr)


def engine_cli(engine: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [engine, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def inspect_container(engine: str, name: str) -> dict[str, Any] | None:
    """The engine's `container inspect` record for `name`, or None when there is none."""
    done = engine_cli(engine, "container", "inspect", name)
    if done.returncode != 0:
        return None
    records = json.loads(done.stdout)
    return records[0] if records else None


def remove_container(engine: str, name: str) -> None:
    args = ["rm", "-f", "-t", "0", name] if engine == "podman" else ["rm", "-f", name]
    engine_cli(engine, *args)


def names_with_project_path(engine: str, root: Path) -> list[str]:
    done = engine_cli(
        engine,
        "ps", "-a", "--filter", f"label=alca.project.path={root}", "--format", "{{.Names}}",
    )  # fmt: skip
    return [line.strip() for line in done.stdout.splitlines() if line.strip()]


class Project:
    """One project directory, its configuration, and `alca` run inside it."""

    def __init__(self, root: Path, engine: str, home: Path) -> None:
        self.root = root
        self.engine = engine
        self.home = home

    # -- files ------------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.root / ".alca.toml"

    def write_config(self, text: str | None = None, **parts: str) -> None:
        self.config_path.write_text(text if text is not None else config_text(self.engine, **parts))

    # -- running alca -----------------------------------------------------------------------
    @property
    def alca_home(self) -> Path:
        return self.home / ".alcatraz"

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ALCA_")}
        env.update(HOME=str(self.home), ALCA_HOME=str(self.alca_home), NO_COLOR="1")
        env.update(extra)
        return env

    def alca(
        self,
        *args: str,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        tty_input: str | None = None,
        timeout: float = COMMAND_TIMEOUT,
    ) -> Outcome:
        return run_alca(
            args,
            cwd=cwd or self.root,
            env=env or self.env(),
            tty_input=tty_input,
            timeout=timeout,
        )

    def ok(self, *args: str, **kwargs: Any) -> Outcome:
        """Run `alca` and require exit 0."""
        outcome = self.alca(*args, **kwargs)
        assert outcome.returncode == 0, str(outcome)
        return outcome

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*ALCA, *args],
            cwd=self.root,
            env=self.env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def approve(self) -> Outcome:
        return self.ok("trust", "--yes")

    def start(self) -> Outcome:
        """`alca up --yes` (approve what is shown, then start), which must succeed."""
        return self.ok("up", "--yes")

    def sh(self, script: str, **kwargs: Any) -> Outcome:
        """`alca run sh -c SCRIPT`: what the agent inside the sandbox does."""
        return self.alca("run", "sh", "-c", script, **kwargs)

    # -- state and container ----------------------------------------------------------------
    @property
    def state_dir(self) -> Path:
        return state.project_dir(self.alca_home, self.root)

    def state(self) -> dict[str, Any]:
        return state.read_json(self.state_dir / "state.json") or {}

    @property
    def container_name(self) -> str:
        name = self.state().get("container_name")
        assert isinstance(name, str), f"no container name in the state of {self.root}"
        return name

    def inspect(self, engine: str | None = None) -> dict[str, Any] | None:
        return inspect_container(engine or self.engine, self.container_name)

    def container_id(self) -> str:
        record = self.inspect()
        assert record is not None, f"{self.container_name} does not exist in {self.engine}"
        return str(record["Id"])

    def container_running(self, engine: str | None = None) -> bool:
        record = self.inspect(engine)
        return record is not None and record["State"]["Status"] == "running"

    def status_json(self, cwd: Path | None = None) -> dict[str, Any]:
        report: dict[str, Any] = json.loads(self.ok("status", "--json", cwd=cwd).stdout)
        return report


# --- networks, firewall rules, sync daemons: alca's per-project objects besides containers ----


def networks_with_project_path(engine: str, root: Path) -> list[str]:
    """Engine networks alca made for the project at `root` (one per project)."""
    done = engine_cli(
        engine,
        "network", "ls", "--filter", f"label=alca.project.path={root}", "--format", "{{.Name}}",
    )  # fmt: skip
    return done.stdout.split()


def remove_project_networks(engine: str, root: Path) -> set[str]:
    """Remove the networks (and their firewall rules) left behind by a project at `root`;
    returns their project ids.

    Only a fallback: `alca down` does this. alcatraz's own teardown is used so the rules are
    removed exactly as they were made.
    """
    from alcatraz.network.firewall import firewall_for
    from alcatraz.network.plan import project_key
    from alcatraz.sandbox import guard as isolation
    from alcatraz.statefile import IsolationRecord
    from tests.integration.conftest import make_runtime

    names = networks_with_project_path(engine, root)
    if not names:
        return set()
    runner = SubprocessRunner()
    runtime = make_runtime(engine)
    environ = dict(os.environ)
    app = make_app(environ=environ, stderr=sys.stderr, runner=runner)
    try:
        command: list[str] | None = firewall_for(runner, environ, engine).command
    except Exception:  # no nft here: there are no rules to remove either
        command = None
    project_ids: set[str] = set()
    for name in names:
        info = runtime.network_inspect(name)
        project_id = info.labels.get("alca.project.id", "") if info else ""
        project_ids.add(project_id)
        record = IsolationRecord(
            key=project_key(project_id) if project_id else "",
            interface=info.interface if info else "",
            network=name,
            nft=None if command is None else tuple(command),
        )
        isolation.teardown(app, runtime, record)
    return project_ids


def _firewall() -> Any:
    """alcatraz's own view of the host firewall, or None where nftables is not usable."""
    from alcatraz.network.firewall import firewall_for

    try:
        return firewall_for(SubprocessRunner(), dict(os.environ), "docker")
    except Exception:
        return None


def loaded_rules(project_id: str) -> tuple[list[str], list[str]]:
    """This project's chains in the host firewall, and the bridges dispatched to them."""
    from alcatraz.network.plan import project_key

    firewall = _firewall()
    if firewall is None:
        return [], []
    prefix = f"p_{project_key(project_id)}_"
    table = firewall.read()
    chains = sorted(chain for chain in table.chains if chain.startswith(prefix))
    interfaces = {
        interface
        for elements in table.dispatch.values()
        for interface, chain in elements.items()
        if chain.startswith(prefix)
    }
    return chains, sorted(interfaces)


def has_rules(project_id: str) -> bool:
    return bool(loaded_rules(project_id)[0])


def remove_rules(project_id: str) -> None:
    from alcatraz.network.plan import project_key

    chains, interfaces = loaded_rules(project_id)
    if chains:
        _firewall().remove(project_key(project_id), interfaces)


def stop_mutagen_daemons_under(base: Path) -> None:
    """End Mutagen daemons alca started with a data directory under `base` (by pid)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"daemon" not in cmdline or not cmdline[0].endswith(b"mutagen"):
            continue
        data_dir = next(
            (v for v in environ if v.startswith(b"MUTAGEN_DATA_DIRECTORY=")), b""
        ).partition(b"=")[2]
        if data_dir.startswith(os.fsencode(f"{base}/")):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry.name), signal.SIGTERM)


class Projects:
    """Makes projects for one test (or module) and removes what they left afterwards.

    Cleanup order: `alca down` in each project (containers, rules, networks, as a user
    would), then whatever is still there: containers by name, networks with their rules.
    """

    def __init__(self, engine: str) -> None:
        self.engine = engine
        self.base = Path(tempfile.mkdtemp(prefix="ait-", dir="/tmp"))
        self.home = self.base / "home"
        self.home.mkdir()
        self.roots: list[Path] = []

    def new(self, name: str = "proj", config: str | None = None, **parts: str) -> Project:
        root = self.base / name
        root.mkdir()
        project = self.track(root)
        if config is not None or parts:
            project.write_config(config, **parts)
        return project

    def track(self, root: Path) -> Project:
        """Remember a project directory (also one made by copying) for the cleanup."""
        self.roots.append(root)
        return Project(root, self.engine, self.home)

    def cleanup(self) -> None:
        """Remove everything these projects left; go on past failures, then report them."""
        errors: list[str] = []

        def attempt(what: str, action: Any, *args: Any) -> Any:
            try:
                return action(*args)
            except Exception as error:
                errors.append(f"{what}: {error}")
                return None

        engines = [e for e in ENGINES if shutil.which(e) is not None]
        project_ids: set[str] = set()
        names: set[str] = set()
        for root in self.roots:
            project = Project(root, self.engine, self.home)
            recorded = project.state()
            project_ids.add(str(recorded.get("project_id") or ""))
            names.add(str(recorded.get("container_name") or ""))
            if project.config_path.is_file() and recorded.get("project_id"):
                attempt(f"alca down in {root}", project.alca, "down", "-q")
        for engine in engines:
            leftovers = set(names)
            for root in self.roots:
                leftovers.update(names_with_project_path(engine, root))
            for name in sorted(leftovers - {""}):
                record = inspect_container(engine, name) or {}
                labels = (record.get("Config") or {}).get("Labels") or {}
                project_ids.add(str(labels.get("alca.project.id") or ""))
                remove_container(engine, name)
            for root in self.roots:  # networks only once no container uses them
                found = attempt(f"networks of {root}", remove_project_networks, engine, root)
                project_ids.update(found or ())
        for project_id in sorted(project_ids - {""}):
            attempt(f"rules of {project_id}", remove_rules, project_id)  # a failed teardown's
        stop_mutagen_daemons_under(self.base)
        shutil.rmtree(self.base, ignore_errors=True)
        assert not errors, "cleanup failed:\n" + "\n".join(errors)


# --- `alca cleanup` seeing only this test's objects ---------------------------------------------


class OnlyTheseObjects:
    """A real runner, except that `ps` and `network ls` list only the given objects."""

    def __init__(self, container_ids: set[str], networks: set[str]) -> None:
        self.real = SubprocessRunner()
        self.container_ids = container_ids
        self.networks = networks

    def run(self, argv: Sequence[str], **kwargs: Any) -> Result:
        result = self.real.run(argv, **kwargs)
        if list(argv[1:2]) == ["ps"]:
            keep = self.container_ids
        elif list(argv[1:3]) == ["network", "ls"]:
            keep = self.networks
        else:
            return result
        lines = [line for line in result.stdout.splitlines() if line.strip() in keep]
        return Result(result.argv, result.returncode, "".join(f"{x}\n" for x in lines), "")

    def stream(self, argv: Sequence[str], **kwargs: Any) -> int:
        return self.real.stream(argv, **kwargs)


def run_cleanup(
    projects: Projects,
    roots: list[Path],
    *,
    yes: bool,
    stdin: io.StringIO | None = None,
    engine_choice: str | None = None,
) -> str:
    """`alca cleanup [-y]` seeing only the containers and networks of `roots`.

    `engine_choice` is ALCA_RUNTIME; by default the projects' engine ("" = alca's own choice).
    """
    engine = projects.engine
    ids: set[str] = set()
    networks: set[str] = set()
    for root in roots:
        listed = engine_cli(
            engine,
            "ps", "-a", "--no-trunc", "--filter", f"label=alca.project.path={root}",
            "--format", "{{.ID}}",
        )  # fmt: skip
        ids.update(listed.stdout.split())
        networks.update(networks_with_project_path(engine, root))
    out = io.StringIO()
    app = make_app(
        roots[0] if roots[0].is_dir() else projects.base,
        environ=Project(roots[0], engine, projects.home).env(
            ALCA_RUNTIME=engine if engine_choice is None else engine_choice
        ),
        stdin=stdin,
        stdout=out,
        runner=OnlyTheseObjects(ids, networks),
    )
    arguments = build_parser("cleanup").parse_args(["cleanup", "--yes"] if yes else ["cleanup"])
    code = arguments._module.main(arguments, app)
    assert code == 0, out.getvalue()
    return out.getvalue()
