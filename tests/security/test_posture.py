"""What the agent sees from inside a default sandbox (plan §4.5 POS-*), on Docker and Podman.

Every check goes through `alca run`, as the agent would. The fork bomb and the memory hog
run only inside the sandbox, bounded by its pids and memory limits, by `timeout`, and by
killing the container by name at the end.
"""

from __future__ import annotations

import statistics
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.lifecycle.helpers import (
    DEFAULT_CAP_EFF,
    Project,
    Projects,
    engine_cli,
    remove_container,
)

pytestmark = pytest.mark.integration

CONFIG_TOP = '[resources]\nmemory = "64m"\n'


@pytest.fixture(scope="module")
def sandbox(engine: str) -> Iterator[Project]:
    made = Projects(engine)
    try:
        project = made.new("posture", tables=CONFIG_TOP)
        project.approve()
        project.start()
        yield project
    finally:
        made.cleanup()


def status_field(project: Project, name: str) -> str:
    out = project.ok("run", "grep", f"^{name}:", "/proc/self/status").stdout
    return out.split(":", 1)[1].strip()


def test_effective_capabilities_are_the_six_defaults(sandbox: Project) -> None:
    assert int(status_field(sandbox, "CapEff"), 16) == DEFAULT_CAP_EFF


def test_no_new_privileges(sandbox: Project) -> None:
    assert status_field(sandbox, "NoNewPrivs") == "1"


def test_seccomp_filter_mode(sandbox: Project) -> None:
    assert status_field(sandbox, "Seccomp") == "2"


def test_no_engine_socket_inside(sandbox: Project) -> None:
    script = (
        "for s in /var/run/docker.sock /run/docker.sock /run/podman/podman.sock "
        "/run/containerd/containerd.sock; do [ -e $s ] && echo FOUND $s; done; "
        "find / -xdev -type s 2>/dev/null | grep -E 'docker|podman|containerd' || true; "
        'env | grep -E "^(DOCKER_HOST|CONTAINER_HOST)=" || true'
    )
    outcome = sandbox.sh(script)
    assert outcome.returncode == 0, str(outcome)
    assert outcome.stdout.strip() == "", outcome.stdout


def test_own_network_namespace(sandbox: Project) -> None:
    inside = sandbox.ok("run", "readlink", "/proc/self/ns/net").stdout.strip()
    host = Path("/proc/self/ns/net").readlink().as_posix()
    assert inside.startswith("net:[") and inside != host
    links = sandbox.ok("run", "ip", "-o", "link").stdout
    host_links = subprocess.run(
        ["ip", "-o", "link"], capture_output=True, text=True, check=False
    ).stdout
    names = {line.split(":")[1].strip().split("@")[0] for line in links.splitlines()}
    host_names = {line.split(":")[1].strip().split("@")[0] for line in host_links.splitlines()}
    assert names <= {"lo", "eth0", "eth1"}, names
    assert len(names) < len(host_names) or "docker0" not in names


def test_not_privileged_proc_sys_read_only(sandbox: Project) -> None:
    outcome = sandbox.sh(
        "echo alca-pwned > /proc/sys/kernel/hostname && echo WROTE; "
        "echo 1 > /proc/sys/net/ipv4/ip_forward && echo WROTE; "
        "mount -t tmpfs none /mnt 2>/dev/null && echo MOUNTED; true"
    )
    assert "WROTE" not in outcome.stdout and "MOUNTED" not in outcome.stdout, str(outcome)
    assert Path("/proc/sys/kernel/hostname").read_text().strip() != "alca-pwned"


def test_memory_hog_is_oom_killed_host_unaffected(sandbox: Project) -> None:
    record = sandbox.inspect()
    assert record is not None
    assert record["HostConfig"]["Memory"] == 64 * 1024 * 1024
    # dd allocates (and touches) one 300 MiB buffer: more than memory + swap (128 MiB).
    outcome = sandbox.sh(
        "timeout 60 dd if=/dev/zero of=/dev/null bs=300M count=1; echo rc=$?", timeout=90
    )
    assert outcome.returncode == 0, str(outcome)
    assert "rc=137" in outcome.stdout, str(outcome)  # SIGKILL from the OOM killer
    assert sandbox.container_running(), "the sandbox died with its memory hog"
    assert sandbox.ok("run", "echo", "alive").stdout.strip() == "alive"


class Latency:
    """Times a trivial host command every 100 ms on a thread, until stopped."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            start = time.monotonic()
            subprocess.run(["true"], check=False)
            self.samples.append(time.monotonic() - start)
            time.sleep(0.1)

    def __enter__(self) -> Latency:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=10)


def baseline_latency() -> float:
    samples = []
    for _ in range(10):
        start = time.monotonic()
        subprocess.run(["true"], check=False)
        samples.append(time.monotonic() - start)
    return statistics.median(samples)


BOMB = "i=0; while [ $i -lt 10000 ]; do sleep 30 & i=$((i+1)); done"


def test_fork_bomb_hits_the_pids_limit_host_stays_responsive(engine: str) -> None:
    made = Projects(engine)
    name = ""
    try:
        # No memory limit here: 64 MiB would OOM-kill the bomb before it meets the pids limit.
        project = made.new("bomb", top="")
        project.approve()
        project.start()
        name = project.container_name
        record = project.inspect()
        assert record is not None
        limit = record["HostConfig"]["PidsLimit"]
        assert isinstance(limit, int) and 0 < limit <= 4096, limit
        base = baseline_latency()
        with Latency() as latency:
            # Only shell builtins after the bomb: no fork is left for anything else.
            outcome = project.sh(
                f'({BOMB}; echo "reached $i") 2>/tmp/bomb.err; '
                'while read -r l; do echo "err: $l"; done < /tmp/bomb.err',
                timeout=120,
            )
        out = outcome.output
        assert "reached 10000" not in out, out
        assert "can't fork" in out or "resource temporarily unavailable" in out.lower(), out
        pids = engine_cli(engine, "stats", "--no-stream", "--format", "{{.PIDs}}", name)
        if pids.returncode == 0 and pids.stdout.strip().isdigit():
            assert limit - 64 <= int(pids.stdout.strip()) <= limit, pids.stdout
        worst = max(latency.samples, default=0.0)
        print(
            f"\n[{engine}] pids limit {limit}; host `true` latency baseline {base * 1000:.1f} ms, "
            f"worst during bomb {worst * 1000:.1f} ms over {len(latency.samples)} samples"
        )
        assert latency.samples, "no host latency sample was taken"
        assert worst < 2.0, f"host command took {worst:.2f} s during the fork bomb"
    finally:
        if name:
            subprocess.run(
                ["timeout", "60", engine, "kill", name], capture_output=True, check=False
            )
            remove_container(engine, name)
        made.cleanup()
