"""Rootless Podman, for real: `alca` run by an unprivileged user against its own Podman.

alcatraz cannot filter a rootless engine's traffic (it leaves through slirp4netns, in
user space, which the host's nftables never sees), so with the default network settings
`alca up` must refuse (exit 77, "runs rootless") before it creates anything; with
`lan-access = ["*"]` (isolation off, knowingly) the sandbox must work. `alca doctor` must
warn that Podman is rootless. The other tests only simulate this: as root, Podman is
rootful by definition.

The lane is prepared by `scripts/setup-rootless-lane.sh` (user `alca-rootless`, its
subordinate ids, XDG_RUNTIME_DIR, Podman configuration and the test image in its storage).
Without it these tests skip, saying why; under CI they fail instead.

The tests run as root and switch to the lane's user with `runuser`. The repository's venv
interpreter may live where that user cannot go (e.g. under /root), so alca runs from a
world-readable copy of the package and its runtime dependencies, with an interpreter of the
same Python version that the user can execute. HOME is the lane user's real home: that is
where its Podman keeps its configuration and storage; alcatraz's own state goes to a
temporary ALCA_HOME. Everything a test creates is removed by the project's path label.
"""

from __future__ import annotations

import importlib.metadata
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

import alcatraz
from alcatraz import state as alca_state
from alcatraz.network.plan import network_name, project_key
from tests.integration.lifecycle.helpers import Outcome

pytestmark = [pytest.mark.integration, pytest.mark.podman]

LANE_USER = "alca-rootless"
IMAGE = "localhost/alca-test/busybox:latest"
SETUP = "run `bash scripts/setup-rootless-lane.sh` as root (after scripts/setup-test-env.sh)"
LANE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
REFUSED = 77
TIMEOUT = 120.0
LABEL = "alca.project.path"


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def lane_missing(reason: str) -> None:
    """Skip, or fail under CI: the lane is part of the CI machine's setup."""
    message = f"rootless-Podman lane not usable: {reason}; {SETUP}"
    if under_ci():
        pytest.fail(f"{message} (CI is set, so this is a failure, not a skip)", pytrace=False)
    pytest.skip(message)


@dataclass(frozen=True)
class Lane:
    """The lane's user, the interpreter it runs, and a copy of alca it can read."""

    user: pwd.struct_passwd
    runtime_dir: Path
    python: str
    lib: Path

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            "HOME": self.user.pw_dir,
            "USER": self.user.pw_name,
            "LOGNAME": self.user.pw_name,
            "SHELL": "/bin/bash",
            "PATH": LANE_PATH,
            "XDG_RUNTIME_DIR": str(self.runtime_dir),
            "LANG": "C.UTF-8",
        }
        env.update(extra)
        return env

    def run(
        self,
        argv: Sequence[str],
        *,
        cwd: Path | str = "/",
        env: dict[str, str] | None = None,
        timeout: float = TIMEOUT,
    ) -> subprocess.CompletedProcess[str]:
        """`argv` as the lane's user, with a clean environment (nothing of root's leaks in)."""
        variables = [f"{k}={v}" for k, v in (env or self.env()).items()]
        return subprocess.run(
            ["runuser", "-u", self.user.pw_name, "--", "env", "-i", *variables, *argv],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def podman(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run(["podman", *args])

    def labelled(self, kind: str, root: Path) -> list[str]:
        """Names of the user's containers (`ps`) or networks (`network`) labelled with `root`."""
        if kind == "ps":
            args = ["ps", "-a", "--format", "{{.Names}}"]
        else:
            args = ["network", "ls", "--format", "{{.Name}}"]
        done = self.podman(*args, "--filter", f"label={LABEL}={root}")
        assert done.returncode == 0, f"podman {' '.join(args)} as {LANE_USER}: {done.stderr}"
        return done.stdout.split()


class Project:
    """A project directory owned by the lane's user, with its own ALCA_HOME."""

    def __init__(self, lane: Lane, base: Path) -> None:
        self.lane = lane
        self.root = base / "proj"
        self.alca_home = base / "alca-home"
        for path in (self.root, self.alca_home):
            path.mkdir(mode=0o755)
            os.chown(path, lane.user.pw_uid, lane.user.pw_gid)

    def write_config(self, network: str = "") -> None:
        path = self.root / ".alca.toml"
        path.write_text(f'image = "{IMAGE}"\nruntime = "podman"\n{network}')
        os.chown(path, self.lane.user.pw_uid, self.lane.user.pw_gid)

    def alca(self, *args: str) -> Outcome:
        env = self.lane.env(
            ALCA_HOME=str(self.alca_home),
            NO_COLOR="1",
            PYTHONPATH=str(self.lane.lib),
            PYTHONDONTWRITEBYTECODE="1",
        )
        done = self.lane.run([self.lane.python, "-m", "alcatraz", *args], cwd=self.root, env=env)
        return Outcome(tuple(args), done.returncode, done.stdout, done.stderr)

    def ok(self, *args: str) -> Outcome:
        done = self.alca(*args)
        assert done.returncode == 0, str(done)
        return done

    def project_id(self) -> str | None:
        data = alca_state.read_json(
            alca_state.project_dir(self.alca_home, self.root) / "state.json"
        )
        pid = (data or {}).get("project_id")
        return pid if isinstance(pid, str) else None

    def cleanup(self) -> list[str]:
        """`alca down`, then remove what is left by this project's path label."""
        problems: list[str] = []
        if self.project_id() is not None and (self.root / ".alca.toml").exists():
            done = self.alca("down", "-q")
            if done.returncode != 0:
                problems.append(str(done))
        for name in self.lane.labelled("ps", self.root):
            problems.append(f"container {name} left behind")
            self.lane.podman("rm", "-f", "-t", "0", name)
        for name in self.lane.labelled("network", self.root):
            problems.append(f"network {name} left behind")
            self.lane.podman("network", "rm", "-f", name)
        return problems


def find_python(run_as: Lane) -> str | None:
    """An interpreter the user can run, of this Python's version (the copied compiled
    dependencies, e.g. msgspec, are built for it)."""
    want = f"{sys.version_info[0]}.{sys.version_info[1]}"
    candidates = [
        os.path.realpath(sys.executable),
        os.path.realpath(getattr(sys, "_base_executable", sys.executable)),
        f"/usr/bin/python{want}",
        f"/usr/local/bin/python{want}",
        "/usr/bin/python3",
    ]
    for candidate in dict.fromkeys(candidates):
        if not Path(candidate).is_file():
            continue
        done = run_as.run(
            [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], timeout=30
        )
        if done.returncode == 0 and done.stdout.strip() == want:
            return candidate
    return None


def runtime_distributions() -> list[importlib.metadata.Distribution]:
    """The installed distributions alcatraz needs at run time (its non-extra requirements,
    recursively)."""
    found: dict[str, importlib.metadata.Distribution] = {}
    pending = list(importlib.metadata.requires("alcatraz") or [])
    while pending:
        requirement = pending.pop()
        if "extra ==" in requirement:
            continue
        match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
        if match is None:
            continue
        key = re.sub(r"[-_.]+", "-", match.group(0)).lower()
        if key in found:
            continue
        try:
            dist = importlib.metadata.distribution(key)
        except importlib.metadata.PackageNotFoundError:
            continue  # a requirement for another platform or Python version
        found[key] = dist
        pending.extend(dist.requires or [])
    return list(found.values())


def copy_alca(lib: Path) -> None:
    """alcatraz and its runtime dependencies into `lib`, readable by everyone."""
    package = Path(alcatraz.__file__).resolve().parent
    shutil.copytree(package, lib / "alcatraz", ignore=shutil.ignore_patterns("__pycache__"))
    for dist in runtime_distributions():
        site = Path(str(dist.locate_file(""))).resolve()
        for file in dist.files or []:
            source = Path(str(dist.locate_file(file))).resolve()
            if not source.is_file() or not source.is_relative_to(site):
                continue  # console scripts and the like, outside site-packages
            if "__pycache__" in source.parts:
                continue
            target = lib / source.relative_to(site)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, target)
    for directory, _dirs, files in os.walk(lib):
        os.chmod(directory, 0o755)  # noqa: S103 - the lane's user must read it
        for name in files:
            path = Path(directory) / name
            os.chmod(path, path.stat().st_mode | 0o444)


@pytest.fixture(scope="module")
def lane() -> Iterator[Lane]:
    if os.geteuid() != 0:
        lane_missing("the tests switch to the lane's user with runuser, which needs root")
    for command in ("runuser", "podman", "nft"):
        if shutil.which(command) is None:
            lane_missing(f"`{command}` is not installed")
    try:
        user = pwd.getpwnam(LANE_USER)
    except KeyError:
        lane_missing(f"there is no user {LANE_USER}")
        raise
    runtime_dir = Path(f"/run/user/{user.pw_uid}")
    if not runtime_dir.is_dir() or runtime_dir.stat().st_uid != user.pw_uid:
        lane_missing(f"{runtime_dir} is missing or not owned by {LANE_USER} (after a reboot?)")
    probe = Lane(user, runtime_dir, python="", lib=Path())
    info = probe.podman("info", "--format", "{{.Host.Security.Rootless}}")
    if info.returncode != 0 or info.stdout.strip() != "true":
        lane_missing(
            f"`podman info` as {LANE_USER} does not say rootless: "
            f"{(info.stdout + info.stderr).strip()[-500:]}"
        )
    if probe.podman("image", "exists", IMAGE).returncode != 0:
        lane_missing(f"{LANE_USER}'s Podman has no image {IMAGE}")
    python = find_python(probe)
    if python is None:
        lane_missing(
            f"no Python {sys.version_info[0]}.{sys.version_info[1]} that {LANE_USER} can "
            f"execute (the venv's interpreter is {os.path.realpath(sys.executable)})"
        )
        raise AssertionError("unreachable")
    base = Path(tempfile.mkdtemp(prefix="alca-rl-lib-", dir="/tmp"))
    try:
        os.chmod(base, 0o755)  # noqa: S103 - the lane's user must read it
        copy_alca(base / "lib")
        lane = Lane(user, runtime_dir, python, base / "lib")
        check = lane.run(
            [python, "-c", "import alcatraz.cli, msgspec, rich"],
            env=lane.env(PYTHONPATH=str(lane.lib), PYTHONDONTWRITEBYTECODE="1"),
        )
        assert check.returncode == 0, f"the copy of alca does not import: {check.stderr}"
        yield lane
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def project(lane: Lane) -> Iterator[Project]:
    base = Path(tempfile.mkdtemp(prefix="alca-rl-", dir="/tmp"))  # short: engines like that
    os.chmod(base, 0o755)  # noqa: S103 - the lane's user must reach its project
    proj = Project(lane, base)
    try:
        yield proj
    finally:
        problems = proj.cleanup()
        shutil.rmtree(base, ignore_errors=True)
        assert not problems, "cleanup found leftovers:\n" + "\n".join(problems)


def nft_ruleset_text() -> str:
    """Root's `inet alcatraz` table, or "" when there is none."""
    done = subprocess.run(
        ["nft", "list", "table", "inet", "alcatraz"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return done.stdout if done.returncode == 0 else ""


def test_isolated_up_on_rootless_podman_is_refused(project: Project) -> None:
    """Default network settings: refused with exit 77 naming rootless, nothing created."""
    project.write_config()
    project.ok("trust", "--yes")
    done = project.alca("up")
    print(f"\n{done}")
    assert done.returncode == REFUSED, str(done)
    assert "network isolation cannot be guaranteed" in done.stderr, str(done)
    assert "Podman runs rootless" in done.stderr, str(done)
    # The rootless refusal comes first, not the unprivileged user's lack of nft access.
    assert "cannot manage nftables" not in done.stderr, str(done)
    assert project.lane.labelled("ps", project.root) == []
    assert project.lane.labelled("network", project.root) == []
    table = nft_ruleset_text()
    assert str(project.root) not in table
    pid = project.project_id()
    if pid is not None:
        assert project.lane.podman("network", "exists", network_name(pid)).returncode != 0
        assert f"p_{project_key(pid)}_" not in table
        assert network_name(pid) not in table


def test_opted_out_sandbox_runs_on_rootless_podman(project: Project) -> None:
    """lan-access = ["*"]: up, run, status and down work against rootless Podman."""
    project.write_config('[network]\nlan-access = ["*"]\n')
    project.ok("trust", "--yes")
    up = project.ok("up")
    print(f"\n{up}")
    containers = project.lane.labelled("ps", project.root)
    assert len(containers) == 1, containers
    assert project.lane.labelled("network", project.root) != []
    # It lives in the user's storage, not root's.
    as_root = subprocess.run(
        ["podman", "ps", "-a", "--filter", f"label={LABEL}={project.root}", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert as_root.stdout.split() == [], as_root.stdout
    # Container root is the lane's user on the host.
    pid = project.lane.podman("inspect", "--format", "{{.State.Pid}}", containers[0])
    assert pid.returncode == 0, pid.stderr
    assert Path(f"/proc/{pid.stdout.strip()}").stat().st_uid == project.lane.user.pw_uid

    run = project.ok("run", "echo", "hi")
    assert run.stdout.strip() == "hi", str(run)
    status = project.ok("status")
    assert "Running" in status.stdout, str(status)
    assert "Network isolation: Off" in status.stdout, str(status)

    project.ok("down")
    assert project.lane.labelled("ps", project.root) == []
    assert project.lane.labelled("network", project.root) == []


def test_doctor_reports_rootless_podman(project: Project) -> None:
    """`alca doctor` as the lane's user warns that Podman runs rootless.

    Its exit status is not checked: the user cannot reach root's Docker daemon, which
    doctor reports as a failure.
    """
    project.write_config()
    done = project.alca("doctor")
    print(f"\n{done}")
    lines = [line for line in done.stdout.splitlines() if re.match(r"^\S\s+podman\s", line)]
    assert len(lines) == 1, str(done)
    assert lines[0].startswith("!"), str(done)  # a warning
    assert "rootless: network isolation cannot be guaranteed" in lines[0], str(done)
