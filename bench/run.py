"""alcatraz's benchmark harness (issue #6): one command, a JSON result and a markdown table.

    sudo python bench/run.py [--quick] [--engines docker,podman] [--out bench/results]

Needs root (nftables, a network namespace for the lab host), the engines, and the
`alpine:3.21` image in each (`bash scripts/setup-test-env.sh` prepares all of it). A full
run takes about 5 minutes, `--quick` about 1.5. Everything it creates (sandboxes, the
raw-comparison container and network, the lab namespace, the podman API service, the
dummy projects' rules) is removed before it exits, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import engine_api
import measure
import netlab
import report
from sandboxes import BENCH, IMAGE, Sandbox, bench_env, console_script, stop_leftovers

#: How many samples each item takes: `FULL` is the ~5 minute run, `QUICK` the smoke run.
FULL = {
    "rounds": 30,  # item 1: rounds of every variant
    "up_runs": 20,  # item 2
    "profile_runs": 5,  # ALCA_DEBUG step profile and shutdown cost
    "cold_cycles": 6,  # item 3: alca/raw pairs
    "net_slots": 12,  # item 4: ABBA slots (pairs = slots / 2)
    "conn_seconds": 1.5,  # item 4: connection loop length per slot
    "mib": 20,  # item 4: size of each bulk upload
    "import_runs": 5,  # -X importtime runs per path
    "side_runs": 5,  # nft command costs, up/run with 200 projects
    "sync_samples": 50,  # item 5 (each direction)
}
QUICK = dict(
    FULL,
    rounds=6,
    up_runs=4,
    profile_runs=1,
    cold_cycles=1,
    net_slots=2,
    conn_seconds=1.0,
    import_runs=1,
    side_runs=1,
    sync_samples=3,
)


def progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _output(argv: list[str]) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return proc.stdout.strip() if proc.returncode == 0 else ""


def pth_hooks() -> list[str]:
    """`.pth` files in site-packages that run code at interpreter start (not plain paths)."""
    found = []
    for path in sorted(Path(sysconfig.get_path("purelib")).glob("*.pth")):
        with contextlib.suppress(OSError):
            lines = path.read_text(errors="replace").splitlines()
            if any(line.startswith("import ") for line in lines):
                found.append(path.name)
    return found


def machine_info(engines: list[str]) -> dict[str, Any]:
    versions = {}
    if "docker" in engines:
        versions["Docker"] = _output(["docker", "version", "--format", "{{.Server.Version}}"])
        versions["docker CLI"] = _output(["docker", "version", "--format", "{{.Client.Version}}"])
    if "podman" in engines:
        versions["Podman"] = _output(["podman", "version", "--format", "{{.Version}}"])
    versions["nft"] = _output(["nft", "--version"]).replace("nftables ", "")
    return {
        "nproc": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "engines": versions,
        "loadavg_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "pth_hooks": pth_hooks(),
        "alca": console_script(),
        "commit": _output(["git", "-C", str(BENCH.parent), "rev-parse", "--short", "HEAD"]),
        "src_modified": bool(
            _output(["git", "-C", str(BENCH.parent), "status", "--porcelain", "--", "src"])
        ),
    }


def engine_ready(engine: str) -> str | None:
    """None when `engine` answers and has the image; else why it is skipped."""
    probe = "{{.Server.Version}}" if engine == "docker" else "{{.Version}}"
    if not _output([engine, "version", "--format", probe]):
        return f"{engine} not available"
    if not _output([engine, "image", "inspect", "--format", "{{.Id}}", IMAGE]):
        return f"image {IMAGE} missing (run scripts/setup-test-env.sh)"
    return None


def bench_engine(
    engine: str,
    workdir: Path,
    env: dict[str, str],
    alca: str,
    plan: dict[str, Any],
    the_lab: netlab.Lab | None,
    cleanup: contextlib.ExitStack,
    errors: list[str],
) -> dict[str, Any]:
    """Items 1–5 on one engine; a failing item is recorded and the others still run."""
    result: dict[str, Any] = {"status": "ok"}
    sandbox = Sandbox.create(engine, workdir, env, alca)
    cleanup.callback(sandbox.down)
    progress(f"{engine}: first alca up (compiles bytecode)")
    result["first_up_s"] = sandbox.up()
    socket_path: str | None = None
    with contextlib.ExitStack() as api:  # the podman service runs for item 1 only
        try:
            if engine == "docker":
                socket_path = engine_api.default_socket("docker")  # honours DOCKER_HOST
                result["api"] = {"socket": socket_path}
            else:
                socket_path, ready_ms = api.enter_context(measure.podman_service(workdir))
                result["api"] = {"socket": socket_path, "service_start_ms": ready_ms}
        except Exception as error:
            errors.append(f"{engine}: API socket unavailable: {error}")
            socket_path = None
        progress(f"{engine}: item 1 (alca run vs exec)")
        _step(
            result,
            "run",
            errors,
            engine,
            lambda: measure.bench_run(sandbox, socket_path, plan["rounds"], progress),
        )
    progress(f"{engine}: item 2 (warm up)")
    _step(
        result, "up_warm", errors, engine, lambda: measure.bench_up_warm(sandbox, plan["up_runs"])
    )
    _step(
        result,
        "up_profile",
        errors,
        engine,
        lambda: measure.profile_up(sandbox, plan["profile_runs"]),
    )
    if the_lab is not None:
        progress(f"{engine}: item 4 (TCP, 1 vs 200 projects)")
        lab_ = the_lab
        _step(
            result,
            "network",
            errors,
            engine,
            lambda: measure.bench_network(
                sandbox,
                lab_,
                plan["net_slots"],
                plan["conn_seconds"],
                plan["mib"],
                progress,
                side_runs=plan["side_runs"],
            ),
        )
    progress(f"{engine}: item 3 (cold up vs raw)")
    _step(
        result,
        "up_cold",
        errors,
        engine,
        lambda: measure.bench_up_cold(
            sandbox, plan["cold_cycles"], progress, max(1, plan["profile_runs"] // 2)
        ),
    )
    progress(f"{engine}: item 5 (file sync latency)")
    _step(
        result,
        "sync",
        errors,
        engine,
        lambda: measure.bench_sync(workdir, env, alca, engine, plan["sync_samples"]),
    )
    with contextlib.suppress(Exception):
        sandbox.up()  # leave it up for the import profile
    return result


def _step(
    result: dict[str, Any], name: str, errors: list[str], engine: str, step: Callable[[], Any]
) -> None:
    """Run one item; a failure is recorded (and printed) and the other items still run."""
    try:
        result[name] = step()
    except KeyboardInterrupt:
        raise
    except Exception as error:
        errors.append(f"{engine}: {name}: {error}")
        traceback.print_exc()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a ~1.5 minute smoke run (too few samples to judge targets)",
    )
    parser.add_argument("--engines", default="docker,podman", help="comma-separated")
    parser.add_argument("--out", default=str(BENCH / "results"), help="output directory")
    parser.add_argument("--no-network", action="store_true", help="skip item 4 (the lab)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("bench/run.py needs root (nftables, a network namespace)", file=sys.stderr)
        return 77
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    plan = QUICK if args.quick else FULL
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    alca = console_script()
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "mode": "quick" if args.quick else "full",
        "plan": plan,
        "machine": machine_info(engines),
        "engines": {},
        "errors": [],
        "notes": [],
    }
    errors: list[str] = results["errors"]
    workdir = Path(tempfile.mkdtemp(prefix="alcabench-")).resolve()
    env = bench_env(workdir, out / ".pycache")

    def on_term(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    the_lab: netlab.Lab | None = None
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(lambda: subprocess.run(["rm", "-rf", str(workdir)], check=False))
        cleanup.callback(lambda: results["notes"].extend(stop_leftovers(workdir)))
        subprocess.run(
            [alca, "network-helper", "install", "--yes"],
            cwd=workdir, env=env, capture_output=True, check=True,
        )  # fmt: skip
        if not args.no_network:
            the_lab = netlab.Lab()
            cleanup.callback(lambda: errors.extend(the_lab.close() if the_lab else []))
            try:
                the_lab.open()
            except netlab.LabError as error:
                errors.append(f"lab: {error}")
                the_lab.close()
                the_lab = None
        first: Sandbox | None = None
        for engine in engines:
            why = engine_ready(engine)
            if why:
                results["engines"][engine] = {"status": f"skipped: {why}"}
                continue
            progress(f"{engine}: starting")
            results["engines"][engine] = bench_engine(
                engine, workdir, env, alca, plan, the_lab, cleanup, errors
            )
            if first is None:
                first = Sandbox(engine, workdir / f"project-{engine}", env, alca)
        if first is not None:
            progress("import profile")
            try:
                first.up()
                results["imports"] = measure.import_profile(first, plan["import_runs"])
            except Exception as error:
                errors.append(f"imports: {error}")
            try:
                results["sync"] = measure.bench_sync(workdir, env, alca, first.engine)
            except Exception as error:
                errors.append(f"sync: {error}")
                results["sync"] = {"status": "placeholder", "text": measure.SYNC_PLACEHOLDER,
                                   "why": str(error)[:200]}  # fmt: skip
    results["machine"]["loadavg_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    results["duration_s"] = time.perf_counter() - started
    markdown = report.render(results)
    (out / "latest.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    (out / "latest.md").write_text(markdown)
    print(markdown)
    return 1 if errors else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("bench: interrupted; everything it had created was removed", file=sys.stderr)
        sys.exit(130)
