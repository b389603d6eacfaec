"""Issue 17's figures from `bench/commands.py`'s raw samples: ratios, verdicts, markdown.

Pure (no engine, no clock), so tests/unit/test_bench_commands.py pins it down. Samples are
`samples[engine][load][variant]`, a list of ms per round; `load` is "1" or "200" projects.
Round i of one variant ran in the same round as round i of every other variant and engine,
so ratios within a load are paired by round. Between loads, round i of the 1-project
phases is paired with round i of the 200-project phases (phases alternate A B B A).
"""

from __future__ import annotations

from typing import Any

import benchstats as stats

Samples = dict[str, dict[str, dict[str, list[float]]]]

LOADS = ("1", "200")
RUN_TARGET = 1.05
LOAD_TARGET = 1.1
PODMAN_TARGET = 1.2
GO_TOOL_MS = {"up_warm": 110.0, "status": 58.0, "up_cold": 450.0}
"""The Go tool's figures on Docker from issue 17 (it has no `list` figure)."""

RUN_PAIRS = {
    "pipes": ("exec", "run"),
    "pty": ("exec_tty", "run_tty"),
    "pipes, CLI forced": ("exec", "run_cli"),
}
"""`alca run true` variant against the engine exec it is compared with."""

VARIANTS = {
    "exec": "`<engine> exec -i … true` (what `alca run` execs on its CLI path)",
    "run": "`alca run true` (default path)",
    "run_cli": "`alca run true`, `ALCA_ENGINE_API=cli`",
    "exec_tty": "`<engine> exec -i -t … true` under a pty",
    "run_tty": "`alca run true` under a pty (default path)",
    "up_warm": "`alca up` (already up, no drift)",
    "status": "`alca status`",
    "list": "`alca list`",
    "up_cold": "`alca up` after `alca down` (cold)",
}
COMMANDS = ("up_warm", "status", "list", "up_cold")
ENGINE_NAMES = {"docker": "Docker", "podman": "Podman"}


def _ratio(baseline: list[float], candidate: list[float]) -> dict[str, Any]:
    """Paired ratios over the rounds both have (a run stopped by an error may end unevenly)."""
    count = min(len(baseline), len(candidate))
    return stats.ratio_summary(baseline[:count], candidate[:count]).as_dict()


def figures(samples: Samples) -> dict[str, Any]:
    """Every ratio issue 17 asks for, as `Summary.as_dict()`s, plus each variant's ms."""
    out: dict[str, Any] = {"run": {}, "ms": {}, "go": {}, "load": {}, "engines": {}}
    for engine, by_load in samples.items():
        for load, variants in by_load.items():
            for label, (base, candidate) in RUN_PAIRS.items():
                if base in variants and candidate in variants:
                    ratio = _ratio(variants[base], variants[candidate])
                    out["run"].setdefault(engine, {}).setdefault(load, {})[label] = ratio
            for variant, values in variants.items():
                summary = stats.summarize(values).as_dict()
                out["ms"].setdefault(engine, {}).setdefault(load, {})[variant] = summary
        for variant, go_ms in GO_TOOL_MS.items():
            measured = by_load.get("1", {}).get(variant)
            if engine == "docker" and measured:
                out["go"][variant] = stats.summarize([v / go_ms for v in measured]).as_dict()
        if all(load in by_load for load in LOADS):
            for variant in by_load["1"].keys() & by_load["200"].keys():
                ratio = _ratio(by_load["1"][variant], by_load["200"][variant])
                out["load"].setdefault(engine, {})[variant] = ratio
    docker, podman = samples.get("docker", {}), samples.get("podman", {})
    for load in docker.keys() & podman.keys():
        for variant in docker[load].keys() & podman[load].keys():
            ratio = _ratio(docker[load][variant], podman[load][variant])
            out["engines"].setdefault(load, {})[variant] = ratio
    return out


def _summary(data: dict[str, Any] | None) -> stats.Summary | None:
    if not data:
        return None
    return stats.Summary(
        int(data["n"]), data["median"], data["q1"], data["q3"], data["min"], data["max"]
    )


def _judged(data: dict[str, Any] | None, target: float | None) -> str:
    """`1.23 (IQR 1.10–1.40) not met`, or `–` when nothing was measured."""
    summary = _summary(data)
    if summary is None:
        return "–"
    text = stats.fmt_ratio(summary)
    if target is None:
        return text
    status = stats.verdict(summary, target, "max").status
    return f"{text} **{status}**" if status == "not met" else f"{text} {status}"


def _ms(data: dict[str, Any] | None) -> str:
    summary = _summary(data)
    return "–" if summary is None else stats.fmt_ms_summary(summary)


def run_table(found: dict[str, Any], engines: list[str]) -> str:
    names = [ENGINE_NAMES.get(e, e) for e in engines]
    lines = [
        "| `alca run true` ÷ engine exec | projects | " + " | ".join(names) + " | target |",
        "|---|---|" + "---|" * len(engines) + "---|",
    ]
    for label in RUN_PAIRS:
        target = None if "forced" in label else RUN_TARGET
        for load in LOADS:
            cells = [_judged(found["run"].get(e, {}).get(load, {}).get(label), target)
                     for e in engines]  # fmt: skip
            goal = f"≤ {RUN_TARGET}" if target else "–"
            lines.append(f"| {label} | {load} | " + " | ".join(cells) + f" | {goal} |")
    return "\n".join(lines)


def commands_table(found: dict[str, Any], engines: list[str]) -> str:
    lines = [
        "| command | engine | 1 project | ÷ Go tool (≤ 1) | 200 projects "
        f"| 200 ÷ 1 (≤ {LOAD_TARGET}) | Podman ÷ Docker, 1 project (≤ {PODMAN_TARGET}) |",
        "|---|---|---|---|---|---|---|",
    ]
    for variant in (*COMMANDS, "exec", "run", "run_cli", "exec_tty", "run_tty"):
        command = variant in COMMANDS
        for engine in engines:
            ms = found["ms"].get(engine, {})
            go = _judged(found["go"].get(variant), 1.0) if engine == "docker" else "–"
            load = _judged(
                found["load"].get(engine, {}).get(variant), LOAD_TARGET if command else None
            )
            versus = "–"
            if engine == "podman":
                versus = _judged(found["engines"].get("1", {}).get(variant),
                                 PODMAN_TARGET if command else None)  # fmt: skip
            lines.append(
                f"| {VARIANTS[variant]} | {ENGINE_NAMES.get(engine, engine)} "
                f"| {_ms(ms.get('1', {}).get(variant))} | {go} "
                f"| {_ms(ms.get('200', {}).get(variant))} | {load} | {versus} |"
            )
    return "\n".join(lines)


def render(results: dict[str, Any]) -> str:
    """The markdown report: the two tables, then how the run went."""
    engines = [e for e in results.get("engines", []) if e in results.get("samples", {})]
    found = figures(results.get("samples", {}))
    machine = results.get("machine", {})
    paths = ", ".join(
        f"{ENGINE_NAMES.get(e, e)}: {p}" for e, p in results.get("run_path", {}).items()
    )
    parts = [
        f"# Issue 17 figures ({results.get('mode', '?')} run)",
        "",
        f"{results.get('date', '?')}, alcatraz at `{machine.get('commit', '?')}`"
        f"{' (src modified)' if machine.get('src_modified') else ''}, "
        f"{results.get('rounds_per_load', '?')} rounds per number of projects, phases "
        f"{results.get('phases', '?')}, {results.get('duration_s', 0):.0f} s; load average "
        f"{machine.get('loadavg_start', '?')} → {machine.get('loadavg_end', '?')}. "
        f"Path `alca run` took by default: {paths or '?'}.",
        "",
        "Medians with the IQR; a ratio is the median of per-round ratios. The Go tool's "
        "figures are issue 17's (Docker: warm `up` 110, `status` 58, cold `up` 450 ms).",
        "",
        run_table(found, engines),
        "",
        commands_table(found, engines),
        "",
    ]
    if results.get("errors"):
        parts += ["## Errors", "", *(f"- {error}" for error in results["errors"]), ""]
    return "\n".join(parts)
