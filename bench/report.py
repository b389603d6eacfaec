"""Render `latest.json` as the markdown table the issue asks for, plus the details behind it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import benchstats as stats

SYNC_TEXT = "not measured yet: file sync not wired into alca"
Getter = Callable[[dict[str, Any]], dict[str, Any] | None]

RUN_VARIANTS = {
    "engine_cli": "`<engine> exec -i -e … -w /workspace <ctr> true` (what `alca run` execs)",
    "alca_run": "`alca run true`, console script as installed",
    "alca_run_clean": "`alca run true`, `python -S` (no site-packages `.pth` hooks)",
    "api_proto": "API prototype, today's `sandbox.enter` imports, as installed",
    "api_proto_clean": "API prototype, today's `sandbox.enter` imports, `python -S`",
    "api_proto_lean_clean": "API prototype, trimmed imports, `python -S`",
    "api_inprocess": "API exec alone, in-process (no interpreter start)",
}


def _summary(data: dict[str, Any] | None) -> stats.Summary | None:
    if not data:
        return None
    return stats.Summary(
        int(data["n"]), data["median"], data["q1"], data["q3"], data["min"], data["max"]
    )


def _dig(data: dict[str, Any], *path: str) -> dict[str, Any] | None:
    current: Any = data
    for key in path:
        if not isinstance(current, dict) or key not in current:
            return None
        current = current[key]
    return current if isinstance(current, dict) else None


ROWS: list[tuple[str, str, Getter, float, stats.Direction, str]] = [
    ("1", "`alca run true` ÷ engine exec (console script)",
     lambda e: _dig(e, "run", "ratio_vs_engine_cli", "alca_run"), 1.05, "max", "ratio"),
    ("1a", "same, `python -S` (this VM's `.pth` hooks excluded)",
     lambda e: _dig(e, "run", "ratio_vs_engine_cli", "alca_run_clean"), 1.05, "max", "ratio"),
    ("1b", "API prototype ÷ engine exec (today's imports)",
     lambda e: _dig(e, "run", "ratio_vs_engine_cli", "api_proto"), 1.05, "max", "ratio"),
    ("1c", "API prototype, `python -S`",
     lambda e: _dig(e, "run", "ratio_vs_engine_cli", "api_proto_clean"), 1.05, "max", "ratio"),
    ("1d", "API prototype, trimmed imports, `python -S`",
     lambda e: _dig(e, "run", "ratio_vs_engine_cli", "api_proto_lean_clean"), 1.05, "max",
     "ratio"),
    ("1e", "API exec in-process ÷ engine exec (client cost only)",
     lambda e: _dig(e, "run", "ratio_vs_engine_cli", "api_inprocess"), 1.0, "max", "ratio"),
    ("2", "warm `alca up` (already up, no drift)",
     lambda e: _dig(e, "up_warm", "summary_ms"), 150.0, "max", "ms"),
    ("3", "cold `alca up` ÷ raw `network create` + `run -d`",
     lambda e: _dig(e, "up_cold", "ratio"), 1.3, "max", "ratio"),
    ("4", "TCP connections/s, 200 projects ÷ 1 project",
     lambda e: _dig(e, "network", "conn_ratio"), 0.97, "min", "ratio"),
    ("4b", "bulk TCP throughput, 200 projects ÷ 1 project",
     lambda e: _dig(e, "network", "throughput_ratio"), 0.97, "min", "ratio"),
]  # fmt: skip


def _cell(
    summary: stats.Summary | None, target: float, direction: stats.Direction, kind: str
) -> str:
    if summary is None:
        return "–"
    text = stats.fmt_ms_summary(summary) if kind == "ms" else stats.fmt_ratio(summary)
    status = stats.verdict(summary, target, direction).status
    mark = {"met": "met", "not met": "**not met**", "borderline": "borderline"}[status]
    return f"{text} {mark}"


def summary_table(results: dict[str, Any]) -> str:
    engines = list(results["engines"])
    head = "| # | Measure | " + " | ".join(e.capitalize() for e in engines) + " | Target |"
    lines = [head, "|---|---|" + "---|" * len(engines) + "---|"]
    for number, label, get, target, direction, kind in ROWS:
        cells = []
        for engine in engines:
            data = results["engines"][engine]
            if not isinstance(data, dict) or data.get("status") != "ok":
                cells.append(f"skipped ({data.get('status') if isinstance(data, dict) else data})")
                continue
            cells.append(_cell(_summary(get(data)), target, direction, kind))
        sign = "≤" if direction == "max" else "≥"
        unit = " ms" if kind == "ms" else ""
        lines.append(
            f"| {number} | {label} | " + " | ".join(cells) + f" | {sign} {target:g}{unit} |"
        )
    rows: dict[str, list[str]] = {"to": [], "back": [], "initial": []}
    for engine in engines:
        data = results["engines"][engine]
        sync = data.get("sync") if isinstance(data, dict) else None
        if not sync:
            for cells in rows.values():
                cells.append("–")
        elif sync.get("status") == "measured":
            for key, prefix in (("to", ""), ("back", "back_")):
                summary = sync.get(f"{prefix}summary_ms")
                p95 = sync.get(f"{prefix}p95_ms")
                rows[key].append(
                    f"{stats.fmt_ms_summary(_summary(summary))}, p95 {p95:.0f} ms"  # type: ignore[arg-type]
                    if summary and p95 is not None
                    else "–"
                )
            initial = sync.get("initial_sync_10k_s")
            rows["initial"].append(f"{initial:.1f} s" if initial else "–")
        else:
            text = f"{sync.get('text', SYNC_TEXT)} ({sync.get('why', '')})"
            for cells in rows.values():
                cells.append(text)
    lines.append(
        "| 5 | Mutagen host→container latency | "
        + " | ".join(rows["to"])
        + " | median ≤ 150 ms, p95 ≤ 500 ms |"
    )
    lines.append(
        "| 5b | Mutagen container→host latency | "
        + " | ".join(rows["back"])
        + " | median ≤ 150 ms, p95 ≤ 500 ms |"
    )
    lines.append(
        "| 5c | cold `alca up` of a 10,000-file synced project | "
        + " | ".join(rows["initial"])
        + " | – |"
    )
    return "\n".join(lines)


def _grouped_profile(profile: dict[str, Any]) -> str:
    """A cold `up` profile, same steps summed: where the time goes, largest first."""
    groups: dict[str, list[float]] = {}
    for step in profile["steps"]:
        groups.setdefault(str(step["step"]), []).append(float(step["ms"]))
    lines = [
        f"\nCold `alca up` with ALCA_DEBUG=1 ({profile['total_ms']:.0f} ms, external commands "
        f"{profile['external_ms']:.0f} ms), steps grouped:\n",
        "| step | count | ms |",
        "|---|---|---|",
    ]
    for label, values in sorted(groups.items(), key=lambda item: -sum(item[1])):
        lines.append(f"| {label} | {len(values)} | {sum(values):.1f} |")
    return "\n".join(lines)


def details(results: dict[str, Any]) -> str:
    out: list[str] = []
    for engine, data in results["engines"].items():
        if not isinstance(data, dict) or data.get("status") != "ok":
            continue
        out.append(f"\n### {engine.capitalize()}\n")
        run = data.get("run")
        if run:
            out.append("Item 1, wall time per call (ms, median and IQR):\n")
            out.append("| variant | median | IQR | ratio ÷ engine exec |")
            out.append("|---|---|---|---|")
            for name, label in RUN_VARIANTS.items():
                summary = _summary(run["summary_ms"].get(name))
                ratio = _summary(run["ratio_vs_engine_cli"].get(name))
                if summary is None or ratio is None:
                    continue
                out.append(
                    f"| {label} | {summary.median:.1f} | {summary.q1:.1f}–{summary.q3:.1f} | "
                    f"{stats.fmt_ratio(ratio)} |"
                )
            steps = run.get("api_steps_ms")
            if steps:
                parts = ", ".join(f"{k} {v:.2f}" for k, v in steps.items())
                out.append(f"\nAPI exec steps (ms, in-process medians): {parts}.")
            api = data.get("api", {})
            if api.get("service_start_ms"):
                out.append(
                    f"`podman system service` answered after {api['service_start_ms']:.0f} ms."
                )
        profile = data.get("up_profile")
        if profile:
            out.append(
                f"\nWarm `alca up` with ALCA_DEBUG=1 (median of {profile['runs']} runs; total "
                f"{profile['total_ms']:.0f} ms, of which external commands "
                f"{profile['external_ms']:.0f} ms):\n"
            )
            out.append("| step | ms |")
            out.append("|---|---|")
            for step in profile["steps"]:
                out.append(f"| {step['step']} | {step['ms']:.1f} |")
            shutdown = profile.get("shutdown_ms")
            if shutdown:
                parts = ", ".join(f"{k}: {v:.1f} ms" for k, v in shutdown.items())
                out.append(f"\nInterpreter shutdown after `up` ({parts}).")
        cold = data.get("up_cold")
        if cold:
            a = _summary(cold["alca_summary_ms"])
            r = _summary(cold["raw_summary_ms"])
            if a and r:
                out.append(
                    f"\nCold up: alca {stats.fmt_ms_summary(a)}, raw {stats.fmt_ms_summary(r)}."
                )
            if cold.get("profile"):
                out.append(_grouped_profile(cold["profile"]))
        net = data.get("network")
        if net:
            ca, cb = (_summary(net["conn_summary"][k]) for k in ("A", "B"))
            ta, tb = (_summary(net["throughput_summary"][k]) for k in ("A", "B"))
            if ca and cb and ta and tb:
                out.append(
                    f"\nTCP: {ca.median:.0f} conn/s with 1 project vs {cb.median:.0f} with 200 "
                    f"({net['connections_per_slot']} connections per slot); bulk "
                    f"{ta.median:.0f} vs {tb.median:.0f} MB/s ({net['bulk_mib']} MiB uploads). "
                    f"Loading 199 projects took "
                    + ", ".join(f"{s:.2f}" for s in net["load_199_s"])
                    + " s."
                )
            costs = net.get("nft_command_ms") or {}
            if "A" in costs and "B" in costs:
                out.append("\n| nft command (ms, median of 5) | 1 project | 200 projects |")
                out.append("|---|---|---|")
                for label in costs["A"]:
                    out.append(
                        f"| {label} | {costs['A'][label]:.1f} | {costs['B'].get(label, 0):.1f} |"
                    )
                out.append("")
            loaded = net.get("with_200_projects") or {}
            up, run_ms = _summary(loaded.get("up_warm_ms")), _summary(loaded.get("alca_run_ms"))
            if up and run_ms:
                out.append(
                    f"With 200 projects loaded: warm `alca up` {stats.fmt_ms_summary(up)}, "
                    f"`alca run true` {stats.fmt_ms_summary(run_ms)}."
                )
        sync = data.get("sync") or {}
        if sync.get("status") == "measured":
            out.append(
                f"\nFile sync: a file written on the host was seen inside after "
                f"{stats.fmt_ms_summary(_summary(sync['summary_ms']))}"  # type: ignore[arg-type]
                f" (n={sync['summary_ms']['n']}); `alca up` with a synced workdir took "
                f"{sync['cold_up_with_sync_s']:.2f} s cold."
            )
    imports = results.get("imports")
    if imports:
        out.append("\n### Imports (`-X importtime`, medians, ms)\n")
        for label, data in imports.items():
            top = ", ".join(f"{name} {ms:.1f}" for name, ms in data["top"][:6])
            watched = ", ".join(f"{name} {ms:.1f}" for name, ms in data["watched"].items())
            out.append(f"- **{label}**: total {data['total_ms']:.1f}; top: {top}")
            out.append(f"  - where the usual suspects landed: {watched}")
    return "\n".join(out)


def render(results: dict[str, Any]) -> str:
    machine = results["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in machine.get("engines", {}).items())
    header = (
        f"## alcatraz benchmark, {results['date']} ({results['mode']})\n\n"
        f"Machine: {machine['nproc']} CPUs, kernel {machine['kernel']}, Python "
        f"{machine['python']}, {versions}; load average {machine['loadavg_start']} at start, "
        f"{machine.get('loadavg_end', '?')} at the end. alcatraz at {machine.get('commit') or '?'}"
        f"{' (src modified)' if machine.get('src_modified') else ''}. "
        f"Run took {results['duration_s']:.0f} s.\n"
    )
    if machine.get("pth_hooks"):
        header += (
            f"\nNote: this interpreter's site-packages runs code at every start "
            f"({', '.join(machine['pth_hooks'])}), which `alca` pays and `docker` does not; "
            "the `python -S` rows show alcatraz without it.\n"
        )
    errors = results.get("errors") or []
    tail = ("\n\nErrors:\n" + "\n".join(f"- {e}" for e in errors)) if errors else ""
    notes = results.get("notes") or []
    tail += ("\n\nNotes:\n" + "\n".join(f"- {n}" for n in notes)) if notes else ""
    return (
        header
        + "\n"
        + summary_table(results)
        + "\n\nRatios are medians of per-round ratios (IQR in brackets); every variant ran once "
        "per round in a shuffled order.\n" + details(results) + tail + "\n"
    )
