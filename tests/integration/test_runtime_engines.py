"""The runtime layer against real Docker and Podman: what we ask for is what the container gets.

Each check reads the result back twice where it can: from `inspect` (what the engine
recorded) and from inside the container (what the kernel enforces).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from alcatraz.config.netgrammar import PortMapping
from alcatraz.proc import CommandFailed, Result, SubprocessRunner
from alcatraz.runtime.base import BindMount, ContainerSpec, ContainerState
from alcatraz.runtime.cli_compat import CliRuntime
from alcatraz.runtime.detect import clear_cache, resolve_runtime
from alcatraz.runtime.docker import DockerRuntime
from alcatraz.runtime.engine_facts import FactsCache
from alcatraz.runtime.podman import PodmanRuntime
from tests.integration.conftest import TEST_IMAGE, Names, engine_problem

pytestmark = pytest.mark.integration

TRICKY_VALUE = "$(id) `id` 'single' \"double\" ; a,b:c\nsecond line"
CAP_CHOWN_ONLY = "0000000000000001"
MEMORY = 64 * 1024 * 1024
PIDS = 256


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def base_spec(name: str, **changes: object) -> ContainerSpec:
    fields: dict[str, object] = {
        "name": name,
        "image": TEST_IMAGE,
        "workdir": "/",
        "labels": {"alca.test": "runtime"},
        "pull": "never",  # there is no registry here; never try one
    }
    fields.update(changes)
    return ContainerSpec(**fields)  # type: ignore[arg-type]


@dataclass
class Sandbox:
    runtime: CliRuntime
    name: str
    id: str
    rw: Path
    ro: Path
    port: int
    spec: ContainerSpec

    def sh(self, script: str) -> tuple[int, str, str]:
        result = self.runtime.exec_capture(self.name, ["sh", "-c", script], timeout=30)
        return result.returncode, result.stdout, result.stderr


@pytest.fixture(scope="module")
def sandbox(engine: CliRuntime, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """One fully configured container per engine, shared by the read-only checks below."""
    root = tmp_path_factory.mktemp("sandbox")
    rw = root / "work space"  # a space in the host path
    ro = root / "read:only,dir"  # `:` and `,` would break `-v`
    rw.mkdir()
    ro.mkdir()
    (ro / "given.txt").write_text("from the host\n")
    names = Names(engine)
    port = free_port()
    spec = base_spec(
        names("full"),
        workdir="/workspace",
        labels={
            "alca.project.id": f"it-{uuid.uuid4()}",
            "alca.project.path": str(rw),
            "alca.version": "1",
        },
        mounts=[BindMount(str(rw), "/workspace"), BindMount(str(ro), "/ro", readonly=True)],
        env={"ALCA_IT": "present", "TRICKY": TRICKY_VALUE},
        ports=[PortMapping(8080, port, ipaddress.ip_address("127.0.0.1"), "tcp")],
        cap_drop=["ALL"],
        cap_add=["CHOWN"],
        memory="64m",
        cpus=0.5,
        pids_limit=PIDS,
    )
    try:
        container_id = engine.create(spec)
        yield Sandbox(engine, spec.name, container_id, rw, ro, port, spec)
    finally:
        names.cleanup()


# --- read back through inspect ---------------------------------------------------------------


def test_inspect_reads_back_the_spec(sandbox: Sandbox) -> None:
    info = sandbox.runtime.inspect(sandbox.name)
    assert info is not None
    assert info.id == sandbox.id
    assert info.name == sandbox.name
    assert info.state is ContainerState.RUNNING
    assert dict(sandbox.spec.labels).items() <= dict(info.labels).items()
    assert info.restart_policy in ("no", "")  # only alcatraz starts a sandbox (decision 0010)
    assert info.memory == MEMORY
    assert info.nano_cpus == 500_000_000
    assert info.pids_limit == PIDS
    assert info.init is True
    assert "no-new-privileges" in info.security_opt
    assert set(info.mounts) == {
        BindMount(str(sandbox.rw), "/workspace"),
        BindMount(str(sandbox.ro), "/ro", readonly=True),
    }
    assert info.ports == (
        PortMapping(8080, sandbox.port, ipaddress.ip_address("127.0.0.1"), "tcp"),
    )
    assert info.networks
    assert all(ipaddress.ip_address(ip).version == 4 for ip in info.networks.values())
    if isinstance(sandbox.runtime, PodmanRuntime):
        # Podman records caps relative to its default set and reports the effective set.
        assert info.effective_caps == ("CAP_CHOWN",)
        assert "CAP_CHOWN" not in info.cap_drop
        assert "CAP_NET_RAW" in info.cap_drop
    else:
        assert info.cap_add == ("CAP_CHOWN",)
        assert info.cap_drop == ("ALL",)


# --- read back from inside -------------------------------------------------------------------


def test_only_chown_and_no_new_privileges_inside(sandbox: Sandbox) -> None:
    code, out, err = sandbox.sh("cat /proc/self/status")
    assert code == 0, err
    status = dict(line.split(":\t", 1) for line in out.splitlines() if ":\t" in line)
    assert status["CapEff"].strip() == CAP_CHOWN_ONLY
    assert status["CapPrm"].strip() == CAP_CHOWN_ONLY
    assert status["CapBnd"].strip() == CAP_CHOWN_ONLY
    assert status["NoNewPrivs"].strip() == "1"


def test_mounts_inside(sandbox: Sandbox) -> None:
    code, out, _ = sandbox.sh("cat /ro/given.txt")
    assert (code, out) == (0, "from the host\n")
    code, _, err = sandbox.sh("echo nope > /ro/new.txt")
    assert code != 0
    assert "Read-only file system" in err
    assert not (sandbox.ro / "new.txt").exists()
    code, _, err = sandbox.sh("echo yes > /workspace/new.txt && chown 1234 /workspace/new.txt")
    assert code == 0, err  # CHOWN is the one capability granted
    written = sandbox.rw / "new.txt"
    assert written.read_text() == "yes\n"
    assert written.stat().st_uid == 1234


def test_env_inside_is_verbatim(sandbox: Sandbox) -> None:
    code, out, err = sandbox.sh('printf "%s|%s" "$ALCA_IT" "$TRICKY"')
    assert code == 0, err
    assert out == f"present|{TRICKY_VALUE}"


def test_workdir_init_and_limits_inside(sandbox: Sandbox) -> None:
    code, out, err = sandbox.sh("pwd; tr '\\0' ' ' </proc/1/cmdline")
    assert code == 0, err
    pwd, cmdline = out.splitlines()
    assert pwd == "/workspace"
    assert "init" in cmdline.split()[0]  # docker-init / podman-init, not sleep
    assert "sleep infinity" in cmdline
    code, out, err = sandbox.sh(  # cgroup v1 paths first (this VM), then v2
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null"
        " || cat /sys/fs/cgroup/memory.max;"
        " cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max"
    )
    assert code == 0, err
    assert out.split() == [str(MEMORY), str(PIDS)]


def test_published_port_on_loopback(sandbox: Sandbox) -> None:
    code, _, err = sandbox.sh("(echo hello-from-sandbox | nc -l -p 8080) >/dev/null 2>&1 &")
    assert code == 0, err
    deadline = time.monotonic() + 10
    received = b""
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", sandbox.port), timeout=2) as conn:
                received = conn.recv(100)
        except OSError:
            received = b""
        if received:
            break
        time.sleep(0.2)
    assert received == b"hello-from-sandbox\n"


def test_exec_passes_exit_codes_through(sandbox: Sandbox) -> None:
    runtime = sandbox.runtime
    assert runtime.exec(sandbox.name, ["sh", "-c", "exit 7"]) == 7
    assert runtime.exec_capture(sandbox.name, ["sh", "-c", "exit 7"]).returncode == 7
    assert runtime.exec(sandbox.name, ["true"]) == 0
    missing = runtime.exec_capture(sandbox.name, ["no-such-command"])
    assert missing.returncode in (126, 127)  # Docker 126, Podman 127


def test_exec_workdir_and_env(sandbox: Sandbox) -> None:
    result = sandbox.runtime.exec_capture(
        sandbox.name,
        ["sh", "-c", 'pwd; printf "%s" "$X"'],
        workdir="/ro",
        env={"X": TRICKY_VALUE},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"/ro\n{TRICKY_VALUE}"


# --- lifecycle -------------------------------------------------------------------------------


def test_stop_start_remove(engine: CliRuntime, container_name: Names) -> None:
    name = container_name("life")
    container_id = engine.create(base_spec(name))
    assert len(container_id) == 64
    info = engine.inspect(name)
    assert info is not None
    assert (info.id, info.state) == (container_id, ContainerState.RUNNING)
    engine.stop(name, timeout=5)
    info = engine.inspect(name)
    assert info is not None
    assert info.state is ContainerState.STOPPED
    engine.start(name)
    info = engine.inspect(name)
    assert info is not None
    assert info.state is ContainerState.RUNNING
    engine.remove(name)
    assert engine.inspect(name) is None
    engine.remove(name)  # already gone: fine


def test_list_by_label_finds_only_ours(engine: CliRuntime, container_name: Names) -> None:
    mine = f"alca.test.run={uuid.uuid4()}"
    key, _, value = mine.partition("=")
    first = container_name("l1")
    second = container_name("l2")
    other = container_name("l3")
    engine.create(base_spec(second, labels={key: value}))
    engine.create(base_spec(first, labels={key: value}))
    engine.create(base_spec(other, labels={key: "someone-else"}))
    engine.stop(second, timeout=5)  # stopped containers are listed too
    found = engine.list_by_label(mine)
    assert [i.name for i in found] == [first, second]
    assert [i.state for i in found] == [ContainerState.RUNNING, ContainerState.STOPPED]
    assert {i.name for i in engine.list_by_label(key)} >= {first, second, other}


def test_inspect_missing_is_none(engine: CliRuntime) -> None:
    assert engine.inspect(f"alca-it-missing-{uuid.uuid4().hex[:8]}") is None
    assert engine.inspect_many([]) == []


def test_failed_start_leaves_no_container(engine: CliRuntime, container_name: Names) -> None:
    name = container_name("busy")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        mapping = PortMapping(80, port, ipaddress.ip_address("127.0.0.1"), "tcp")
        with pytest.raises(CommandFailed, match="could not start container") as caught:
            engine.create(base_spec(name, ports=[mapping]))
    assert "address already in use" in caught.value.message
    assert engine.inspect(name) is None  # upstream's `run -d` left it in "created"


def test_missing_image_is_not_pulled(engine: CliRuntime, container_name: Names) -> None:
    name = container_name("noimg")
    image = "localhost/alca-test/does-not-exist:none"
    assert engine.image_exists(image) is False
    with pytest.raises(CommandFailed, match="could not create container"):
        engine.create(base_spec(name, image=image))
    assert engine.inspect(name) is None


def test_probes(engine: CliRuntime) -> None:
    assert engine.available() is True
    assert engine.version()
    assert engine.image_exists(TEST_IMAGE) is True
    if os.geteuid() == 0:
        assert engine.is_rootless() is False


# --- detection on this machine ---------------------------------------------------------------


@pytest.mark.docker
@pytest.mark.podman
def test_resolve_runtime_on_this_machine() -> None:
    for name in ("docker", "podman"):
        problem = engine_problem(name)
        if problem:
            pytest.skip(problem)
    clear_cache()
    try:
        runtime, reason = resolve_runtime("docker", platform="linux", environ={})
        assert isinstance(runtime, DockerRuntime)
        assert reason == "configured runtime=docker"
        runtime, reason = resolve_runtime("auto", platform="linux", environ={})
        assert isinstance(runtime, PodmanRuntime)
        assert reason == "auto: Podman found on Linux"
        runtime, reason = resolve_runtime(
            "auto", platform="linux", environ={"ALCA_RUNTIME": "docker"}
        )
        assert (runtime.name, reason) == ("Docker", "ALCA_RUNTIME=docker")
    finally:
        clear_cache()


# --- the API socket answers as the CLI does (issue #17) --------------------------------------


class _Recording(SubprocessRunner):
    """The real runner, remembering which commands it ran."""

    def __init__(self) -> None:
        self.ran: list[tuple[str, ...]] = []

    def run(self, argv: Sequence[str], **kwargs: Any) -> Result:
        self.ran.append(tuple(argv))
        return super().run(argv, **kwargs)


def test_the_api_socket_answers_as_the_cli_does(
    sandbox: Sandbox, engine: CliRuntime, tmp_path: Path
) -> None:
    """Inspect, listing and networks through the engine's socket: what the CLI reads."""
    runner = _Recording()
    api = type(engine)(runner)
    api.use_facts(FactsCache(tmp_path, engine.executable, os.environ), api=True)
    if api.api is None or not api.api.ping():
        pytest.skip(f"{engine.executable}'s API socket does not answer here")
    assert api.inspect(sandbox.name) == engine.inspect(sandbox.name)
    assert api.inspect(f"alca-it-missing-{uuid.uuid4().hex[:8]}") is None
    label = f"alca.project.id={sandbox.spec.labels['alca.project.id']}"
    listed, cli_listed = api.list_by_label(label), engine.list_by_label(label)
    assert [(i.id, i.name, i.state, i.labels) for i in listed] == [
        (i.id, i.name, i.state, i.labels) for i in cli_listed
    ]
    assert listed[0].created_at[:19] == cli_listed[0].created_at[:19]
    default = "bridge" if engine.executable == "docker" else "podman"
    assert api.network_inspect(default) == engine.network_inspect(default)
    assert api.network_inspect(f"alca-it-missing-{uuid.uuid4().hex[:8]}") is None
    assert {n.name for n in api.networks()} == {n.name for n in engine.networks()}
    assert runner.ran == [], runner.ran  # nothing went through the CLI
