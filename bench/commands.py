"""Issue 17's figures, side by side in one run: `alca run` against the engine's exec, and
warm `up`, `status`, `list` and cold `up`, on Docker and Podman, with 1 and 200 projects.

    sudo python bench/commands.py [--quick] [--engines docker,podman] [--out bench/results]

One sandbox per engine (isolation on), both up for the whole run. Each round runs every
variant of every engine once, in a shuffled order (so Podman ÷ Docker and `alca run` ÷
exec are paired within a round), then a cold `up` per engine (`down` untimed first). The
rounds run in phases with 1 project loaded and with 199 dummy projects' rules added
(bench/netlab.py), alternating A B B A (`--quick`: A B). Writes `commands.json` (every raw
sample) and `commands.md` to `--out`; removes the sandboxes and the dummies on exit.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchstats as stats
import commands_report
import netlab
from run import engine_ready, machine_info, progress
from sandboxes import BENCH, Sandbox, SandboxError, bench_env, console_script, stop_leftovers
from sandboxes import timed as timed_on_pipes


class Plan(NamedTuple):
    rounds: int  # per phase
    phases: str  # A = 1 project, B = 200
    warmup: int  # unrecorded runs of every variant before the first phase


FULL = Plan(rounds=10, phases="ABBA", warmup=2)
QUICK = Plan(rounds=4, phases="AB", warmup=1)
DUMMIES = 199
Runner = Callable[[], float]


def timed_on_pty(argv: list[str], *, cwd: Path, env: dict[str, str]) -> float:
    """Wall time of one process in ms with stdin, stdout and stderr on a fresh pty."""
    leader, follower = os.openpty()
    output = b""
    try:
        started = time.perf_counter_ns()
        proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=follower, stdout=follower, stderr=follower,
            start_new_session=True,
        )  # fmt: skip
        code = proc.wait(timeout=120)
        elapsed = (time.perf_counter_ns() - started) / 1e6
        os.set_blocking(leader, False)
        with contextlib.suppress(OSError):
            output = os.read(leader, 65536)  # `true` writes nothing; an error would
    finally:
        os.close(leader)
        os.close(follower)
    if code != 0:
        raise SandboxError(f"{shlex.join(argv)} failed on a pty ({code}): {output!r}")
    return elapsed


def run_path(sandbox: Sandbox, forced_cli: bool) -> tuple[str, list[str]]:
    """Which path `alca run true` takes ("api" or "cli"), and the engine argv on the CLI path."""
    env = dict(sandbox.env, ALCA_DEBUG="1")
    if forced_cli:
        env["ALCA_ENGINE_API"] = "cli"
    proc = subprocess.run(
        [sandbox.alca, "run", "true"], cwd=sandbox.root, env=env, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    for line in proc.stderr.splitlines():
        if line.startswith("→ Executing: "):
            return "cli", shlex.split(line[len("→ Executing: ") :])
        if line.startswith("→ Engine API: "):
            return "api", []
    raise SandboxError(f"`alca run true` named no path under ALCA_DEBUG: {proc.stderr!r}")


def runners(sandbox: Sandbox) -> dict[str, Runner]:
    """The warm variants of one engine (everything but the cold `up`), each a fresh process."""
    _, exec_argv = run_path(sandbox, forced_cli=True)
    if "-i" not in exec_argv:
        raise SandboxError(f"unexpected engine argv: {exec_argv}")
    at = exec_argv.index("-i") + 1
    exec_tty = [*exec_argv[:at], "-t", *exec_argv[at:]]
    cli_env = dict(sandbox.env, ALCA_ENGINE_API="cli")
    root, env, alca = sandbox.root, sandbox.env, sandbox.alca

    def pipes(argv: list[str], environ: dict[str, str] = env) -> Runner:
        return lambda: timed_on_pipes(argv, cwd=root, env=environ)

    def pty(argv: list[str]) -> Runner:
        return lambda: timed_on_pty(argv, cwd=root, env=env)

    return {
        "exec": pipes(exec_argv),
        "run": pipes([alca, "run", "true"]),
        "run_cli": pipes([alca, "run", "true"], cli_env),
        "exec_tty": pty(exec_tty),
        "run_tty": pty([alca, "run", "true"]),
        "up_warm": pipes([alca, "up", "-q"]),
        "status": pipes([alca, "status"]),
        "list": pipes([alca, "list"]),
    }


def cold_up(sandbox: Sandbox) -> float:
    sandbox.down()
    return sandbox.up() * 1000


def one_round(
    every: dict[str, dict[str, Runner]],
    sandboxes: dict[str, Sandbox],
    samples: dict[str, dict[str, list[float]]],
    seed: int,
) -> None:
    """Every warm variant of every engine once, shuffled; then each engine's cold `up`."""
    names = [f"{engine}:{variant}" for engine, table in every.items() for variant in table]
    for name in stats.schedule(names, 1, seed=seed)[0]:
        engine, variant = name.split(":")
        samples[engine].setdefault(variant, []).append(every[engine][variant]())
    engines = list(sandboxes) if seed % 2 == 0 else list(reversed(sandboxes))
    for engine in engines:
        samples[engine].setdefault("up_cold", []).append(cold_up(sandboxes[engine]))


def set_load(load: str, nft: list[str], every: dict[str, dict[str, Runner]]) -> None:
    """Load or remove the dummy projects, then run each variant once unrecorded."""
    loaded = netlab.dummy_count(nft)
    if load == "200" and loaded != DUMMIES:
        netlab.remove_dummies(nft)
        netlab.load_dummies(DUMMIES, nft)
        if netlab.dummy_count(nft) != DUMMIES:
            raise SandboxError("the dummy projects did not all load")
    elif load == "1" and loaded:
        netlab.remove_dummies(nft)
    for table in every.values():
        for runner in table.values():
            runner()


def measure_rounds(sandboxes: dict[str, Sandbox], plan: Plan, results: dict[str, Any]) -> None:
    every = {engine: runners(sandbox) for engine, sandbox in sandboxes.items()}
    results["run_path"] = {e: run_path(s, forced_cli=False)[0] for e, s in sandboxes.items()}
    first = next(iter(sandboxes.values()))
    recorded = first.isolation.get("nft")
    nft = [str(c) for c in recorded] if isinstance(recorded, list) and recorded else ["nft"]
    netlab.remove_dummies(nft)
    for _ in range(plan.warmup):
        set_load("1", nft, every)
    samples: dict[str, dict[str, dict[str, list[float]]]] = results["samples"]
    try:
        for phase_index, phase in enumerate(plan.phases):
            load = "1" if phase == "A" else "200"
            set_load(load, nft, every)
            for index in range(plan.rounds):
                progress(f"phase {phase_index + 1}/{len(plan.phases)} ({load} projects), "
                         f"round {index + 1}/{plan.rounds}")  # fmt: skip
                per_load = {engine: samples[engine].setdefault(load, {}) for engine in every}
                one_round(every, sandboxes, per_load, seed=phase_index * 1000 + index)
    finally:
        netlab.remove_dummies(nft)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of at most 3 minutes")
    parser.add_argument("--engines", default="docker,podman", help="comma-separated")
    parser.add_argument("--out", default=str(BENCH / "results"), help="output directory")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("bench/commands.py needs root (nftables)", file=sys.stderr)
        return 77
    plan = QUICK if args.quick else FULL
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "mode": "quick" if args.quick else "full",
        "rounds_per_load": plan.rounds * len(plan.phases) // 2,
        "phases": " ".join(plan.phases),
        "machine": machine_info(engines),
        "engines": [],
        "samples": {},
        "errors": [],
    }
    workdir = Path(tempfile.mkdtemp(prefix="alcabench-")).resolve()
    env = bench_env(workdir, out / ".pycache")
    alca = console_script()
    signal.signal(signal.SIGTERM, _interrupt)
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(lambda: subprocess.run(["rm", "-rf", str(workdir)], check=False))
        cleanup.callback(lambda: stop_leftovers(workdir))
        subprocess.run([alca, "network-helper", "install", "--yes"], cwd=workdir, env=env,
                       capture_output=True, check=True)  # fmt: skip
        sandboxes: dict[str, Sandbox] = {}
        for engine in engines:
            why = engine_ready(engine)
            if why:
                results["errors"].append(f"{engine} skipped: {why}")
                continue
            sandbox = Sandbox.create(engine, workdir, env, alca)
            cleanup.callback(sandbox.down)
            progress(f"{engine}: first alca up")
            sandbox.up()
            sandboxes[engine] = sandbox
            results["engines"].append(engine)
            results["samples"][engine] = {}
        try:
            measure_rounds(sandboxes, plan, results)
        except (SandboxError, subprocess.SubprocessError, netlab.LabError) as error:
            results["errors"].append(str(error))
    results["machine"]["loadavg_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    results["duration_s"] = time.perf_counter() - started
    results["figures"] = commands_report.figures(results["samples"])
    markdown = commands_report.render(results)
    (out / "commands.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    (out / "commands.md").write_text(markdown)
    print(markdown)
    return 1 if results["errors"] else 0


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("bench: interrupted; everything it had created was removed", file=sys.stderr)
        sys.exit(130)
