"""Time from `alca init --agent X` to the agent's first screen, cold and warm (issue 16).

    python bench/agent_start.py [--agents claude,codex,...] [--engines docker,podman]
                                [--warm-rounds 5] [--out bench/results]

Run as root on a machine set up by scripts/setup-test-env.sh (the local Debian images),
with the network helper in a private ALCA_HOME, both isolation layers on and each preset's
egress list in force: what tests/integration/test_agents.py does, timed.

- cold: `alca init --agent X`, `.alca.local.toml` pointing at the local image, `alca trust`,
  `alca up` (the preset's apt-get and its install from the registries), then `alca run X`
  under a terminal (tmux) until its first screen is drawn. Once per agent and engine.
- warm: the sandbox up, `alca run X` until the first screen; `--warm-rounds` times, each
  paired with `<engine> exec -it CONTAINER X` (the engine's own, with the same PATH) in the
  same round, so the ratio is taken within the round.

The first screen is the agent's own (tests/integration/agent_helpers.py has its pattern);
the time includes the agent's own start-up, which dominates warm starts.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.agent_helpers import AGENTS, AgentCase, first_screen  # noqa: E402
from tests.integration.isolation_helpers import ALCA, Project, Workspace  # noqa: E402

LIMIT = 120.0
POLL = 0.05  # the screen is read every 50 ms: the figures' resolution


def _screen(argv: list[str], case: AgentCase, project: Project) -> float:
    watched = first_screen(
        argv,
        case.screen,
        cwd=project.root,
        env=project.ws.env(**{case.key: "bench"}),
        limit=LIMIT,
        poll=POLL,
    )
    if not watched.matched:
        raise SystemExit(f"{case.name}: no first screen within {LIMIT} s:\n{watched.output}")
    return watched.seconds


def _cold(ws: Workspace, case: AgentCase, engine: str) -> tuple[Project, dict[str, float]]:
    project = Project(ws, engine, ws.base / f"{case.name}-{engine}")
    ws.projects.append(project)
    started = time.monotonic()
    project.ok("init", "--agent", case.name)
    (project.root / ".alca.local.toml").write_text(
        f'image = "{case.image}"\nruntime = "{engine}"\n\n[network]\nhost-ca = true\n'
    )
    project.ok("trust", "--yes")
    up = project.alca("up", timeout=900)
    if up.returncode != 0:
        raise SystemExit(str(up))
    up_done = time.monotonic() - started
    screen = _screen([*ALCA, "run", case.name], case, project)
    return project, {"up": up_done, "first_screen": time.monotonic() - started, "run": screen}


def _warm(project: Project, case: AgentCase, rounds: int) -> dict[str, list[float]]:
    path = "/root/.local/bin:/root/.npm-global/bin:/usr/local/bin:/usr/bin:/bin"
    engine_argv = [
        project.engine,
        "exec",
        "-it",
        "-w",
        "/workspace",
        "-e",
        f"PATH={path}",
        "-e",
        f"{case.key}=bench",
        project.container_name,
        case.name,
    ]
    times: dict[str, list[float]] = {"alca": [], "engine": []}
    for index in range(rounds):
        order = ["alca", "engine"] if index % 2 == 0 else ["engine", "alca"]
        for variant in order:
            argv = [*ALCA, "run", case.name] if variant == "alca" else engine_argv
            times[variant].append(_screen(argv, case, project))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agents", default=",".join(a.name for a in AGENTS))
    parser.add_argument("--engines", default="docker,podman")
    parser.add_argument("--warm-rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    wanted = args.agents.split(",")
    cases = [a for a in AGENTS if a.name in wanted]
    ws = Workspace("bench-agents", ALCA_TEST_HOST_LAYER_ONLY="")
    ws.install_helper()
    results: list[dict[str, Any]] = []
    try:
        for engine in args.engines.split(","):
            for case in cases:
                project, cold = _cold(ws, case, engine)
                warm = _warm(project, case, args.warm_rounds)
                ratios = [a / e for a, e in zip(warm["alca"], warm["engine"], strict=True)]
                row = {
                    "agent": case.name,
                    "engine": engine,
                    "cold_up_s": round(cold["up"], 2),
                    "cold_first_screen_s": round(cold["first_screen"], 2),
                    "warm_alca_s": round(statistics.median(warm["alca"]), 2),
                    "warm_engine_s": round(statistics.median(warm["engine"]), 2),
                    "warm_ratio": round(statistics.median(ratios), 3),
                }
                results.append(row)
                print(json.dumps(row), flush=True)
                project.ok("down")
    finally:
        problems = ws.cleanup()
        if problems:
            print("\n".join(problems), file=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    record = {"bench": "agent_start", "machine": platform.node(), "results": results}
    (args.out / f"agent_start-{stamp}.json").write_text(json.dumps(record, indent=2) + "\n")
    header = ("agent", "engine", "cold up", "cold 1st", "warm", "exec", "ratio")
    print("{:<9} {:<7} {:>8} {:>9} {:>6} {:>6} {}".format(*header))
    for r in results:
        print(
            f"{r['agent']:<9} {r['engine']:<7} {r['cold_up_s']:>8} {r['cold_first_screen_s']:>9} "
            f"{r['warm_alca_s']:>6} {r['warm_engine_s']:>6} {r['warm_ratio']}"
        )


if __name__ == "__main__":
    main()
