"""The five measurements of issue #6, one function each; `bench/run.py` orchestrates them.

Each returns a JSON-ready dict. Samples are kept raw (in ms, conn/s or MB/s) next to their
summaries, so a later reader can recompute anything.
"""

from __future__ import annotations

import contextlib
import importlib.util
import ipaddress
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import benchstats as stats
import engine_api
import netlab
from sandboxes import SRC, Sandbox, SandboxError, timed

Progress = Callable[[str], None]


# --- item 1: alca run vs the engine's exec -----------------------------------------------


def engine_cli_argv(sandbox: Sandbox) -> list[str]:
    """Exactly the argv `alca run true` execs (read from its ALCA_DEBUG line)."""
    proc = sandbox.alca_cmd(["run", "true"], debug=True)
    for line in proc.stderr.splitlines():
        if line.startswith("→ Executing: "):
            return shlex.split(line[len("→ Executing: ") :])
    return sandbox.exec_argv(["true"])


@contextlib.contextmanager
def podman_service(workdir: Path) -> Iterator[tuple[str, float]]:
    """`podman system service` on a private socket, stopped by pid afterwards."""
    path = workdir / "podman.sock"
    started = time.perf_counter()
    proc = subprocess.Popen(
        ["podman", "system", "service", "--time=0", f"unix://{path}"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        ready = None
        for _ in range(500):
            with contextlib.suppress(OSError, engine_api.ApiError):
                sock = engine_api.connect(str(path))
                with sock:
                    status, _ = engine_api.call(sock, "GET", "/_ping")
                if status == 200:
                    ready = time.perf_counter() - started
                    break
            time.sleep(0.01)
        if ready is None:
            raise SandboxError("podman system service did not answer within 5 s")
        yield str(path), ready * 1000
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _inprocess_exec(sandbox: Sandbox, socket_path: str) -> Callable[[], float]:
    container = sandbox.container
    devnull = os.open(os.devnull, os.O_WRONLY)

    def run() -> float:
        started = time.perf_counter_ns()
        code = engine_api.exec_run(
            socket_path,
            container,
            ["true"],
            workdir="/workspace",
            stdin_fd=None,
            out_fd=devnull,
            err_fd=devnull,
        )
        if code != 0:
            raise SandboxError(f"API exec returned {code}")
        return (time.perf_counter_ns() - started) / 1e6

    return run


def api_call_breakdown(sandbox: Sandbox, socket_path: str, rounds: int) -> dict[str, float]:
    """Median time of each API step, in-process (where the API path spends its time)."""
    steps: dict[str, list[float]] = {}
    for _ in range(rounds):
        last = [time.perf_counter()]

        def timer(label: str, last: list[float] = last) -> None:
            now = time.perf_counter()
            steps.setdefault(label, []).append((now - last[0]) * 1000)
            last[0] = now

        engine_api.exec_run(
            socket_path, sandbox.container, ["true"], workdir="/workspace", stdin_fd=None,
            timer=timer,
        )  # fmt: skip
    return {label: stats.median(values) for label, values in steps.items()}


def bench_run(
    sandbox: Sandbox, socket_path: str | None, rounds: int, progress: Progress
) -> dict[str, object]:
    """Item 1: every variant once per round, in a shuffled order; ratios per round."""
    argvs = sandbox.run_variants(socket_path)
    argvs["engine_cli"] = engine_cli_argv(sandbox)
    env = dict(sandbox.env)
    if socket_path:
        env["ALCA_BENCH_SOCKET"] = socket_path
    runners: dict[str, Callable[[], float]] = {
        name: (lambda argv=argv: timed(argv, cwd=sandbox.root, env=env))
        for name, argv in argvs.items()
    }
    if socket_path:
        runners["api_inprocess"] = _inprocess_exec(sandbox, socket_path)
    for runner in runners.values():  # warm-up: bytecode, page cache, the daemon's paths
        runner()
        runner()
    samples: dict[str, list[float]] = {name: [] for name in runners}
    plan = stats.schedule(sorted(runners), rounds, seed=len(sandbox.engine))
    for index, order in enumerate(plan):
        if index % 10 == 0:
            progress(f"{sandbox.engine}: item 1 round {index + 1}/{rounds}")
        for name in order:
            samples[name].append(runners[name]())
    base = samples["engine_cli"]
    result: dict[str, object] = {
        "argv": dict(argvs),
        "samples_ms": samples,
        "summary_ms": {n: stats.summarize(v).as_dict() for n, v in samples.items()},
        "ratio_vs_engine_cli": {
            n: stats.ratio_summary(base, v).as_dict() for n, v in samples.items()
        },
    }
    if socket_path:
        result["api_steps_ms"] = api_call_breakdown(sandbox, socket_path, max(5, rounds // 3))
    return result


# --- item 2: warm `alca up`, and where its time goes ------------------------------------


def bench_up_warm(sandbox: Sandbox, runs: int) -> dict[str, object]:
    sandbox.up()  # make sure it is up, rules loaded, no drift
    samples = [sandbox.up() * 1000 for _ in range(runs)]
    return {"samples_ms": samples, "summary_ms": stats.summarize(samples).as_dict()}


def _step_label(line: str) -> str:
    text = line.strip()
    if text.startswith("→ Executing: "):
        words = shlex.split(text[len("→ Executing: ") :])
        keep = [
            "<id>" if len(w) == 64 and all(c in "0123456789abcdef" for c in w) else w
            for w in words[:5]
            if not w.startswith("{{")
        ]
        return "exec: " + " ".join(keep[:3] if keep[0] != "nft" else keep[:4])
    return "alca: " + text.lstrip("→✓ ").split(":")[0][:40]


def profile_up(sandbox: Sandbox, runs: int, *, cold: bool = False) -> dict[str, object]:
    """Where `alca up` spends its time: every ALCA_DEBUG line, timestamped.

    The interval before the first line is interpreter start-up, imports and config
    loading; an `exec:` interval is one external command (until the next line). `cold`
    takes the sandbox down (untimed) before each run.
    """
    per_run: list[list[tuple[str, float]]] = []
    for _ in range(runs):
        if cold:
            sandbox.down()
        env = dict(sandbox.env, ALCA_DEBUG="1", PYTHONUNBUFFERED="1")
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sandbox.alca, "up"],
            cwd=sandbox.root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert proc.stdout is not None
        marks: list[tuple[str, float]] = [("start-up, imports, config load", started)]
        for line in proc.stdout:
            if line.startswith("  stderr:"):
                continue
            marks.append((_step_label(line), time.perf_counter()))
        proc.wait()
        ended = time.perf_counter()
        marks[-1] = ("after the last line: interpreter shutdown", marks[-1][1])
        steps = [
            (label, (marks[i + 1][1] if i + 1 < len(marks) else ended) - at)
            for i, (label, at) in enumerate(marks)
        ]
        per_run.append([(label, ms * 1000) for label, ms in steps])
    # Runs have the same shape when nothing changed; take the median per position.
    shape = [label for label, _ in per_run[0]]
    same = [r for r in per_run if [label for label, _ in r] == shape]
    steps_ms = [
        {"step": label, "ms": stats.median([r[i][1] for r in same])}
        for i, label in enumerate(shape)
    ]
    external = sum(s["ms"] for s in steps_ms if str(s["step"]).startswith("exec:"))
    total = sum(float(s["ms"]) for s in steps_ms)
    result: dict[str, object] = {
        "steps": steps_ms,
        "external_ms": external,
        "total_ms": total,
        "runs": len(same),
    }
    if not cold:
        result["shutdown_ms"] = shutdown_cost(sandbox, runs)
    return result


SHUTDOWN = (
    "import os, sys, gc; from alcatraz.cli import main; code = main(['up', '-q']); {extra}"
    "os.write(1, b'done\\n')"
)


def shutdown_cost(sandbox: Sandbox, runs: int) -> dict[str, float]:
    """Interpreter shutdown after `up` (its final garbage collection), and with gc.freeze()."""
    result: dict[str, float] = {}
    for label, extra in (("as is", ""), ("gc.freeze() before exit", "gc.freeze(); ")):
        samples = []
        for _ in range(runs):
            proc = subprocess.Popen(
                [sys.executable, "-c", SHUTDOWN.format(extra=extra)],
                cwd=sandbox.root,
                env=sandbox.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
            )
            assert proc.stdout is not None
            proc.stdout.readline()
            started = time.perf_counter()
            proc.wait()
            samples.append((time.perf_counter() - started) * 1000)
        result[label] = stats.median(samples)
    return result


# --- item 3: cold `alca up` vs raw network create + run -d -------------------------------


def _debug_commands(output: str) -> list[list[str]]:
    return [
        shlex.split(line.strip()[len("→ Executing: ") :])
        for line in output.splitlines()
        if line.strip().startswith("→ Executing: ")
    ]


def _free_subnet() -> str:
    taken = []
    for route in json.loads(netlab.sh(["ip", "-j", "-4", "route", "show", "table", "all"]) or "[]"):
        dst = route.get("dst", "")
        if dst and dst != "default":
            taken.append(ipaddress.ip_network(dst, strict=False))
    for candidate in ipaddress.ip_network("172.29.0.0/16").subnets(new_prefix=24):
        if not any(candidate.overlaps(t) for t in taken):
            return str(candidate)
    raise SandboxError("no free /24 in 172.29.0.0/16 for the raw comparison")


def raw_equivalent(sandbox: Sandbox, output: str) -> tuple[list[str], list[str], str, str]:
    """`network create` and `run -d` with alca's own options, under other names.

    Labels are swapped for neutral ones (same count), so no alcatraz command mistakes the
    raw container for a sandbox.
    """
    commands = _debug_commands(output)
    engine = sandbox.engine
    net = next(c for c in commands if c[:3] == [engine, "network", "create"])
    create = next(c for c in commands if c[:2] == [engine, "create"])
    net_name, ctr_name = "alcabench-raw-net", "alcabench-raw"
    subnet = _free_subnet()
    gateway = str(next(ipaddress.ip_network(subnet).hosts()))

    def relabel(argv: list[str]) -> list[str]:
        out: list[str] = []
        count = 0
        for i, word in enumerate(argv):
            if i > 0 and argv[i - 1] == "--label":
                count += 1
                out.append(f"alcabench.raw{count}=1")
            else:
                out.append(word)
        return out

    raw_net = relabel(net)
    for i, word in enumerate(raw_net):
        if raw_net[i - 1] == "--subnet":
            raw_net[i] = subnet
        elif raw_net[i - 1] == "--gateway":
            raw_net[i] = gateway
        elif word.startswith("com.docker.network.bridge.name="):
            raw_net[i] = "com.docker.network.bridge.name=abench-raw"
    raw_net[-1] = net_name
    raw_run = relabel([engine, "run", "-d", *create[2:]])
    for i in range(1, len(raw_run)):
        if raw_run[i - 1] == "--name":
            raw_run[i] = ctr_name
        elif raw_run[i - 1] == "--network":
            raw_run[i] = net_name
    return raw_net, raw_run, ctr_name, net_name


def _raw_cleanup(engine: str, container: str, network: str) -> None:
    rm = [engine, "rm", "-f", *(["-t", "0"] if engine == "podman" else []), container]
    subprocess.run(rm, capture_output=True, timeout=120, check=False)
    subprocess.run([engine, "network", "rm", network], capture_output=True, timeout=60, check=False)


def bench_up_cold(
    sandbox: Sandbox, cycles: int, progress: Progress, profile_runs: int = 2
) -> dict[str, object]:
    """Item 3: cold `alca up` (no container, network or rules) vs the raw commands."""
    sandbox.down()
    output = sandbox.alca_cmd(["up"], debug=True).stderr
    raw_net, raw_run, ctr, net = raw_equivalent(sandbox, output)
    _raw_cleanup(sandbox.engine, ctr, net)
    alca_ms: list[float] = []
    raw_ms: list[float] = []

    def alca_once() -> None:
        sandbox.down()
        alca_ms.append(sandbox.up() * 1000)

    def raw_once() -> None:
        started = time.perf_counter()
        for argv in (raw_net, raw_run):
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
            if proc.returncode != 0:
                raise SandboxError(f"{shlex.join(argv)}: {proc.stderr.strip()}")
        raw_ms.append((time.perf_counter() - started) * 1000)
        _raw_cleanup(sandbox.engine, ctr, net)

    try:
        for index in range(cycles):
            progress(f"{sandbox.engine}: item 3 cycle {index + 1}/{cycles}")
            pair = (alca_once, raw_once) if index % 2 == 0 else (raw_once, alca_once)
            for step in pair:
                step()
    finally:
        _raw_cleanup(sandbox.engine, ctr, net)
    profile = profile_up(sandbox, profile_runs, cold=True)
    return {
        "profile": profile,
        "raw_commands": [raw_net, raw_run],
        "alca_ms": alca_ms,
        "raw_ms": raw_ms,
        "alca_summary_ms": stats.summarize(alca_ms).as_dict(),
        "raw_summary_ms": stats.summarize(raw_ms).as_dict(),
        "ratio": stats.ratio_summary(raw_ms, alca_ms).as_dict(),
        "debug_log": output.splitlines(),
    }


# --- item 4: TCP from the sandbox with 1 vs 200 projects' rules --------------------------

CONN_LOOP = "i=0; while [ $i -lt {n} ]; do echo x | nc {addr} {port} >/dev/null; i=$((i+1)); done"
BULK = "dd if=/dev/zero bs=1M count={mib} 2>/dev/null | nc {addr} {port}"


def _in_sandbox(sandbox: Sandbox, script: str, timeout: float = 300) -> None:
    argv = [sandbox.engine, "exec", sandbox.container, "sh", "-c", script]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise SandboxError(f"in the sandbox: {script!r} failed: {proc.stderr.strip()}")


def _conn_rate(sandbox: Sandbox, the_lab: netlab.Lab, count: int) -> float:
    """Connections per second accepted by the lab host, from a shell loop of `nc`."""
    the_lab.control("reset")
    _in_sandbox(sandbox, CONN_LOOP.format(n=count, addr=netlab.LAB_ADDR, port=netlab.PORT))
    accepts = the_lab.control("stats")["accepts"]
    if len(accepts) < count:
        raise SandboxError(f"only {len(accepts)} of {count} connections reached the lab host")
    return stats.rate([float(str(a)) for a in accepts])


def _throughput(sandbox: Sandbox, the_lab: netlab.Lab, mib: int) -> float:
    """MB/s of one upload, measured by the lab host from its first to its last byte."""
    the_lab.control("reset")
    _in_sandbox(sandbox, BULK.format(mib=mib, addr=netlab.LAB_ADDR, port=netlab.PORT + 1))
    bulk = the_lab.control("stats")["bulk"]
    for _ in range(100):  # the server records a transfer once it has seen EOF
        if bulk:
            break
        time.sleep(0.05)
        bulk = the_lab.control("stats")["bulk"]
    if not bulk:
        raise SandboxError("the lab host recorded no upload")
    first = bulk[0]
    size, seconds = (float(str(x)) for x in first)  # type: ignore[attr-defined]
    if int(size) != mib * 1024 * 1024:
        raise SandboxError(f"the lab host received {size:.0f} bytes of {mib} MiB")
    return size / seconds / 1e6


NFT_COMMANDS = {
    "`alca run` check: nft list chain (this project's _fwd)": [
        "list", "chain", "inet", "alcatraz", "p_{key}_fwd",
    ],
    "earlier check: nft list maps inet": ["list", "maps", "inet"],
    "`alca up` probe: nft list tables": ["list", "tables"],
    "alternative probe: nft -c -f /dev/null": ["-c", "-f", "/dev/null"],
    "`alca up` read: nft -j list table inet alcatraz": ["-j", "list", "table", "inet", "alcatraz"],
    "alternative: nft -j list chain (this project's _fwd)": [
        "-j", "list", "chain", "inet", "alcatraz", "p_{key}_fwd",
    ],
}  # fmt: skip


def _nft_costs(nft: list[str], key: str, runs: int = 5) -> dict[str, float]:
    """Median ms of the nft commands alcatraz runs (and cheaper ones), on the table as it is."""
    costs: dict[str, float] = {}
    for label, template in NFT_COMMANDS.items():
        args = [a.format(key=key) for a in template]
        samples = []
        for _ in range(runs):
            started = time.perf_counter()
            subprocess.run([*nft, *args], capture_output=True, timeout=60, check=True)
            samples.append((time.perf_counter() - started) * 1000)
        costs[label] = stats.median(samples)
    return costs


def bench_network(
    sandbox: Sandbox,
    the_lab: netlab.Lab,
    slots: int,
    conn_seconds: float,
    mib: int,
    progress: Progress,
    extra_projects: int = 199,
    side_runs: int = 5,
) -> dict[str, object]:
    """Item 4: A = this project's rules only, B = plus `extra_projects` dummies (ABBA)."""
    nft = [str(c) for c in sandbox.isolation.get("nft") or ["nft"]]
    netlab.remove_dummies(nft)
    calibration = _conn_rate(sandbox, the_lab, 100)
    count = int(min(3000, max(100, calibration * conn_seconds / 2)))
    nft_costs: dict[str, dict[str, float]] = {}
    rates: dict[str, list[float]] = {"A": [], "B": []}
    throughput: dict[str, list[float]] = {"A": [], "B": []}
    load_s: list[float] = []
    with_200: dict[str, object] = {}
    loaded = False
    try:
        for index, config in enumerate(stats.abba(slots)):
            progress(f"{sandbox.engine}: item 4 slot {index + 1}/{slots} ({config})")
            if config == "B" and not loaded:
                load_s.append(netlab.load_dummies(extra_projects, nft))
                loaded = True
                if netlab.dummy_count(nft) != extra_projects:
                    raise SandboxError("the dummy projects did not all load")
            elif config == "A" and loaded:
                netlab.remove_dummies(nft)
                loaded = False
            time.sleep(0.5)  # let the kernel finish freeing/allocating after a switch
            # Two short measurements per slot, their median kept: a hiccup costs half a slot.
            rates[config].append(stats.median([_conn_rate(sandbox, the_lab, count) for _ in "ab"]))
            throughput[config].append(
                stats.median([_throughput(sandbox, the_lab, mib) for _ in "abc"])
            )
            # Side measurements after the traffic, so they never perturb it.
            if config not in nft_costs:
                nft_costs[config] = _nft_costs(nft, str(sandbox.isolation.get("key")), side_runs)
            if config == "B" and not with_200:
                with_200 = _up_and_run_with_load(sandbox, side_runs)
    finally:
        netlab.remove_dummies(nft)
    pairs = [(i, i + 1) for i in range(0, slots - 1, 2)]
    order = stats.abba(slots)

    def paired(values: dict[str, list[float]]) -> tuple[list[float], list[float]]:
        seen = {"A": 0, "B": 0}
        by_slot: list[float] = []
        for config in order:
            by_slot.append(values[config][seen[config]])
            seen[config] += 1
        a = [by_slot[i] if order[i] == "A" else by_slot[j] for i, j in pairs]
        b = [by_slot[j] if order[j] == "B" else by_slot[i] for i, j in pairs]
        return a, b

    ra, rb = paired(rates)
    ta, tb = paired(throughput)
    return {
        "connections_per_slot": count,
        "bulk_mib": mib,
        "conn_per_s": rates,
        "throughput_mb_s": throughput,
        "conn_ratio": stats.ratio_summary(ra, rb).as_dict(),
        "throughput_ratio": stats.ratio_summary(ta, tb).as_dict(),
        "conn_summary": {k: stats.summarize(v).as_dict() for k, v in rates.items()},
        "throughput_summary": {k: stats.summarize(v).as_dict() for k, v in throughput.items()},
        "load_199_s": load_s,
        "nft_command_ms": nft_costs,
        "with_200_projects": with_200,
    }


def _up_and_run_with_load(sandbox: Sandbox, runs: int) -> dict[str, object]:
    """How `alca up` (warm) and `alca run` fare when the table holds 200 projects."""
    up = [sandbox.up() * 1000 for _ in range(runs)]
    run = [
        timed([sandbox.alca, "run", "true"], cwd=sandbox.root, env=sandbox.env) for _ in range(runs)
    ]
    return {
        "up_warm_ms": stats.summarize(up).as_dict(),
        "alca_run_ms": stats.summarize(run).as_dict(),
    }


# --- import profile -----------------------------------------------------------------------


WATCH = ("typing", "re", "json", "hashlib", "contextlib", "enum", "dataclasses", "subprocess",
         "pathlib", "msgspec", "tomllib", "argparse", "ipaddress", "socket", "certifi")  # fmt: skip


def parse_importtime(text: str) -> tuple[dict[str, float], dict[str, float]]:
    """`-X importtime` output as (top-level imports, watched modules at any depth), in ms.

    A module's cumulative time counts only where it was first imported, so a watched
    module shows where its cost actually landed.
    """
    top: dict[str, float] = {}
    watched: dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith("import time:"):
            continue
        parts = line[len("import time:") :].split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        cumulative = int(parts[1]) / 1000
        name = parts[2].strip()
        if not parts[2].startswith("  "):
            top[name] = top.get(name, 0.0) + cumulative
        if name in WATCH:
            watched[name] = cumulative
    return top, watched


def import_profile(sandbox: Sandbox, runs: int) -> dict[str, object]:
    """`-X importtime` of the `run` and `up` paths, as installed and without site."""
    cases = {
        "run (console script)": ([sys.executable, "-X", "importtime"], ["run", "true"]),
        "run (clean, -S)": ([sys.executable, "-S", "-X", "importtime"], ["run", "true"]),
        "up warm (console script)": ([sys.executable, "-X", "importtime"], ["up", "-q"]),
    }
    code = f"import sys; sys.path.insert(0, {str(SRC)!r}); " + (
        "from alcatraz.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    out: dict[str, object] = {}
    for label, (prefix, args) in cases.items():
        totals: dict[str, list[float]] = {}
        marks: dict[str, list[float]] = {}
        for _ in range(runs):
            proc = subprocess.run(
                [*prefix, "-c", code, *args],
                cwd=sandbox.root,
                env=sandbox.env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=120,
            )
            top, watched = parse_importtime(proc.stderr)
            for name, ms in top.items():
                totals.setdefault(name, []).append(ms)
            for name, ms in watched.items():
                marks.setdefault(name, []).append(ms)
        medians = {name: stats.median(v) for name, v in totals.items()}
        ranked = sorted(medians.items(), key=lambda item: -item[1])
        out[label] = {
            "total_ms": sum(medians.values()),
            "top": ranked[:10],
            "watched": {name: stats.median(v) for name, v in sorted(marks.items())},
        }
    return out


# --- item 5: file sync latency ------------------------------------------------------------

SYNC_PLACEHOLDER = "not measured yet: file sync not wired into alca"


def bench_sync(
    workdir: Path, env: dict[str, str], alca: str, engine: str, count: int = 10
) -> dict[str, object]:
    """Host→container latency of a synced workdir, once `alca up` accepts excludes."""
    spec = importlib.util.find_spec("alcatraz.sync")
    if spec is None or spec.origin is None:
        return {"status": "placeholder", "text": SYNC_PLACEHOLDER, "why": "no alcatraz.sync"}
    root = workdir / f"project-sync-{engine}"
    root.mkdir(exist_ok=True)
    (root / ".alca.toml").write_text(
        f'image = "alpine:3.21"\nruntime = "{engine}"\nworkdir_exclude = ["secret.env"]\n'
    )
    sandbox = Sandbox(engine, root, env, alca)
    sandbox.alca_cmd(["trust", "--yes"])
    started = time.perf_counter()
    proc = sandbox.alca_cmd(["up", "-q"], check=False)
    up_s = time.perf_counter() - started
    try:
        if proc.returncode != 0:
            why = (proc.stderr.strip().splitlines() or ["alca up failed"])[0][:200]
            return {"status": "placeholder", "text": SYNC_PLACEHOLDER, "why": why}
        status = sandbox.alca_cmd(["status", "--json"], check=False)
        status_sync = None
        with contextlib.suppress(ValueError):
            status_sync = json.loads(status.stdout).get("sync")
        samples = [_sync_latency(sandbox, index) for index in range(count)]
        back = [_sync_latency_back(sandbox, index) for index in range(count)]
        return {
            "status": "measured",
            "samples_ms": samples,
            "summary_ms": stats.summarize(samples).as_dict(),
            "p95_ms": _p95(samples),
            "back_samples_ms": back,
            "back_summary_ms": stats.summarize(back).as_dict(),
            "back_p95_ms": _p95(back),
            "cold_up_with_sync_s": up_s,
            "initial_sync_10k_s": _initial_sync(workdir, env, alca, engine),
            "alca_status_sync": status_sync,
        }
    finally:
        sandbox.down()


def _p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def _initial_sync(workdir: Path, env: dict[str, str], alca: str, engine: str) -> float:
    """`alca up` of a 10,000-file project with excludes: create, sync and flush."""
    root = workdir / f"project-sync10k-{engine}"
    for d in range(100):
        folder = root / "src" / f"d{d:03}"
        folder.mkdir(parents=True, exist_ok=True)
        for f in range(100):
            (folder / f"f{f:03}.txt").write_text(f"{d}-{f}\n")
    (root / ".alca.toml").write_text(
        f'image = "alpine:3.21"\nruntime = "{engine}"\nworkdir_exclude = ["secret.env"]\n'
        '[network]\nlan-access = ["*"]\n'
    )
    sandbox = Sandbox(engine, root, env, alca)
    sandbox.alca_cmd(["trust", "--yes"])
    started = time.perf_counter()
    try:
        sandbox.alca_cmd(["up", "-q"])
        return time.perf_counter() - started
    finally:
        sandbox.down()


def _sync_latency_back(sandbox: Sandbox, index: int) -> float:
    """Write a file in the sandbox; time until it appears on the host."""
    name = f"bench-back-{os.getpid()}-{index}.txt"
    target = sandbox.root / name
    argv = [sandbox.engine, "exec", sandbox.container, "sh", "-c", f"echo x > /workspace/{name}"]
    started = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True)
    while not target.exists():
        if time.perf_counter() - started > 30:
            raise TimeoutError(f"{name} never reached the host")
        time.sleep(0.002)
    latency = (time.perf_counter() - started) * 1000
    target.unlink(missing_ok=True)
    return latency


def _sync_latency(sandbox: Sandbox, index: int) -> float:
    """Write a file on the host; time until a poller in the sandbox reports it."""
    name = f"bench-sync-{os.getpid()}-{index}.txt"
    poll = f"echo ready; while [ ! -e /workspace/{name} ]; do usleep 2000; done; echo seen"
    argv = [sandbox.engine, "exec", sandbox.container, "sh", "-c", poll]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    try:
        proc.stdout.readline()  # "ready"
        written = time.perf_counter()
        (sandbox.root / name).write_text("x")
        proc.stdout.readline()  # "seen"
        latency = (time.perf_counter() - written) * 1000
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        (sandbox.root / name).unlink(missing_ok=True)
    return latency
