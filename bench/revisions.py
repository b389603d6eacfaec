"""Warm `alca up`, `status`, `list`, `run true` and cold `up`, one revision against another.

    sudo python bench/revisions.py [--before d3f880a] [--after worktree]
                                   [--engines docker,podman] [--up-rounds 15] [--run-rounds 30]
                                   [--cold-rounds 5] [--projects 200]

Each revision runs as `python -m alcatraz` with `PYTHONPATH=<its tree>/src` (a revision
other than the working tree is unpacked with `git archive` into a temporary directory), on
this interpreter and its installed dependencies, with bytecode compiled beforehand into one
private `PYTHONPYCACHEPREFIX`, so both are equally warm. One throwaway sandbox per engine,
made by the "after" revision's `alca up`, serves both: the state file (version 1) is the
same in both revisions, and the harness proves it before trusting any number: each
revision's warm `up` must say the container is already running and execute no command that
creates, removes, starts or stops anything, and the container's id and start time must be
the same at the end as at the start. Every round runs each variant once, in a shuffled
order; the ratio after/before is taken within the round (bench/benchstats.py). `status` and
`list` run as many rounds as `up`. Cold `up` comes last (it replaces the container): each
round removes the sandbox with the after revision's `alca down`, then times one revision's
`alca up`, both revisions per round in a shuffled order (issue #17). With `--projects N`, N-1
dummy projects (bench/netlab.py: keys `bench00001`…, bridges that do not exist) are loaded
into the live `inet alcatraz` table for the warm rounds and removed after, key by key.

Everything alcatraz writes goes to a temporary directory (`ALCA_HOME`, `ALCA_NFT_CONF`,
`ALCA_NFT_DIR`); the sandboxes are removed with `alca down` and leftover Mutagen daemons
stopped by pid, also on Ctrl-C. Writes `revisions.md` and `revisions.json` to `--out`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchstats as stats
from sandboxes import REPO, Sandbox, SandboxError, bench_env, stop_leftovers, timed

WORKTREE = "worktree"
DEFAULTS = {
    "before": "d3f880a", "after": WORKTREE, "up_rounds": 15, "run_rounds": 30, "cold_rounds": 5
}  # fmt: skip
#: What is measured on the warm sandbox: name -> (arguments, how the table names it).
WARM = {
    "up": (["up", "-q"], "warm `alca up`"),
    "status": (["status"], "`alca status`"),
    "list": (["list"], "`alca list`"),
    "run": (["run", "true"], "`alca run true`"),
}
#: Engine subcommands that would mean a warm `up` rebuilt or restarted the sandbox.
REBUILDING = {"create", "rm", "run", "start", "stop", "kill", "restart"}
NET_CHANGES = [["network", verb] for verb in ("create", "rm", "connect", "disconnect")]
ALREADY_RUNNING = "Container already running"


def progress(message: str) -> None:
    print(f"[revisions {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Tree:
    """One revision's source, ready for `PYTHONPATH`."""

    label: str  # "before" or "after"
    ref: str  # as given on the command line
    commit: str  # what it resolved to
    src: Path


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def materialise(label: str, ref: str, cleanup: contextlib.ExitStack) -> Tree:
    """The working tree as it is, or `ref`'s `src/` unpacked into a temporary directory."""
    if ref == WORKTREE:
        dirty = _git("status", "--porcelain", "--", "src")
        commit = _git("rev-parse", "--short", "HEAD") + (" + uncommitted src" if dirty else "")
        return Tree(label, ref, commit, REPO / "src")
    commit = _git("rev-parse", "--short", f"{ref}^{{commit}}")
    target = Path(tempfile.mkdtemp(prefix=f"alca-bench-{label}-"))
    cleanup.callback(lambda: subprocess.run(["rm", "-rf", str(target)], check=False))
    archive = subprocess.Popen(
        ["git", "-C", str(REPO), "archive", "--format=tar", commit, "src"],
        stdout=subprocess.PIPE,
    )
    assert archive.stdout is not None
    subprocess.run(["tar", "-x", "-C", str(target)], stdin=archive.stdout, check=True)
    archive.stdout.close()
    if archive.wait() != 0:
        raise SandboxError(f"git archive {commit} failed")
    return Tree(label, ref, commit, target / "src")


def prepare(tree: Tree, base_env: dict[str, str], python: str) -> dict[str, str]:
    """The environment that runs `tree`; checks it is really that tree, compiles it."""
    if not (tree.src / "alcatraz" / "__main__.py").is_file():
        raise SandboxError(f"{tree.label} ({tree.commit}) has no src/alcatraz/__main__.py")
    env = dict(base_env, PYTHONPATH=str(tree.src))
    where = subprocess.run(
        [python, "-c", "import alcatraz; print(alcatraz.__file__)"],
        env=env, cwd=tempfile.gettempdir(), capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    if not Path(where).resolve().is_relative_to(tree.src.resolve()):
        raise SandboxError(f"{tree.label}: alcatraz imports from {where}, not {tree.src}")
    subprocess.run([python, "-m", "compileall", "-q", str(tree.src)], env=env, check=True)
    return env


def executed(output: str) -> list[list[str]]:
    """The external commands an `ALCA_DEBUG=1` run reports, in order."""
    marker = "→ Executing: "
    return [
        shlex.split(line.strip()[len(marker) :])
        for line in output.splitlines()
        if line.strip().startswith(marker)
    ]


def rebuilding(commands: list[list[str]], engine: str) -> list[str]:
    """Those of `commands` that would change the sandbox rather than look at it."""
    found = []
    for argv in commands:
        words = argv[1:]
        if argv[:1] != [engine] or not words:
            continue
        if words[0] == "container":  # `docker container rm` is `docker rm`
            words = words[1:]
        if words[0:1] and (words[0] in REBUILDING or words[:2] in NET_CHANGES):
            found.append(shlex.join(argv[:3]))
    return found


def identity(sandbox: Sandbox) -> str:
    """The container's id and start time: both change if anything rebuilt or restarted it."""
    return subprocess.run(
        [sandbox.engine, "inspect", "--format", "{{.Id}} {{.State.StartedAt}}",
         sandbox.container],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip


def check_warm_up(sandbox: Sandbox, label: str) -> dict[str, Any]:
    """`label`'s warm `up` finds the sandbox current and changes nothing (or we stop)."""
    proc = sandbox.alca_cmd(["up"], debug=True)
    output = proc.stdout + proc.stderr
    commands = executed(output)
    changed = rebuilding(commands, sandbox.engine)
    if ALREADY_RUNNING not in output or changed:
        raise SandboxError(
            f"{label}'s warm up on {sandbox.engine} did not find the sandbox current "
            f"(ran: {changed or 'no rebuilding command'}):\n{output[-1500:]}"
        )
    return {"already_running": True, "commands": [shlex.join(c[:4]) for c in commands]}


def measure_engine(
    engine: str, trees: list[Tree], envs: dict[str, dict[str, str]], workdir: Path,
    rounds: dict[str, int], cleanup: contextlib.ExitStack,
) -> dict[str, Any]:  # fmt: skip
    """Both revisions' warm `up` and `run true` on one sandbox of `engine`."""
    python = sys.executable
    launcher = [python, "-m", "alcatraz"]
    after = Sandbox.create(engine, workdir, envs["after"], python, launcher)
    cleanup.callback(after.down)
    progress(f"{engine}: alca up (after) makes the sandbox")
    after.up()
    variants = {
        t.label: Sandbox(engine, after.root, envs[t.label], python, launcher) for t in trees
    }
    started_as = identity(after)
    checks = {label: check_warm_up(sandbox, label) for label, sandbox in variants.items()}
    runners: dict[str, Callable[[], float]] = {}
    for label, sandbox in variants.items():
        for what, (args, _) in WARM.items():
            runners[f"{what}/{label}"] = _runner(sandbox, args)
    for runner in runners.values():  # warm-up: page cache, the daemon's paths
        runner()
        runner()
    if rounds.get("projects", 1) > 1:
        import netlab

        cleanup.callback(netlab.remove_dummies, ["nft"])
        netlab.remove_dummies(["nft"])
        netlab.load_dummies(rounds["projects"] - 1, ["nft"])
        progress(f"{engine}: {netlab.dummy_count(['nft'])} dummy projects loaded")
    samples = _rounds(engine, runners, rounds)
    if rounds.get("projects", 1) > 1:
        netlab.remove_dummies(["nft"])
    ended_as = identity(after)
    if ended_as != started_as:
        raise SandboxError(
            f"{engine}: the container changed during the run ({started_as} → {ended_as})"
        )
    result: dict[str, Any] = {"status": "ok", "checks": checks, "container": started_as}
    if rounds.get("cold", 0) > 0:
        samples |= _cold_rounds(after, variants, rounds["cold"])
    result["samples_ms"] = samples
    result["summary_ms"] = {n: stats.summarize(v).as_dict() for n, v in samples.items()}
    for what in (*WARM, "cold") if rounds.get("cold", 0) > 0 else WARM:
        ratio = stats.ratio_summary(samples[f"{what}/before"], samples[f"{what}/after"])
        result[f"{what}_ratio"] = ratio.as_dict() | {"comparison": stats.compare(ratio)}
    return result


def _cold_rounds(
    after: Sandbox, variants: dict[str, Sandbox], count: int
) -> dict[str, list[float]]:
    """`alca down` (after) then one revision's timed `alca up`, every revision per round."""
    samples: dict[str, list[float]] = {f"cold/{label}": [] for label in variants}
    for index, order in enumerate(stats.schedule(sorted(variants), count, seed=7)):
        progress(f"{after.engine}: cold round {index + 1}/{count}")
        for label in order:
            after.down()
            samples[f"cold/{label}"].append(_runner(variants[label], ["up", "-q"])())
    return samples


def _runner(sandbox: Sandbox, args: list[str]) -> Callable[[], float]:
    """One timed `alca ARGS` of `sandbox`'s revision, in ms, as a fresh process."""
    argv = sandbox.argv(args)
    return lambda: timed(argv, cwd=sandbox.root, env=sandbox.env)


def _rounds(
    engine: str, runners: dict[str, Callable[[], float]], rounds: dict[str, int]
) -> dict[str, list[float]]:
    """Every variant once per round, shuffled; `up` stops after its own count of rounds."""
    samples: dict[str, list[float]] = {name: [] for name in runners}
    total = max(rounds.get(name.split("/")[0], rounds["up"]) for name in runners)
    for index, order in enumerate(stats.schedule(sorted(runners), total, seed=len(engine))):
        if index % 10 == 0:
            progress(f"{engine}: round {index + 1}/{total}")
        for name in order:
            what = name.split("/")[0]
            if index < rounds.get(what, rounds["up"]):
                samples[name].append(runners[name]())
    return samples


def render(results: dict[str, Any]) -> str:
    """The markdown table: medians and IQRs in ms, the paired ratio and what it says."""
    trees = results["trees"]
    lines = [
        f"# alcatraz {trees['before']['commit']} (before) vs {trees['after']['commit']} (after), "
        f"{results['rounds'].get('projects', 1)} project(s) in the nft table",
        "",
        f"{results['date']}; {results['rounds']['up']} rounds of `up`, "
        f"{results['rounds']['run']} of `run true`, each variant once per round in a shuffled "
        f"order; Python {results['machine']['python']}, load average "
        f"{results['machine']['loadavg_start']} → {results['machine']['loadavg_end']}.",
        "",
        "| engine | command | before | after | after ÷ before (paired) | reading |",
        "|---|---|---|---|---|---|",
    ]
    for engine, result in results["engines"].items():
        if result.get("status") != "ok":
            lines.append(f"| {engine} | – | – | – | – | {result.get('status')} |")
            continue
        names = {what: name for what, (_, name) in WARM.items()} | {"cold": "cold `alca up`"}
        for what, name in names.items():
            if f"{what}_ratio" not in result:
                continue
            cells = [_ms(result["summary_ms"][f"{what}/{label}"]) for label in ("before", "after")]
            ratio = result[f"{what}_ratio"]
            lines.append(
                f"| {engine} | {name} | {cells[0]} | {cells[1]} | {ratio['median']:.3f} "
                f"(IQR {ratio['q1']:.3f}–{ratio['q3']:.3f}) | {ratio['comparison']} |"
            )
    lines += ["", "Times in ms: median (IQR). A ratio below 1 means the after revision is faster."]
    if results["errors"]:
        lines += ["", "Errors:", *[f"- {error}" for error in results["errors"]]]
    return "\n".join(lines) + "\n"


def _ms(summary: dict[str, float]) -> str:
    return f"{summary['median']:.1f} ({summary['q1']:.1f}–{summary['q3']:.1f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default=DEFAULTS["before"], help="a git revision")
    parser.add_argument("--after", default=DEFAULTS["after"], help=f"a revision or {WORKTREE!r}")
    parser.add_argument("--engines", default="docker", help="comma-separated")
    parser.add_argument("--up-rounds", type=int, default=DEFAULTS["up_rounds"])
    parser.add_argument("--run-rounds", type=int, default=DEFAULTS["run_rounds"])
    parser.add_argument("--cold-rounds", type=int, default=DEFAULTS["cold_rounds"])
    parser.add_argument("--projects", type=int, default=1, help="projects in the nft table")
    parser.add_argument("--out", default=str(REPO / "bench" / "results"))
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("bench/revisions.py needs root (nftables)", file=sys.stderr)
        return 77
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rounds = {
        "up": args.up_rounds, "run": args.run_rounds, "cold": args.cold_rounds,
        "projects": args.projects,
    }  # fmt: skip
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    signal.signal(signal.SIGTERM, _interrupt)
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "rounds": rounds,
        "machine": {"python": platform.python_version(), "nproc": os.cpu_count(),
                    "loadavg_start": _load()},
        "engines": {},
        "errors": [],
    }  # fmt: skip
    with contextlib.ExitStack() as cleanup:
        workdir = Path(tempfile.mkdtemp(prefix="alcabench-rev-")).resolve()
        cleanup.callback(lambda: subprocess.run(["rm", "-rf", str(workdir)], check=False))
        cleanup.callback(lambda: stop_leftovers(workdir))
        trees = [
            materialise("before", args.before, cleanup),
            materialise("after", args.after, cleanup),
        ]
        results["trees"] = {t.label: {"ref": t.ref, "commit": t.commit} for t in trees}
        base = bench_env(workdir, workdir / "pycache")
        envs = {t.label: prepare(t, base, sys.executable) for t in trees}
        subprocess.run(
            [sys.executable, "-m", "alcatraz", "network-helper", "install", "--yes"],
            cwd=workdir, env=envs["after"], capture_output=True, check=True,
        )  # fmt: skip
        for engine in engines:
            try:
                results["engines"][engine] = measure_engine(
                    engine, trees, envs, workdir, rounds, cleanup
                )
            except SandboxError as error:
                results["engines"][engine] = {"status": "failed"}
                results["errors"].append(f"{engine}: {error}")
    results["machine"]["loadavg_end"] = _load()
    markdown = render(results)
    (out / "revisions.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    (out / "revisions.md").write_text(markdown)
    print(markdown)
    return 1 if results["errors"] else 0


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("revisions: interrupted; everything it had created was removed", file=sys.stderr)
        sys.exit(130)
