"""Helpers for the network isolation tests (issue #4): projects driven through `alca`, the
kernel's view of `table inet alcatraz`, a transparent-proxy sink, engine shims, and the
positive control that must pass before any BLOCK verdict is trusted.

Everything made here is named or labelled so it can be removed exactly: projects live in
short directories under /tmp (`/tmp/aiso-*`), each test module has its own ALCA_HOME and
nftables persistence files (ALCA_NFT_CONF / ALCA_NFT_DIR), containers are removed by name
and networks by the `alca.project.path` label, and rules are removed per project key, never
by flushing anything.

The machine may be shared with other sessions that have their own sandboxes in
`inet alcatraz`; `foreign_keys()` tells a destructive test whether it may touch the table.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from alcatraz import state as alca_state
from tests.integration.conftest import TEST_IMAGE
from tests.lab.matrix import (
    GATEWAY,
    GATEWAY6,
    OPEN,
    Cell,
    Expect,
    Report,
    Verdict,
    discover,
    engine_exec,
    nft_counters,
    run_matrix,
    tier_b_cells,
)
from tests.lab.topology import LAN_HOST4, WAN_HOST4, Lab, LabError

IMAGE = TEST_IMAGE
COMMAND_TIMEOUT = 120.0
HELPER_NAME = "alcatraz-network-helper"
DOCKERD_LOG = Path("/var/log/alca-test-dockerd.log")
DOCKERD_PIDFILE = Path("/run/alca-test-dockerd.pid")  # written by scripts/setup-test-env.sh
RESTART_OPT_IN = "ALCA_TEST_RESTART_DOCKERD"
REFUSED = 77  # alca's exit status for "refused: isolation cannot be guaranteed"

#: cells whose destination is the host itself (judged by the project's input chain)
HOST_SIDE = frozenset({GATEWAY, GATEWAY6, LAN_HOST4, WAN_HOST4, "255.255.255.255"})


def _alca_argv() -> list[str]:
    exe = shutil.which("alca")
    return [exe] if exe else [sys.executable, "-m", "alcatraz"]


ALCA = tuple(_alca_argv())


def sh(argv: Sequence[str], timeout: float = 120, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv), capture_output=True, text=True, timeout=timeout, check=False, **kw
    )


def remove_container(engine: str, name: str) -> None:
    args = ["rm", "-f", "-t", "0", name] if engine == "podman" else ["rm", "-f", name]
    sh([engine, *args])


def toml_list(items: Iterable[str]) -> str:
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


# --- alca outcomes ----------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def __str__(self) -> str:
        return (
            f"alca {' '.join(self.args)} -> exit {self.returncode} ({self.seconds:.2f} s)\n"
            f"--- stdout ---\n{self.stdout}--- stderr ---\n{self.stderr}"
        )


# --- a module's workspace and its projects ----------------------------------------------


class Workspace:
    """A short base directory with its own ALCA_HOME and nftables persistence files."""

    def __init__(self, tag: str, **env: str) -> None:
        self.base = Path(tempfile.mkdtemp(prefix=f"aiso-{tag}-", dir="/tmp"))
        self.home = self.base / "home"
        self.home.mkdir()
        self.alca_home = self.base / "alca"
        self.nft_conf = self.base / "nftables.conf"
        self.nft_dir = self.base / "nftables.d"
        self.extra_env = dict(env)
        self.projects: list[Project] = []

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ALCA_")}
        env.update(
            HOME=str(self.home),
            ALCA_HOME=str(self.alca_home),
            ALCA_NFT_CONF=str(self.nft_conf),
            ALCA_NFT_DIR=str(self.nft_dir),
            NO_COLOR="1",
            # The truth tables judge the host's table by its counters: without the second
            # layer in the sandbox's namespace, which would drop first (its own test passes
            # ALCA_TEST_HOST_LAYER_ONLY="").
            ALCA_TEST_HOST_LAYER_ONLY="1",
        )
        env.update(self.extra_env)
        env.update(extra)
        return env

    def alca(
        self, *args: str, cwd: Path | None = None, timeout: float = COMMAND_TIMEOUT, **env: str
    ) -> Outcome:
        started = time.monotonic()
        done = subprocess.run(
            [*ALCA, *args],
            cwd=cwd or self.base,
            env=self.env(**env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return Outcome(args, done.returncode, done.stdout, done.stderr, time.monotonic() - started)

    def install_helper(self) -> Outcome:
        done = self.alca("network-helper", "install", "--yes")
        assert done.returncode == 0, str(done)
        return done

    def project(
        self,
        engine: str,
        name: str,
        *,
        lan_access: Sequence[str] = (),
        proxy: str | None = None,
        caps: Sequence[str] = ("NET_RAW",),
    ) -> Project:
        project = Project(self, engine, self.base / name)
        project.write_config(lan_access=lan_access, proxy=proxy, caps=caps)
        self.projects.append(project)
        return project

    def cleanup(self) -> list[str]:
        """Every project down and removed; returns what could not be removed."""
        problems: list[str] = []
        for project in reversed(self.projects):
            problems += project.cleanup()
        self.projects.clear()
        shutil.rmtree(self.base, ignore_errors=True)
        return problems


@contextlib.contextmanager
def helper_workspace(tag: str, **env: str) -> Iterator[Workspace]:
    """A Workspace with the network helper installed; everything removed afterwards, and
    what could not be removed fails the test."""
    workspace = Workspace(tag, **env)
    workspace.install_helper()
    try:
        yield workspace
    finally:
        problems = workspace.cleanup()
    assert not problems, "\n".join(problems)


@dataclass
class Project:
    """One project directory and `alca` run inside it (as a user does)."""

    ws: Workspace
    engine: str
    root: Path
    squatters: list[str] = field(default_factory=list)  # plain containers on its network
    lan_access: tuple[str, ...] = ()
    proxy: str | None = None

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    def write_config(
        self, *, lan_access: Sequence[str], proxy: str | None, caps: Sequence[str]
    ) -> None:
        self.lan_access, self.proxy = tuple(lan_access), proxy
        lines = [
            f'image = "{IMAGE}"',
            f'runtime = "{self.engine}"',
            # NET_RAW lets busybox ping send, so the ICMP cells really test the firewall (an
            # agent with NET_RAW can craft any packet: the stronger position for the test)
            f"caps = {toml_list(caps)}",
            "",
            "[network]",
            f"lan-access = {toml_list(lan_access)}",
        ]
        if proxy is not None:
            lines.append(f"proxy = {json.dumps(proxy)}")
        (self.root / ".alca.toml").write_text("\n".join(lines) + "\n")

    # -- running alca --

    def alca(self, *args: str, timeout: float = COMMAND_TIMEOUT, **env: str) -> Outcome:
        return self.ws.alca(*args, cwd=self.root, timeout=timeout, **env)

    def ok(self, *args: str, **env: str) -> Outcome:
        done = self.alca(*args, **env)
        assert done.returncode == 0, str(done)
        return done

    def up(self, **env: str) -> Outcome:
        self.ok("trust", "--yes", **env)
        done = self.up_once(**env)
        assert done.returncode == 0, str(done)
        return done

    def up_once(self, **env: str) -> Outcome:
        return self.alca("up", **env)

    def status_json(self, **env: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.ok("status", "--json", **env).stdout)
        return data

    def exec_alca(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        """`alca run argv...` (what the agent does); the matrix's exec_in_sandbox."""
        return subprocess.run(
            [*ALCA, "run", *argv],
            cwd=self.root,
            env=self.ws.env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )

    def exec_engine(self, argv: list[str]) -> Any:
        """`<engine> exec` straight into the container (no alca involved)."""
        return engine_exec(self.engine, self.container_name)(argv)

    # -- state --

    def state(self) -> dict[str, Any]:
        return (
            alca_state.read_json(
                alca_state.project_dir(self.ws.alca_home, self.root) / "state.json"
            )
            or {}
        )

    @property
    def project_id(self) -> str:
        pid = self.state().get("project_id")
        assert isinstance(pid, str), f"no project id yet for {self.root}"
        return pid

    @property
    def key(self) -> str:
        from alcatraz.network.plan import project_key

        return project_key(self.project_id)

    @property
    def network(self) -> str:
        from alcatraz.network.plan import network_name

        return network_name(self.project_id)

    @property
    def container_name(self) -> str:
        return alca_state.container_name_for(self.project_id)

    def interface(self) -> str | None:
        """The project network's bridge as the engine reports it (None: no network)."""
        info = network_info(self.engine, self.network)
        return info.interface if info else None

    def container_state(self) -> str | None:
        """`running`, `exited`, `created`, ... or None when there is no container."""
        done = sh([self.engine, "container", "inspect", self.container_name])
        if done.returncode != 0:
            return None
        records = json.loads(done.stdout)
        return str(records[0]["State"]["Status"]) if records else None

    # -- the kernel's view of this project --

    def counter(self) -> Callable[[], dict[str, int]]:
        """Drop counters of this project's chains only (other sandboxes may share the table)."""
        read = nft_counters("alcatraz")
        fwd, inp = f"p_{self.key}_fwd", f"p_{self.key}_in"

        def counts() -> dict[str, int]:
            raw = read()
            return {
                fwd: sum(v for k, v in raw.items() if k.startswith(fwd + ":")),
                inp: sum(v for k, v in raw.items() if k.startswith(inp + ":")),
            }

        return counts

    def counter_keys(self, cell: Cell) -> list[str]:
        """The chain that must have dropped a blocked cell: input for the host's addresses."""
        return [f"p_{self.key}_in" if cell.dest in HOST_SIDE else f"p_{self.key}_fwd"]

    def matrix(
        self,
        cells: Sequence[Cell],
        expected: Any,
        lab: Lab,
        *,
        via: str = "alca",
        counted: bool = True,
        info: Any = None,
        counter: Callable[[], Mapping[str, int]] | None = None,
        counter_keys: Callable[[Cell], Iterable[str]] | None = None,
    ) -> Report:
        """The lab matrix from this sandbox (through `alca run`, or `via="engine"`: the
        engine's exec, no alca involved), judged with this project's drop counters."""
        exec_in = self.exec_alca if via == "alca" else self.exec_engine
        report = run_matrix(
            exec_in,
            cells,
            expected,
            lab=lab,
            info=info,
            counter=counter or (self.counter() if counted else None),
            counter_keys=counter_keys or (self.counter_keys if counted else None),
            parallel=64,  # one batch: a blocked cell costs its 2 s timeout once
        )
        check_lab(lab)
        return report

    def rules_verified(self) -> tuple[bool, str]:
        """Whether the kernel enforces exactly this project's configured policy on its
        network's bridge (alcatraz's own digest check, fed from the engine and the config)."""
        from alcatraz.config.load import load_config
        from alcatraz.network.firewall import Firewall
        from alcatraz.network.plan import make_policy
        from alcatraz.proc import SubprocessRunner
        from alcatraz.sandbox.network import network_from_info as _network_from_info

        info = network_info(self.engine, self.network)
        if info is None:
            return False, "no project network"
        network = _network_from_info(self.network, info)
        config = load_config(self.root, environ=self.ws.env(), cwd=self.root)
        resolver = (self.state().get("isolation") or {}).get("resolver") or {}
        daemon = bool(resolver.get("policy"))  # the project's own daemon on the gateway
        policy = make_policy(
            self.project_id,
            network,
            allow_all=config.allow_all_lan,
            rules=config.lan_rules,
            proxy=config.proxy,
            egress=config.egress if daemon else None,
            own_resolver=daemon,
        )
        fw = Firewall(SubprocessRunner(), ["nft"])
        table = fw.read()
        if fw.verify(policy, table):
            return True, f"verified on {network.interface}"
        chains = sorted(c for c in table.chains if c.startswith(f"p_{self.key}_"))
        dispatch = {m: e.get(network.interface) for m, e in table.dispatch.items()}
        return False, f"not verified: chains {chains or 'none'}, dispatch {dispatch}"

    def chains_loaded(self) -> list[str]:
        table = nft_table()
        if table is None:
            return []
        prefix = f"p_{self.key}_"
        return sorted(
            body["name"]
            for item in table
            for kind, body in item.items()
            if kind in ("chain", "set") and str(body.get("name", "")).startswith(prefix)
        )

    # -- teardown --

    def cleanup(self) -> list[str]:
        problems: list[str] = []
        try:
            has_id = isinstance(self.state().get("project_id"), str)
        except (OSError, ValueError):
            has_id = False
        for name in self.squatters:  # first: they hold the project network
            remove_container(self.engine, name)
        if self.root.exists() and has_id:
            done = self.alca("down", "-q", timeout=180)
            if done.returncode != 0:
                problems.append(f"alca down in {self.root}: {done}")
        label = f"label=alca.project.path={self.root}"
        names = sh(
            [self.engine, "ps", "-a", "--filter", label, "--format", "{{.Names}}"]
        ).stdout.split()
        for name in names:
            problems.append(f"container {name} was left behind; removed")
            remove_container(self.engine, name)
        if has_id:
            if network_info(self.engine, self.network) is not None:
                problems.append(f"network {self.network} was left behind; removed")
                remove_rules(self.key)
                sh([self.engine, "network", "rm", self.network])
            if self.chains_loaded():
                problems.append(f"rules of {self.key} were left behind; removed")
                remove_rules(self.key)
        return problems


# --- engines ----------------------------------------------------------------------------


def backstop_handles() -> list[int]:
    """Handles of the base chains' fail-closed rules (they change when any `up` rewrites the
    base chains, which also resets their counters)."""
    return sorted(
        int(item["rule"]["handle"])
        for item in nft_table() or []
        if "rule" in item and str(item["rule"].get("comment", "")).endswith("without policy")
    )


def network_info(engine: str, name: str) -> Any:
    from tests.integration.conftest import make_runtime

    return make_runtime(engine).network_inspect(name)


def foreign_running_containers(engine: str, mine: Iterable[str]) -> list[str]:
    names = sh([engine, "ps", "--format", "{{.Names}}"]).stdout.split()
    return sorted(set(names) - set(mine))


# --- the kernel -------------------------------------------------------------------------


def nft_table() -> list[dict[str, Any]] | None:
    """`nft -j list table inet alcatraz` items, or None when the table does not exist."""
    done = sh(["nft", "-j", "list", "table", "inet", "alcatraz"])
    if done.returncode != 0:
        return None
    items: list[dict[str, Any]] = json.loads(done.stdout).get("nftables", [])
    return items


def loaded_keys() -> set[str]:
    """Keys of every project with chains in the table (any session's)."""
    keys: set[str] = set()
    for item in nft_table() or []:
        name = str(item.get("chain", {}).get("name", ""))
        if name.startswith("p_") and name.endswith("_fwd"):
            keys.add(name[2:-4])
    return keys


def backstop_counter() -> Callable[[], dict[str, int]]:
    """Counters of the base chains' fail-closed rules ("bridge/pool without policy")."""
    read = nft_counters("alcatraz")

    def counts() -> dict[str, int]:
        return {k: v for k, v in read().items() if k.endswith("without policy")}

    return counts


def foreign_keys(mine: Iterable[str]) -> set[str]:
    return loaded_keys() - set(mine)


def _strip(value: Any) -> Any:
    """A rule expression without run-time state (counters, set element counts)."""
    if isinstance(value, dict):
        return {k: ({} if k == "counter" else _strip(v)) for k, v in value.items() if k != "handle"}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def chain_rules(chain: str) -> list[Any]:
    """The rules of one chain of `inet alcatraz`, without handles and counters."""
    done = sh(["nft", "-j", "list", "chain", "inet", "alcatraz", chain])
    assert done.returncode == 0, done.stderr
    return [
        _strip({k: v for k, v in item["rule"].items() if k not in ("handle", "chain")})
        for item in json.loads(done.stdout)["nftables"]
        if "rule" in item
    ]


def chain_text(chain: str) -> str:
    done = sh(["nft", "list", "chain", "inet", "alcatraz", chain])
    return done.stdout if done.returncode == 0 else ""


def remove_rules(key: str) -> None:
    """Remove one project's dispatch elements, chains and sets (alcatraz's own removal)."""
    from alcatraz.network.firewall import Firewall
    from alcatraz.proc import SubprocessRunner

    fw = Firewall(SubprocessRunner(), ["nft"])
    table = fw.read()
    prefix = f"p_{key}_"
    interfaces = {
        ifname
        for elements in table.dispatch.values()
        for ifname, target in elements.items()
        if target.startswith(prefix)
    }
    fw.remove(key, sorted(interfaces))


# --- a transparent-proxy sink -----------------------------------------------------------

SO_ORIGINAL_DST = 80
IP_FREEBIND = 15
_TOKEN = re.compile(rb"alab-[0-9a-f]{8}-[0-9]{3}")


class OrigDstProxy:
    """A TCP listener bound to one address that logs each connection's token and its
    original destination (SO_ORIGINAL_DST, i.e. where the sandbox meant to go before the
    DNAT), answers, and forwards nothing (the plan's "sink" proxy, PX-1)."""

    def __init__(self, address: str, port: int) -> None:
        ipaddress.IPv4Address(address)
        self.address, self.port = address, port
        self.records: list[dict[str, Any]] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.setsockopt(socket.SOL_IP, IP_FREEBIND, 1)
        self._sock.bind((address, port))
        self._sock.listen(64)
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, peer = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn, peer), daemon=True).start()

    def _handle(self, conn: socket.socket, peer: Any) -> None:
        with conn:
            try:
                raw = conn.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
                original = f"{socket.inet_ntoa(raw[4:8])}:{int.from_bytes(raw[2:4], 'big')}"
            except OSError:
                original = "?"
            conn.settimeout(2)
            data = b""
            with contextlib.suppress(OSError):
                while b"\r\n\r\n" not in data and len(data) < 4096:
                    chunk = conn.recv(1024)
                    if not chunk:
                        break
                    data += chunk
            tokens = [t.decode() for t in _TOKEN.findall(data)]
            self.records.append(
                {"peer": f"{peer[0]}:{peer[1]}", "original": original, "tokens": tokens}
            )
            with contextlib.suppress(OSError):
                conn.sendall(b"HTTP/1.0 200 OK\r\n\r\nALCA-TEST-PROXY\n")

    def by_token(self, token: str) -> list[dict[str, Any]]:
        return [r for r in self.records if token in r["tokens"]]

    def close(self) -> None:
        self._stop.set()
        self._sock.close()
        self._thread.join(timeout=5)


# --- engine shims (cheap simulations of engines alca must refuse) -----------------------


def shim(bin_dir: Path, engine: str, mode: str) -> dict[str, str]:
    """A fake `<engine>` first on PATH that forwards to the real one; returns the env.

    mode "remote": the engine looks remote (DOCKER_HOST / CONTAINER_HOST = tcp://...) but
    the shim drops that variable, so the "remote" engine answers (it is the local one).
    mode "rootless": the engine answers its rootless probe with "yes".
    """
    real = shutil.which(engine)
    assert real, f"{engine} not on PATH"
    bin_dir.mkdir(parents=True, exist_ok=True)
    variable = "DOCKER_HOST" if engine == "docker" else "CONTAINER_HOST"
    if mode == "remote":
        body = f'unset {variable}\nexec {real} "$@"\n'
        env = {variable: "tcp://127.0.0.1:1"}
    elif mode == "rootless":
        from alcatraz.runtime.docker import DockerRuntime

        probe, answer = (  # a literal tab between Docker's two facts
            (DockerRuntime.FACTS_FORMAT, '["name=seccomp,profile=builtin","name=rootless"]\t"x"')
            if engine == "docker"
            else ("{{.Host.Security.Rootless}}", "true")
        )
        body = (
            f'if [ "$1" = info ] && [ "$2" = --format ] && [ "$3" = \'{probe}\' ]; then\n'
            f"  echo '{answer}'; exit 0\nfi\nexec {real} \"$@\"\n"
        )
        env = {}
    else:
        raise ValueError(mode)
    path = bin_dir / engine
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    env["PATH"] = f"{bin_dir}:{os.environ.get('PATH', '')}"
    return env


# --- killing `alca up` at a step --------------------------------------------------------


@dataclass
class Killed:
    n: int
    killed: bool
    command: str  # the Nth "→ Executing:" line (what was about to run / running)
    returncode: int | None
    orphans_seconds: float
    tail: str = ""  # the end of its stderr when it finished before the kill


def run_up_killed_at(project: Project, n: int, timeout: float = 90) -> Killed:
    """`ALCA_DEBUG=1 alca up`, SIGKILLed (by its pid) as soon as it prints its Nth
    "→ Executing:" line, i.e. after N-1 external commands completed, with the Nth about to
    start or just started. Then waits until every process it started (its process group)
    has finished, so the state checked afterwards is final."""
    proc = subprocess.Popen(
        [*ALCA, "up"],
        cwd=project.root,
        env=project.ws.env(ALCA_DEBUG="1"),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert proc.stderr is not None
    seen, command, killed = 0, "", False
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    for line in proc.stderr:
        lines = [*lines[-9:], line]
        if line.startswith("→ Executing:"):
            seen += 1
            if seen == n:
                os.kill(proc.pid, signal.SIGKILL)
                killed, command = True, line[len("→ Executing: ") :].strip()
                break
        if time.monotonic() > deadline:
            break
    proc.stderr.close()
    returncode = proc.wait(timeout=timeout)
    started = time.monotonic()
    while time.monotonic() - started < 60:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.02)
    tail = "" if killed else "".join(lines)
    return Killed(n, killed, command, returncode, time.monotonic() - started, tail)


def count_steps(outcome: Outcome) -> list[str]:
    return [
        line[len("→ Executing: ") :]
        for line in outcome.stderr.splitlines()
        if line.startswith("→ Executing:")
    ]


# --- the positive control ---------------------------------------------------------------


def check_lab(lab: Lab) -> None:
    """A verdict from a lab whose servers died means nothing: fail at once. (Another
    session's failed lab fixture tears down the live lab: Lab.teardown() kills every
    servers.py in the alab-* namespaces, whoever started it.)"""
    dead = lab.dead_servers()
    if dead:
        raise LabError(f"lab servers died during the matrix: {dead} (see {lab.workdir})")


_CONTROL: dict[str, Report | BaseException] = {}


def positive_control(engine: str, lab: Lab) -> Report:
    """The full matrix from a PLAIN container (not alca's) on the engine's default network,
    expecting every cell to arrive. Run once per engine per session; a failure is re-raised
    for every test that depends on it, so no BLOCK verdict is trusted on a broken lab."""
    cached = _CONTROL.get(engine)
    if isinstance(cached, BaseException):
        raise AssertionError(f"the {engine} positive control failed earlier: {cached}")
    if cached is not None:
        return cached
    name = f"aiso-pc-{engine}-{os.getpid()}"
    remove_container(engine, name)
    try:
        run = [engine, "run", "-d", "--pull=never", "--cap-add", "NET_RAW", "--name", name]
        started = sh([*run, IMAGE, "sleep", "600"])
        assert started.returncode == 0, started.stderr
        exec_in = engine_exec(engine, name)
        report = run_matrix(exec_in, tier_b_cells(), OPEN, lab=lab, info=discover(exec_in))
        check_lab(lab)
        problems = [r.describe() for r in report.results if not _control_ok(r)]
        assert not problems, "positive control failed:\n" + "\n".join(problems)
    except BaseException as error:
        _CONTROL[engine] = error
        raise
    finally:
        remove_container(engine, name)
    _CONTROL[engine] = report
    return report


def _control_ok(result: Any) -> bool:
    if result.verdict == Verdict.ALLOW_OK:
        return True
    v6 = ":" in (result.address or "")
    if result.verdict == Verdict.NO_ROUTE:
        return v6  # the default networks are IPv4-only
    # busybox nslookup cannot send to the limited broadcast address (no SO_BROADCAST)
    return result.verdict == Verdict.UNSENDABLE and result.cell.id == "NET-B1"


# --- verdict checks shared by the tests -------------------------------------------------


def unexpected(report: Report, *, v4_only: bool = True) -> list[str]:
    """Cells whose verdict is not the strict one: ALLOW-OK for allowed cells, BLOCK-OK (a
    project counter moved) for blocked ones. Tolerated, and listed in the table: IPv6 cells
    on an IPv4-only project network (NO-ROUTE) and the UDP broadcast cell busybox cannot
    send (UNSENDABLE)."""
    bad: list[str] = []
    for r in report.results:
        v6 = ":" in (r.address or r.cell.dest)
        if v4_only and v6 and r.verdict == Verdict.NO_ROUTE:
            continue
        if r.verdict == Verdict.UNSENDABLE and r.cell.id == "NET-B1" and r.cell.proto == "udp":
            continue
        want = Verdict.ALLOW_OK if r.expect == Expect.ALLOW else Verdict.BLOCK_OK
        if r.verdict != want:
            bad.append(r.describe())
    return bad


def summary(report: Report) -> str:
    counts = ", ".join(f"{v}={n}" for v, n in sorted(report.by_verdict().items()))
    return f"{report.config}: {len(report.results)} cells, {counts}"


def attach(record_property: Callable[[str, object], None], name: str, report: Report) -> None:
    print(f"\n[{name}]")
    print(report.table())
    record_property(f"{name}.table", report.table())
    record_property(f"{name}.json", json.dumps(report.to_json()))


def reduced_cells(cells: Sequence[Cell]) -> list[Cell]:
    """A quick subset of the matrix (one batch of probes): LAN, private, metadata, CGNAT,
    host services, and the internet stand-in."""
    wanted = {
        ("192.168.250.2", "tcp", 18080),
        ("192.168.250.2", "udp", 17000),
        ("192.168.250.2", "icmp", None),
        ("10.77.0.2", "tcp", 18080),
        ("172.31.250.2", "tcp", 18080),
        ("169.254.169.254", "tcp", 80),
        ("100.64.0.2", "tcp", 18080),
        (GATEWAY, "tcp", 19000),
        (LAN_HOST4, "tcp", 19002),
        ("203.0.113.10", "tcp", 80),
        ("203.0.113.10", "udp", 17000),
        ("203.0.113.10", "icmp", None),
    }
    return [c for c in cells if (c.dest, c.proto, c.port) in wanted]


def wait_for(predicate: Callable[[], bool], timeout: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def skip_unless_table_is_ours(mine: Iterable[str], what: str, wait: float = 0) -> None:
    """Skip (with the reason) when other sessions' projects are in `inet alcatraz`."""
    mine = set(mine)
    if wait:
        wait_for(lambda: not foreign_keys(mine), wait, step=1)
    others = foreign_keys(mine)
    if others:
        pytest.skip(
            f"{what} would remove other projects' rules ({', '.join(sorted(others))} are "
            "loaded by another session on this machine); rerun when the machine is quiet"
        )


# --- dockerd (the daemon scripts/setup-test-env.sh starts) -------------------------------


def dockerd_pids() -> list[int]:
    """Running dockerd processes. One this test process started (a restart test) is its
    child: once it exits it is reaped here, else it would linger as a zombie."""
    pids: list[int] = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() != "dockerd":
                    continue
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state == "Z":
                    with contextlib.suppress(ChildProcessError):
                        os.waitpid(int(entry.name), os.WNOHANG)
                    continue
                pids.append(int(entry.name))
    return sorted(pids)


def docker_answers() -> bool:
    try:
        return sh(["docker", "info", "--format", "{{.ID}}"], timeout=20).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def start_dockerd() -> subprocess.Popen[bytes]:
    """Start dockerd the way scripts/setup-test-env.sh does (detached, own session)."""
    log = DOCKERD_LOG.open("ab")
    try:
        return subprocess.Popen(
            ["dockerd"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    finally:
        log.close()


def ensure_dockerd() -> None:
    if docker_answers():
        return
    if not dockerd_pids():
        # ours like the one it replaces: the next restart test may stop it again
        DOCKERD_PIDFILE.write_text(f"{start_dockerd().pid}\n")
    assert wait_for(docker_answers, 60, step=0.5), "docker info still fails after 60 s"


def skip_unless_dockerd_restart_opted_in() -> None:
    if os.environ.get(RESTART_OPT_IN) != "1":
        pytest.skip(
            f"stops and restarts the machine's dockerd (every container of every user on it "
            f"stops or restarts); set {RESTART_OPT_IN}=1 to run it"
        )


def restart_dockerd(mine: Iterable[str]) -> None:
    """Stop the test dockerd (it stops every container) and start it again, as a host's
    service manager does; skips unless opted in, the daemon is the one
    scripts/setup-test-env.sh started, and no container but `mine` is running."""
    skip_unless_dockerd_restart_opted_in()
    others = foreign_running_containers("docker", mine)
    if others:
        pytest.skip(f"other running Docker containers would be stopped: {', '.join(others)}")
    pids = dockerd_pids()
    assert len(pids) == 1, f"expected one dockerd, found {pids}"
    if not (DOCKERD_PIDFILE.exists() and DOCKERD_PIDFILE.read_text().strip() == str(pids[0])):
        pytest.skip("this dockerd was not started by scripts/setup-test-env.sh: not ours to stop")
    try:
        os.kill(pids[0], signal.SIGTERM)
        assert wait_for(lambda: pids[0] not in dockerd_pids(), 60), "dockerd did not stop"
        DOCKERD_PIDFILE.write_text(f"{start_dockerd().pid}\n")
        assert wait_for(docker_answers, 60, step=0.5), "dockerd did not come back"
    finally:
        ensure_dockerd()


#: What podman-restart.service runs at boot (Podman 4.3 ships the first; later versions
#: the second as well): the only way Podman, which has no daemon, starts a container itself.
PODMAN_BOOT_FILTERS = ("restart-policy=always", "restart-policy=unless-stopped")


def simulate_reboot(engine: str, container: str, project_root: Path) -> None:
    """The engine restarts as at boot, with the sandbox running beforehand.

    Docker: dockerd is restarted (see `restart_dockerd`). Podman: the container is killed
    (the machine goes down), then the boot service's `podman start --all --filter ...` runs,
    narrowed by label to this project so no other session's containers start. A user's
    own `podman start` is not simulated: it bypasses alcatraz by design (decision 0010).
    """
    if engine == "docker":
        restart_dockerd([container])
        return
    assert sh(["podman", "kill", container]).returncode == 0
    assert wait_for(lambda: _state(engine, container) != "running", 30), "still running"
    ours = f"label=alca.project.path={project_root}"
    for policy in PODMAN_BOOT_FILTERS:
        done = sh(["podman", "start", "--all", "--filter", policy, "--filter", ours])
        assert done.returncode == 0, done.stderr


def _state(engine: str, container: str) -> str | None:
    done = sh([engine, "container", "inspect", "--format", "{{.State.Status}}", container])
    return done.stdout.strip() if done.returncode == 0 else None
