"""Egress by name against an open internet: bulk TCP and connection rate, side by side.

    sudo python bench/egress.py                    # Docker and Podman, ~3 minutes
    sudo python bench/egress.py --engines docker --slots 4 --mib 128

Two sandboxes per engine on the bench lab (`netlab`: a host in a network namespace whose
address 203.0.113.234 also answers DNS): A without `network.egress`, B with `egress =
["bench.alca.test"]`, both asking the lab's DNS (`network.dns`), so their only difference is
the egress filter, the nft sets and the name checker every TCP connection of B goes
through. Slots run A B B A …; in each slot the lab host measures a connection loop of
busybox `nc` (accept timestamps) and uploads of `--mib` MiB (first to last byte). The
ratio B/A is taken within each pair of slots, its median and IQR reported (goals: bulk ≥
0.9, connections ≥ 0.8). Writes bench/results/egress.md and .json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import benchstats as stats
import measure
import netlab
from sandboxes import BENCH, IMAGE, Sandbox, SandboxError, bench_env, console_script

NAME = "bench.alca.test"
GOALS = {"throughput": 0.9, "connections": 0.8}


def _project(engine: str, workdir: Path, env: dict[str, str], alca: str, egress: bool) -> Sandbox:
    root = workdir / f"project-{engine}-{'egress' if egress else 'open'}"
    root.mkdir(parents=True)
    lines = [f'image = "{IMAGE}"', f'runtime = "{engine}"', "[network]"]
    lines.append(f'dns = ["{netlab.LAB_ADDR}"]')
    if egress:
        lines.append(f'egress = ["{NAME}"]')
    (root / ".alca.toml").write_text("\n".join(lines) + "\n")
    sandbox = Sandbox(engine, root, env, alca)
    sandbox.alca_cmd(["trust", "--yes"])
    sandbox.up()
    return sandbox


def _resolve(sandbox: Sandbox) -> None:
    """Ask the name through the sandbox's resolver, so B's sets hold the lab address."""
    argv = [sandbox.engine, "exec", sandbox.container, "nslookup", NAME]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if netlab.LAB_ADDR not in done.stdout:
        raise SandboxError(f"{NAME} did not resolve in {sandbox.root.name}: {done.stdout!r}")


def bench_engine(
    engine: str,
    workdir: Path,
    env: dict[str, str],
    alca: str,
    lab: netlab.Lab,
    args: argparse.Namespace,
) -> dict[str, object]:
    sandboxes = {
        "A": _project(engine, workdir, env, alca, egress=False),
        "B": _project(engine, workdir, env, alca, egress=True),
    }
    try:
        for sandbox in sandboxes.values():
            _resolve(sandbox)
        count = args.connections
        rates: dict[str, list[float]] = {"A": [], "B": []}
        bulk: dict[str, list[float]] = {"A": [], "B": []}
        order = stats.abba(args.slots)
        for index, config in enumerate(order):
            print(f"{engine}: slot {index + 1}/{args.slots} ({config})", file=sys.stderr)
            sandbox = sandboxes[config]
            _resolve(sandbox)
            time.sleep(0.5)
            rates[config].append(
                stats.median([measure._conn_rate(sandbox, lab, count) for _ in "ab"])
            )
            bulk[config].append(
                stats.median([measure._throughput(sandbox, lab, args.mib) for _ in "abc"])
            )
        a_rates, b_rates = _pairs(order, rates)
        a_bulk, b_bulk = _pairs(order, bulk)
        return {
            "connections_per_slot": count,
            "bulk_mib": args.mib,
            "conn_per_s": rates,
            "throughput_mb_s": bulk,
            "conn_ratio": stats.ratio_summary(a_rates, b_rates).as_dict(),
            "throughput_ratio": stats.ratio_summary(a_bulk, b_bulk).as_dict(),
        }
    finally:
        for sandbox in sandboxes.values():
            sandbox.down()


def _pairs(order: list[str], values: dict[str, list[float]]) -> tuple[list[float], list[float]]:
    """Slot values in A B B A order, paired within each two consecutive slots."""
    seen = {"A": 0, "B": 0}
    by_slot: list[tuple[str, float]] = []
    for config in order:
        by_slot.append((config, values[config][seen[config]]))
        seen[config] += 1
    a: list[float] = []
    b: list[float] = []
    for first, second in zip(by_slot[0::2], by_slot[1::2], strict=False):
        pair = dict([first, second])
        a.append(pair["A"])
        b.append(pair["B"])
    return a, b


def render(results: dict[str, dict[str, object]]) -> str:
    lines = [
        "| engine | bulk MB/s open → egress | bulk ratio (goal ≥ 0.9) | conn/s open → egress "
        "| conn ratio (goal ≥ 0.8) |",
        "|---|---|---|---|---|",
    ]
    for engine, data in results.items():
        if "error" in data:
            lines.append(f"| {engine} | error: {data['error']} | | | |")
            continue
        bulk = data["throughput_mb_s"]
        conn = data["conn_per_s"]
        assert isinstance(bulk, dict) and isinstance(conn, dict)
        tr = data["throughput_ratio"]
        cr = data["conn_ratio"]
        assert isinstance(tr, dict) and isinstance(cr, dict)
        lines.append(
            f"| {engine} | {stats.median(bulk['A']):.0f} → {stats.median(bulk['B']):.0f} "
            f"| {tr['median']:.3f} (IQR {tr['q1']:.3f}–{tr['q3']:.3f}) "
            f"| {stats.median(conn['A']):.0f} → {stats.median(conn['B']):.0f} "
            f"| {cr['median']:.3f} (IQR {cr['q1']:.3f}–{cr['q3']:.3f}) |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--engines", default="docker,podman")
    parser.add_argument("--slots", type=int, default=6)
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--connections", type=int, default=300)
    parser.add_argument("--out", type=Path, default=BENCH / "results")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("run as root (network namespaces, nftables)", file=sys.stderr)
        return 2
    alca = console_script()
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, object]] = {}
    with contextlib.ExitStack() as cleanup:
        workdir = Path(tempfile.mkdtemp(prefix="alcabench-egress-")).resolve()
        cleanup.callback(lambda: subprocess.run(["rm", "-rf", str(workdir)], check=False))
        env = bench_env(workdir, args.out / ".pycache")
        subprocess.run(
            [alca, "network-helper", "install", "--yes"],
            cwd=workdir, env=env, capture_output=True, check=True,
        )  # fmt: skip
        lab = netlab.Lab(dns=True)
        cleanup.callback(lab.close)
        lab.open()
        for engine in args.engines.split(","):
            try:
                results[engine] = bench_engine(engine, workdir, env, alca, lab, args)
            except (SandboxError, subprocess.SubprocessError, OSError) as error:
                results[engine] = {"error": str(error)[:300]}
    table = render(results)
    print(table)
    (args.out / "egress.md").write_text(table)
    (args.out / "egress.json").write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
