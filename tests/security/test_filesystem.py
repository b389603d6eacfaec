"""Filesystem attacks by the agent on its workspace (plan §4.5 FS-*), synced and bind-mounted.

The agent (through `alca run`) makes symlinks and hardlinks pointing out of the workspace,
flips a directory into a symlink while Mutagen syncs, creates a setuid-root file, a FIFO
and (it should not be able to) a device node; the test adds a Unix socket (busybox has no
tool for one). Then: no host file outside the project changed (a canary directory beside
the project, /etc/hostname, /etc/passwd, the `../../x` target), no setuid file reaches the
host through sync, nothing hangs, and Mutagen stays healthy or says what is wrong.

Modes: Docker with a synced workdir (`workdir_exclude = ["**/.env"]`), Docker and Podman
with a plain bind mount.
"""

from __future__ import annotations

import hashlib
import os
import socket
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.conftest import engine_problem
from tests.integration.sync_helpers import SyncProject, SyncWorkspace, config, write

pytestmark = pytest.mark.integration

ATTACK = r"""
cd /workspace
ln -s /etc/passwd link-passwd
ln -s ../../x link-up
ln -s / link-root
echo agent-wrote-here > link-up 2>/dev/null        # inside: /x in the container
ln /etc/passwd hard-passwd 2>/dev/null && echo HARDLINK-OUT
ln /etc/hostname hard-hostname 2>/dev/null && echo HARDLINK-HOSTNAME
cp /bin/busybox suid && chmod 4755 suid && echo SUID-MADE
cp /bin/busybox sgid && chmod g+s sgid && echo SGID-MADE
cp /bin/busybox suid-symbolic && chmod u+s suid-symbolic && echo SUID-SYMBOLIC-MADE
mkdir untar && tar -xpf evil.tar -C untar 2>/dev/null; [ -u untar/payload ] && echo TAR-SUID-MADE
mkfifo -m 4755 fifo-suid 2>/dev/null && [ -u fifo-suid ] && echo FIFO-SUID-MADE
mkfifo fifo && echo FIFO-MADE
mknod dev-null c 1 3 2>/dev/null && echo MKNOD-OK
mknod dev-sda b 8 0 2>/dev/null && echo MKNOD-BLOCK-OK
i=0
while [ $i -lt 20 ]; do                            # a directory flipping into a symlink
  rm -rf flip; mkdir flip; echo "round $i" > flip/f
  rm -rf flip; ln -s /etc flip
  i=$((i+1))
done
echo ATTACK-DONE
"""

WRITE_THROUGH = r"""
cd /workspace
echo agent > flip/alca-through-flip 2>/dev/null && echo WROTE-THROUGH-FLIP
echo agent >> link-passwd 2>/dev/null && echo WROTE-PASSWD-INSIDE
true
"""


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def canary_snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): digest(p) for p in sorted(root.rglob("*")) if p.is_file()}


@dataclass
class Attacked:
    mode: str
    engine: str
    project: SyncProject
    workspace: SyncWorkspace
    canary: Path
    canary_before: dict[str, str]
    host_files_before: dict[str, str]
    attack_output: str
    through_output: str

    @property
    def root(self) -> Path:
        return self.project.root


HOST_FILES = ("/etc/hostname", "/etc/passwd")
#: What the agent prints when it managed to give a workspace file a setuid/setgid bit.
SETUID_MARKERS = (
    "SUID-MADE",
    "SGID-MADE",
    "SUID-SYMBOLIC-MADE",
    "TAR-SUID-MADE",
    "FIFO-SUID-MADE",
)


def _write_setuid_archive(path: Path) -> None:
    """A tarball holding a setuid-root program, as an agent could download one."""
    payload = Path("/bin/busybox").read_bytes()
    with tarfile.open(path, "w") as archive:
        member = tarfile.TarInfo("payload")
        member.size, member.mode, member.uid, member.gid = len(payload), 0o4755, 0, 0
        with Path("/bin/busybox").open("rb") as data:
            archive.addfile(member, data)


MODES = [
    pytest.param(("docker", "sync"), marks=pytest.mark.docker, id="docker-sync"),
    pytest.param(("docker", "bind"), marks=pytest.mark.docker, id="docker-bind"),
    pytest.param(("podman", "bind"), marks=pytest.mark.podman, id="podman-bind"),
]


@pytest.fixture(scope="module", params=MODES)
def attacked(request: pytest.FixtureRequest) -> Iterator[Attacked]:
    engine, mode = request.param
    problem = engine_problem(engine)
    if problem:
        pytest.skip(problem)
    workspace = SyncWorkspace(engine)
    try:
        canary = workspace.base / "canary"
        write(canary, {"secret.txt": "canary", "x": "not the agent's"})
        exclude = '["**/.env"]' if mode == "sync" else ""
        project = workspace.project(
            "proj", config(engine, exclude=exclude), {"src/a.txt": "a", ".env": "SECRET=1"}
        )
        _write_setuid_archive(project.root / "evil.tar")
        # The link `../../x` seen from the host project resolves to <base>/../x: keep a
        # canary there too would touch /tmp; instead assert it never appears.
        host_before = {p: digest(Path(p)) for p in HOST_FILES}
        before = canary_snapshot(canary)
        project.ok("trust", "--yes")
        project.ok("up", "--yes")
        attack = project.alca("run", "sh", "-c", ATTACK, timeout=120)
        assert "ATTACK-DONE" in attack.stdout, str(attack)
        with socket.socket(socket.AF_UNIX) as sock:  # a socket in the workspace
            sock.bind(str(project.root / "sock"))
        if mode == "sync":
            project.flush()
        through = project.alca("run", "sh", "-c", WRITE_THROUGH, timeout=60)
        if mode == "sync":
            project.flush()
        yield Attacked(
            mode, engine, project, workspace, canary, before, host_before, attack.stdout,
            through.stdout,
        )  # fmt: skip
    finally:
        workspace.cleanup()


def test_no_host_file_outside_the_project_changes(attacked: Attacked) -> None:
    assert canary_snapshot(attacked.canary) == attacked.canary_before
    assert {p: digest(Path(p)) for p in HOST_FILES} == attacked.host_files_before
    outside = attacked.root.parent.parent / "x"  # where ../../x points from the project
    assert not outside.exists(), f"{outside} appeared on the host"
    assert not (Path("/etc") / "alca-through-flip").exists()


def test_symlinks_out_stay_links_and_are_not_followed(attacked: Attacked) -> None:
    for name in ("link-passwd", "link-up", "link-root"):
        path = attacked.root / name
        kind = "symlink" if path.is_symlink() else ("absent" if not path.exists() else "file")
        print(f"\n[{attacked.engine}-{attacked.mode}] host {name}: {kind}")
        if attacked.mode == "sync" and not path.is_symlink():
            continue  # Mutagen's portable mode refuses links out of the root: fine
        assert path.is_symlink(), f"{name} landed on the host as a file or directory"
    # The host /etc/passwd did not get the agent's line (checked by digest above too).
    assert "agent" not in Path("/etc/passwd").read_text()


def test_hardlinks_out_of_the_workspace_fail_or_stay_in_the_container(attacked: Attacked) -> None:
    if attacked.mode == "bind":  # another filesystem than the container's: EXDEV
        assert "HARDLINK-OUT" not in attacked.attack_output
        assert "HARDLINK-HOSTNAME" not in attacked.attack_output
        return
    # Synced: /workspace is in the container's own filesystem, so a hardlink to the
    # container's /etc/passwd works there; the host gets a plain copy, linked to nothing.
    copy = attacked.root / "hard-passwd"
    if copy.exists():
        assert copy.is_file() and not copy.is_symlink() and copy.stat().st_nlink == 1
        assert copy.stat().st_ino != Path("/etc/passwd").stat().st_ino


def test_directory_flipped_into_a_symlink_never_writes_outside(attacked: Attacked) -> None:
    flip = attacked.root / "flip"
    assert flip.is_symlink() or flip.is_dir() or not flip.exists()
    assert not (Path("/etc") / "alca-through-flip").exists()
    if flip.is_dir() and not flip.is_symlink():
        assert not (flip / "alca-through-flip").exists() or attacked.mode == "sync"


def test_no_device_node_can_be_made(attacked: Attacked) -> None:
    assert "MKNOD-OK" not in attacked.attack_output
    assert "MKNOD-BLOCK-OK" not in attacked.attack_output
    for name in ("dev-null", "dev-sda"):
        path = attacked.root / name
        assert not (path.exists() and stat.S_ISBLK(path.lstat().st_mode)), name


def test_fifo_and_socket_do_not_hang_anything(attacked: Attacked) -> None:
    assert "FIFO-MADE" in attacked.attack_output
    # The fixture's flushes and runs returned (bounded by timeouts); a status still answers.
    status = attacked.project.alca("status", timeout=60)
    assert status.returncode == 0, str(status)
    fifo = attacked.root / "fifo"
    if attacked.mode == "sync":
        assert not fifo.exists() or stat.S_ISFIFO(fifo.lstat().st_mode)


def _setuid_files(root: Path) -> list[str]:
    """Files under `root` with a setuid or setgid bit, without following links out."""
    found = []
    for directory, dirs, files in os.walk(root, followlinks=False):
        for name in files + dirs:
            mode = os.lstat(os.path.join(directory, name)).st_mode
            if not stat.S_ISLNK(mode) and mode & (stat.S_ISUID | stat.S_ISGID):
                found.append(f"{os.path.join(directory, name)} {oct(mode)}")
    return found


def test_setuid_file_does_not_land_on_the_host(attacked: Attacked) -> None:
    made = [marker for marker in SETUID_MARKERS if marker in attacked.attack_output.split()]
    if attacked.mode == "bind":
        # A rw bind mount gets the setuid guard: every way of setting the bit is refused.
        assert made == [], f"the agent set setuid/setgid bits in a bind mount: {made}"
        guard = attacked.project.alca("run", "sh", "-c", "touch g; chmod 4755 g")
        assert guard.returncode != 0 and "not permitted" in guard.stderr, str(guard)
    else:
        # Synced: the agent may set the bit inside (no-new-privileges makes it inert there);
        # Mutagen carries no setuid bits and writes as the user.
        assert "SUID-MADE" in made, attacked.attack_output
        suid = attacked.root / "suid"
        if suid.exists():
            assert suid.lstat().st_uid == os.getuid()
    assert _setuid_files(attacked.root) == []


def test_sync_session_stays_healthy_or_reports(attacked: Attacked) -> None:
    if attacked.mode != "sync":
        pytest.skip("bind mount: no sync session")
    assert attacked.workspace.daemon_running()
    sessions = attacked.project.sessions()
    assert sessions, "no sync session for the project"
    for session in sessions:
        status = str(session.get("status", ""))
        problems = [
            key
            for key in ("alphaState", "betaState")
            if (session.get(key) or {}).get("scanProblems")
        ]
        print(f"\n[{session.get('name')}] status={status} problems in {problems or 'none'}")
        assert "halted" not in status.lower(), session
    check = attacked.project.alca("experimental", "sync", "check", "--json", timeout=60)
    assert check.returncode in (0, 1), str(check)
    # The excluded secret never went into the container, attack or not.
    assert not attacked.project.inside_exists("/workspace/.env")
