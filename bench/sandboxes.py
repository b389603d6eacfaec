"""A throwaway alcatraz project per engine, driven through the real `alca` console script.

Everything alcatraz writes goes to a temporary directory: `ALCA_HOME` (state, approvals)
and `ALCA_NFT_CONF`/`ALCA_NFT_DIR` (the network helper's persisted rules), as in
`scripts/demo.sh`. Bytecode goes to `PYTHONPYCACHEPREFIX` under `bench/results/`, so the
source tree is not written to and timings reflect a normal install (pip compiles
bytecode; without it every run recompiles alcatraz).
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SRC = REPO / "src"
BENCH = REPO / "bench"
IMAGE = "alpine:3.21"


class SandboxError(RuntimeError):
    """An alca command the benchmark depends on failed."""


def console_script() -> str:
    """The installed `alca` console script of this interpreter (not a pyenv/asdf shim)."""
    candidate = Path(sysconfig.get_path("scripts")) / "alca"
    if candidate.exists():
        return str(candidate)
    raise SandboxError(
        f"no alca console script in {candidate.parent}: install first (pip install -e .)"
    )


def bench_env(workdir: Path, pycache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("ALCA_DEBUG", None)
    env.pop("ALCA_RUNTIME", None)
    env.update(
        ALCA_HOME=str(workdir / "home"),
        ALCA_NFT_CONF=str(workdir / "nftables.conf"),
        ALCA_NFT_DIR=str(workdir / "nftables.d"),
        PYTHONPYCACHEPREFIX=str(pycache),
    )
    return env


@dataclass
class Sandbox:
    """One project directory and its sandbox on `engine`."""

    engine: str
    root: Path
    env: dict[str, str]
    alca: str
    #: How alca is started when not through the console script, e.g. `python -m alcatraz`
    #: with `PYTHONPATH` in `env` naming another revision's source (bench/revisions.py).
    launcher: list[str] = field(default_factory=list)

    @classmethod
    def create(
        cls,
        engine: str,
        workdir: Path,
        env: dict[str, str],
        alca: str,
        launcher: list[str] | None = None,
    ) -> Sandbox:
        root = workdir / f"project-{engine}"
        (root / "src" / "pkg").mkdir(parents=True, exist_ok=True)
        (root / ".alca.toml").write_text(f'image = "{IMAGE}"\nruntime = "{engine}"\n')
        sandbox = cls(engine, root, env, alca, list(launcher or []))
        sandbox.alca_cmd(["trust", "--yes"])
        return sandbox

    def argv(self, args: list[str]) -> list[str]:
        """The argv of `alca ARGS`: the launcher if one is set, else the console script."""
        return [*(self.launcher or [self.alca]), *args]

    def alca_cmd(
        self, args: list[str], *, debug: bool = False, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        env = dict(self.env, ALCA_DEBUG="1") if debug else self.env
        proc = subprocess.run(
            self.argv(args),
            cwd=self.root,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if check and proc.returncode != 0:
            raise SandboxError(
                f"alca {shlex.join(args)} failed ({proc.returncode}): "
                f"{(proc.stderr or proc.stdout).strip()[-2000:]}"
            )
        return proc

    def state(self) -> dict[str, object]:
        home = Path(self.env["ALCA_HOME"]) / "projects"
        for path in home.glob("*/state.json"):
            data = json.loads(path.read_text())
            if data.get("project_path") == str(self.root):
                return data  # type: ignore[no-any-return]
        return {}

    @property
    def container(self) -> str:
        return str(self.state()["container_name"])

    @property
    def isolation(self) -> dict[str, object]:
        value = self.state().get("isolation")
        return value if isinstance(value, dict) else {}

    def up(self) -> float:
        started = time.perf_counter()
        self.alca_cmd(["up", "-q"])
        return time.perf_counter() - started

    def down(self) -> None:
        self.alca_cmd(["down", "--force"], check=False)

    def exec_argv(self, command: list[str]) -> list[str]:
        """What `alca run` execs for `command` from the project root (same flags)."""
        return [self.engine, "exec", "-i", "-w", "/workspace", self.container, *command]

    def run_variants(self, socket_path: str | None) -> dict[str, list[str]]:
        """The processes compared in item 1, each a fresh process like a user's call."""
        python = sys.executable
        prefix = f"import sys; sys.path[:0] = [{str(BENCH)!r}, {str(SRC)!r}]; "
        variants = {
            "engine_cli": self.exec_argv(["true"]),
            "alca_run": [self.alca, "run", "true"],
            "alca_run_clean": [
                python, "-S", "-c",
                prefix + "from alcatraz.cli import main; sys.exit(main())",
                "run", "true",
            ],
        }  # fmt: skip
        if socket_path:
            proto = prefix + "import proto_run; sys.exit(proto_run.main(sys.argv[1:]))"
            variants["api_proto"] = [python, "-c", proto, "true"]
            variants["api_proto_clean"] = [python, "-S", "-c", proto, "true"]
            variants["api_proto_lean_clean"] = [python, "-S", "-c", proto, "--lean", "true"]
        return variants


def leftover_processes(workdir: Path) -> list[int]:
    """Mutagen daemons alca started for this run (their data directory is in `workdir`)."""
    marker = b"MUTAGEN_DATA_DIRECTORY=" + str(workdir).encode()
    found: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            variables = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(v.startswith(marker) for v in variables):
            found.append(int(entry))
    return found


def stop_leftovers(workdir: Path) -> list[str]:
    """Stop (by pid) what `leftover_processes` finds; returns notes for the report."""
    notes = []
    for pid in leftover_processes(workdir):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
            notes.append(f"stopped a leftover Mutagen daemon (pid {pid})")
    return notes


def timed(argv: list[str], *, cwd: Path, env: dict[str, str]) -> float:
    """Wall time of one process in ms; stdin is not a terminal (the non-TTY case)."""
    started = time.perf_counter_ns()
    proc = subprocess.run(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=120,
    )
    elapsed = (time.perf_counter_ns() - started) / 1e6
    if proc.returncode != 0:
        raise SandboxError(f"{shlex.join(argv)} failed: {proc.stderr.decode(errors='replace')}")
    return elapsed
