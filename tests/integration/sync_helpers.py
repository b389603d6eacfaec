"""Drive `alca` on projects whose mounts are synced (workdir_exclude / mount exclude).

Each `SyncWorkspace` is one short directory `/tmp/as-XXXXXXXX` holding an alcatraz home
(`h`, so the private Mutagen daemon's socket path stays short), a user home (`home`, with a
hostile `~/.mutagen.yml`) and the projects. `alca` is the installed console script, run as
a subprocess with an environment full of hostile `MUTAGEN_*` variables: alcatraz must ignore
all of them.

The tests look at Mutagen only from the outside, with `MUTAGEN_DATA_DIRECTORY` pointing at
alcatraz's data directory, and only while alcatraz's daemon runs (a `mutagen` command would
otherwise start a daemon with the test's environment). Cleanup: `alca down --force` in each
project, then containers by name, networks and rules of these projects, then the sessions
labelled with these projects and the daemons of this workspace's data directories.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from alcatraz import state
from alcatraz.network.plan import project_key
from tests.fakes import make_app
from tests.integration.lifecycle.helpers import (
    IMAGE,
    OnlyTheseObjects,
    Outcome,
    engine_cli,
    inspect_container,
    names_with_project_path,
    networks_with_project_path,
    remove_container,
    remove_project_networks,
    remove_rules,
    run_alca,
)

ENGINES = ("docker", "podman")
#: Both engines, each with a bind-mounted and a synced (`workdir_exclude`) workspace.
WORKSPACE_MODES = [
    pytest.param((engine, mode), marks=getattr(pytest.mark, engine), id=f"{engine}-{mode}")
    for engine in ENGINES
    for mode in ("bind", "sync")
]
COMMAND_TIMEOUT = 120.0

# What a user's own Mutagen setup could do if it reached alcatraz's sessions: hide every
# *.txt file and make every session one-way.
HOSTILE_GLOBAL_CONFIG = (
    'sync:\n  defaults:\n    mode: one-way-replica\n    ignore:\n      paths:\n        - "*.txt"\n'
)

# Lists every entry under $1 as "<path>\t<D|F|L>\t<content or link target>", sorted.
TREE_SCRIPT = r"""
cd "$1" || exit 3
find . -mindepth 1 | sort | while IFS= read -r p; do
  if [ -L "$p" ]; then printf '%s\tL\t%s\n' "${p#./}" "$(readlink "$p")"
  elif [ -d "$p" ]; then printf '%s\tD\t\n' "${p#./}"
  else printf '%s\tF\t%s\n' "${p#./}" "$(cat "$p")"
  fi
done
"""

Tree = dict[str, str | None]  # path -> file content (no trailing newline), None for a dir


def alca_executable() -> str | None:
    """The `alca` console script of the interpreter running the tests."""
    beside = Path(sys.executable).parent / "alca"
    if beside.is_file():
        return str(beside)
    return shutil.which("alca")


def parse_tree(text: str) -> Tree:
    tree: Tree = {}
    last = ""
    for line in text.splitlines():
        fields = line.split("\t", 2)
        if len(fields) != 3 or fields[1] not in ("D", "F", "L"):
            tree[last] = f"{tree[last]}\n{line}"  # a file's further lines
            continue
        last, kind, rest = fields
        tree[last] = None if kind == "D" else (f"-> {rest}" if kind == "L" else rest)
    return tree


def host_tree(root: Path) -> Tree:
    tree: Tree = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            tree[rel] = f"-> {os.readlink(path)}"
        elif path.is_dir():
            tree[rel] = None
        else:
            tree[rel] = path.read_text().rstrip("\n")
    return tree


def write(root: Path, files: Mapping[str, str]) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content + "\n")


def wait_for(check: Callable[[], bool], what: str, timeout: float = 20.0) -> float:
    """Poll `check` until it holds; returns the seconds it took."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < timeout, f"timed out after {timeout:.0f} s: {what}"
        time.sleep(0.1)
    return time.monotonic() - start


def socket_answers(path: Path) -> bool:
    if not path.exists():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(2.0)
        try:
            sock.connect(os.fsencode(str(path)))
        except OSError:
            return False
    return True


def path_without(program: str, path: str) -> tuple[str, list[Path]]:
    """PATH with `program` gone: each directory holding it is replaced by a temporary one
    of links to everything else in it. Returns the new PATH and the directories made."""
    parts: list[str] = []
    made: list[Path] = []
    for entry in path.split(os.pathsep):
        directory = Path(entry)
        if not (directory / program).exists():
            parts.append(entry)
            continue
        shadow = Path(tempfile.mkdtemp(prefix="as-path-", dir="/tmp"))
        made.append(shadow)
        for item in directory.iterdir():
            if item.name != program:
                (shadow / item.name).symlink_to(item)
        parts.append(str(shadow))
    return os.pathsep.join(parts), made


class SyncProject:
    """One project of a workspace, and `alca` run inside it."""

    def __init__(self, workspace: SyncWorkspace, root: Path) -> None:
        self.workspace = workspace
        self.root = root
        self.engine = workspace.engine

    # -- running alca -----------------------------------------------------------------------
    def alca(
        self,
        *args: str,
        tty_input: str | None = None,
        env: dict[str, str] | None = None,
        timeout: float = COMMAND_TIMEOUT,
    ) -> Outcome:
        """Run `alca`; with `tty_input` its stdin is a pseudo-terminal holding that input."""
        return run_alca(
            args,
            cwd=self.root,
            env=env if env is not None else self.workspace.env(),
            tty_input=tty_input,
            timeout=timeout,
            command=[self.workspace.alca],
        )

    def ok(self, *args: str, **kwargs: Any) -> Outcome:
        outcome = self.alca(*args, **kwargs)
        assert outcome.returncode == 0, str(outcome)
        return outcome

    def sh(self, script: str) -> Outcome:
        """`alca run sh -c SCRIPT` (what the agent inside does); must succeed."""
        return self.ok("run", "sh", "-c", script)

    def check_json(self) -> dict[str, Any]:
        outcome = self.alca("experimental", "sync", "check", "--json")
        assert outcome.returncode in (0, 1), str(outcome)
        data: dict[str, Any] = json.loads(outcome.stdout)
        return data

    # -- state ------------------------------------------------------------------------------
    @property
    def state_dir(self) -> Path:
        return state.project_dir(self.workspace.alca_home, self.root)

    def state(self) -> dict[str, Any]:
        return state.read_json(self.state_dir / "state.json") or {}

    @property
    def project_id(self) -> str:
        value = self.state().get("project_id")
        assert isinstance(value, str), f"no project id in the state of {self.root}"
        return value

    @property
    def container(self) -> str:
        value = self.state().get("container_name")
        assert isinstance(value, str), f"no container name in the state of {self.root}"
        return value

    def session_name(self, index: int) -> str:
        return f"alca-{project_key(self.project_id)}-{index}"

    def container_state(self) -> str | None:
        record = inspect_container(self.engine, self.container)
        return None if record is None else str(record["State"]["Status"])

    # -- the container, seen from outside ----------------------------------------------------
    def inside(self, script: str, *args: str) -> str:
        done = engine_cli(self.engine, "exec", self.container, "sh", "-c", script, "sh", *args)
        assert done.returncode == 0, f"in-container command failed: {done.stderr}"
        return done.stdout

    def inside_tree(self, path: str) -> Tree:
        return parse_tree(self.inside(TREE_SCRIPT, path))

    def inside_exists(self, path: str) -> bool:
        done = engine_cli(self.engine, "exec", self.container, "test", "-e", path)
        return done.returncode == 0

    # -- alcatraz's Mutagen, seen from outside -----------------------------------------------
    def mutagen(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.workspace.mutagen(*args)

    def sessions(self) -> list[dict[str, Any]]:
        """This project's sessions, as Mutagen's JSON (the daemon must be running)."""
        return self.workspace.sessions(self.project_id)

    def flush(self) -> None:
        done = self.mutagen("sync", "flush", f"--label-selector=alca-project={self.project_id}")
        assert done.returncode == 0, done.stderr

    def pause(self, index: int = 0) -> None:
        done = self.mutagen("sync", "pause", self.session_name(index))
        assert done.returncode == 0, done.stderr

    def resume(self, index: int = 0) -> None:
        done = self.mutagen("sync", "resume", self.session_name(index))
        assert done.returncode == 0, done.stderr

    def make_conflict(self, name: str) -> None:
        """`name` at the project root: "base" on both sides, then "host" on the host and
        "ctr" inside while the workdir session is paused; resumed and flushed."""
        write(self.root, {name: "base"})
        self.flush()
        assert self.inside(f"cat /workspace/{name}") == "base\n"
        self.pause(0)
        write(self.root, {name: "host"})
        self.sh(f"echo ctr > {name}")
        self.resume(0)
        self.flush()


class SyncWorkspace:
    """A short directory with an alcatraz home, a hostile user home, and projects."""

    def __init__(self, engine: str) -> None:
        self.engine = engine
        alca = alca_executable()
        assert alca is not None, "the `alca` console script is not installed"
        self.alca = alca
        self.base = Path(tempfile.mkdtemp(prefix="as-", dir="/tmp"))
        self.alca_home = self.base / "h"
        self.home = self.base / "home"
        self.home.mkdir()
        (self.home / ".mutagen.yml").write_text(HOSTILE_GLOBAL_CONFIG)
        # A `docker` that would leave a mark if any Mutagen of ours ran it.
        self.hostile = self.base / "hostile"
        (self.hostile / "bin").mkdir(parents=True)
        fake = self.hostile / "bin" / "docker"
        fake.write_text(f"#!/bin/sh\ntouch {self.hostile}/fake-docker-ran\nexit 1\n")
        fake.chmod(0o755)
        self.roots: list[Path] = []
        self.ids: set[str] = set()

    @property
    def data_dir(self) -> Path:
        return self.alca_home / "m" / self.engine[0]

    @property
    def socket(self) -> Path:
        return self.data_dir / "daemon" / "daemon.sock"

    @property
    def fake_docker_ran(self) -> bool:
        return (self.hostile / "fake-docker-ran").exists()

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("ALCA_", "MUTAGEN_", "DOCKER_"))
        }
        env.update(
            HOME=str(self.home),
            ALCA_HOME=str(self.alca_home),
            NO_COLOR="1",
            # None of these may reach alcatraz's Mutagen.
            MUTAGEN_DATA_DIRECTORY=str(self.hostile / "data"),
            MUTAGEN_DOCKER_PATH=str(self.hostile / "bin"),
            MUTAGEN_BETA_DOCKER_HOST="tcp://127.0.0.1:9",
            MUTAGEN_ALPHA_DOCKER_HOST="tcp://127.0.0.1:9",
            MUTAGEN_LOG_LEVEL="trace",
        )
        env.update(extra)
        return env

    def project(
        self, name: str, config: str, files: Mapping[str, str] | None = None
    ) -> SyncProject:
        root = self.base / name
        root.mkdir()
        self.roots.append(root)
        (root / ".alca.toml").write_text(config)
        write(root, files or {})
        return SyncProject(self, root)

    # -- Mutagen, from outside ---------------------------------------------------------------
    def daemon_running(self) -> bool:
        return socket_answers(self.socket)

    def mutagen(self, *args: str, start: bool = False) -> subprocess.CompletedProcess[str]:
        """`mutagen` against alcatraz's data directory. Refused when its daemon is not running
        (unless `start`: then the caller must stop it again)."""
        if not start:
            assert self.daemon_running(), f"alcatraz's sync daemon ({self.socket}) is not running"
        env = {k: v for k, v in os.environ.items() if not k.startswith("MUTAGEN_")}
        env["MUTAGEN_DATA_DIRECTORY"] = str(self.data_dir)
        return subprocess.run(
            ["mutagen", *args], env=env, capture_output=True, text=True, timeout=60, check=False
        )

    def sessions(
        self, project_id: str | None = None, *, start: bool = False
    ) -> list[dict[str, Any]]:
        args = ["sync", "list", "--template={{json .}}"]
        if project_id is not None:
            args.append(f"--label-selector=alca-project={project_id}")
        done = self.mutagen(*args, start=start)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout) or []

    def stop_daemon(self) -> None:
        if not self.daemon_running():
            return
        self.mutagen("daemon", "stop")
        wait_for(lambda: not self.daemon_running(), "the sync daemon to stop", timeout=15)

    # -- cleanup ------------------------------------------------------------------------------
    def run_cleanup(self, roots: list[Path]) -> str:
        """`alca cleanup -y`, in process, seeing only the containers and networks of `roots`
        (the real command would also remove other people's containers it sees as orphans)."""
        from alcatraz.commands import cleanup

        ids: set[str] = set()
        networks: set[str] = set()
        for root in roots:
            listed = engine_cli(
                self.engine,
                "ps", "-a", "--no-trunc", "--filter", f"label=alca.project.path={root}",
                "--format", "{{.ID}}",
            )  # fmt: skip
            ids.update(listed.stdout.split())
            networks.update(networks_with_project_path(self.engine, root))
        out = io.StringIO()
        app = make_app(
            self.base,
            environ=self.env(ALCA_RUNTIME=self.engine),
            stdout=out,
            runner=OnlyTheseObjects(ids, networks),
        )
        code = cleanup.main(argparse.Namespace(yes=True), app)
        assert code == 0, out.getvalue()
        return out.getvalue()

    def remember_ids(self) -> None:
        for root in self.roots:
            recorded = (state.read_json(state.project_dir(self.alca_home, root) / "state.json")
                        or {}).get("project_id")  # fmt: skip
            if isinstance(recorded, str):
                self.ids.add(recorded)

    def cleanup(self) -> None:
        """Everything these projects made, whatever state the tests left it in."""
        self.remember_ids()
        problems: list[str] = []
        for root in self.roots:
            project = SyncProject(self, root)
            if (root / ".alca.toml").is_file() and project.state().get("project_id"):
                done = project.alca("down", "--force", "-q", timeout=90)
                if done.returncode != 0:
                    problems.append(str(done))
        engines = [e for e in ENGINES if shutil.which(e) is not None]
        for root in self.roots:
            recorded = (state.read_json(state.project_dir(self.alca_home, root) / "state.json")
                        or {}).get("container_name")  # fmt: skip
            for engine in engines:
                names = set(names_with_project_path(engine, root))
                if isinstance(recorded, str):
                    names.add(recorded)
                for name in sorted(names):
                    remove_container(engine, name)
                remove_project_networks(engine, root)
        for project_id in self.ids:
            remove_rules(project_id)
        for engine in ENGINES:
            data = self.alca_home / "m" / engine[0]
            if not socket_answers(data / "daemon" / "daemon.sock"):
                continue
            env = {k: v for k, v in os.environ.items() if not k.startswith("MUTAGEN_")}
            env["MUTAGEN_DATA_DIRECTORY"] = str(data)
            for project_id in self.ids:
                subprocess.run(
                    ["mutagen", "sync", "terminate", f"--label-selector=alca-project={project_id}"],
                    env=env, capture_output=True, timeout=60, check=False,
                )  # fmt: skip
            subprocess.run(
                ["mutagen", "daemon", "stop"], env=env, capture_output=True, timeout=60, check=False
            )
            sock = data / "daemon" / "daemon.sock"
            gone = lambda: not socket_answers(sock)  # noqa: B023, E731 - used at once
            wait_for(gone, f"the sync daemon in {data} to stop", timeout=15)
        shutil.rmtree(self.base, ignore_errors=True)
        assert not problems, "alca down --force failed during cleanup:\n" + "\n".join(problems)


def config(engine: str, *, exclude: str = "", up: str = "", mounts: str = "") -> str:
    """A config this alca accepts: local image, pinned engine, LAN access (no helper)."""
    text = f'image = "{IMAGE}"\nruntime = "{engine}"\n'
    if exclude:
        text += f"workdir_exclude = {exclude}\n"
    if up:
        text += f"\n[commands]\nup = {json.dumps(up)}\n"
    text += mounts
    text += '\n[network]\nlan-access = ["*"]\n'
    return text
