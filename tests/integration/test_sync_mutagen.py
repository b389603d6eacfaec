"""The Mutagen wrapper against real Mutagen 0.18.1 and real Docker and Podman containers.

Per engine: one `alpine:3.21` container (`sleep infinity`) and one private Mutagen daemon
whose data directory is a short /tmp path; every session is labelled with this run's id and
terminated, the daemon stopped and the container removed by name at the end. A hostile
`~/.mutagen.yml` (ignore `*.txt`) and `MUTAGEN_BETA_DOCKER_HOST` sit in the environment
handed to the wrapper throughout: the tests pass only because neither is used.

What the container sees is read with `<engine> exec`; only the latency sample reads the
container's files through `/proc/<pid>/root` (the same mount namespace, no exec overhead).
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from alcatraz.config.layer import Mount
from alcatraz.errors import UnavailableError
from alcatraz.proc import CommandFailed, SubprocessRunner
from alcatraz.runtime.base import ContainerSpec
from alcatraz.runtime.cli_compat import CliRuntime
from alcatraz.sync import conflicts as cf
from alcatraz.sync.mutagen import Mutagen, Session, SyncError, session_labels, session_name
from tests.integration.conftest import TEST_IMAGE, Names
from tests.integration.sync_helpers import host_tree, write

pytestmark = pytest.mark.integration

HOSTILE_GLOBAL_CONFIG = 'sync:\n  defaults:\n    ignore:\n      paths:\n        - "*.txt"\n'

# Lists every entry under $1 as "<path>\t<D|F|L>\t<content or link target>", sorted.
TREE_SCRIPT = r"""
cd "$1" || exit 3
find . -mindepth 1 | sort | while IFS= read -r p; do
  if [ -L "$p" ]; then printf '%s\tL\t%s\n' "${p#./}" "$(readlink "$p")"
  elif [ -d "$p" ]; then printf '%s\tD\t\n' "${p#./}"
  else printf '%s\tF\t%s\n' "${p#./}" "$(cat "$p")"
  fi
done
"""

Tree = dict[str, str | None]  # path -> file content, "-> target" for links, None for dirs


def parse_tree(text: str) -> Tree:
    tree: Tree = {}
    for line in text.splitlines():
        path, kind, rest = line.split("\t", 2)
        tree[path] = None if kind == "D" else (f"-> {rest}" if kind == "L" else rest)
    return tree


@dataclass
class Rig:
    """One engine, one container, one private Mutagen daemon."""

    runtime: CliRuntime
    mutagen: Mutagen
    container: str
    project_id: str
    host_base: Path
    sessions: list[str] = field(default_factory=list)

    @property
    def engine(self) -> str:
        return self.runtime.executable

    def sh(self, script: str, *args: str) -> str:
        result = self.runtime.exec_capture(
            self.container, ["sh", "-c", script, "sh", *args], timeout=30
        )
        assert result.ok, f"in-container command failed: {result.stderr}"
        return result.stdout

    def tree(self, path: str) -> Tree:
        return parse_tree(self.sh(TREE_SCRIPT, path))

    def session(
        self,
        case: str,
        files: Mapping[str, str],
        *,
        ignores: tuple[str, ...] = (),
        one_way: bool = False,
    ) -> tuple[Path, str, Session]:
        """A fresh host dir with `files`, synced into an empty /w/<case>, flushed."""
        index = len(self.sessions)
        host = self.host_base / case
        host.mkdir()
        write(host, files)
        name = session_name(self.project_id[:8], index)
        created = self.mutagen.create(
            name,
            str(host),
            self.container,
            f"/w/{case}",
            ignores=ignores,
            one_way=one_way,
            labels=session_labels(self.project_id, index),
        )
        self.sessions.append(name)
        assert created.ignore_paths == ignores  # nothing added (global config) or split
        assert created.mode == ("one-way-replica" if one_way else "two-way-safe")
        return host, f"/w/{case}", self.mutagen.flush(name)


@pytest.fixture(scope="module")
def rig(engine: CliRuntime, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    home = tmp_path_factory.mktemp("mutagen-home")
    (home / ".mutagen.yml").write_text(HOSTILE_GLOBAL_CONFIG)
    environ = {
        **os.environ,
        "HOME": str(home),
        "MUTAGEN_BETA_DOCKER_HOST": "tcp://127.0.0.1:9",
    }
    data_dir = Path(tempfile.mkdtemp(prefix="alca-m-", dir="/tmp"))
    mutagen = Mutagen(
        SubprocessRunner(), data_dir=data_dir, engine=engine.executable, environ=environ
    )
    try:
        mutagen.check_installed()
    except UnavailableError as exc:
        shutil.rmtree(data_dir)
        pytest.skip(f"{exc.message}; run `bash scripts/setup-test-env.sh` as root")
    names = Names(engine, prefix="alca-sync")
    name = names("mutagen")
    rig = Rig(
        engine,
        mutagen,
        name,
        str(uuid.uuid4()),
        tmp_path_factory.mktemp(f"sync-{engine.executable}"),
    )
    try:
        engine.create(
            ContainerSpec(
                name=name,
                image=TEST_IMAGE,
                workdir="/",
                labels={"alca.test": "sync"},
                pull="never",
            )
        )
        rig.sh("mkdir -p /w")
        yield rig
    finally:
        try:
            mutagen.terminate(label_selector=f"alca-project={rig.project_id}")
            assert mutagen.list() == []
        finally:
            mutagen.daemon_stop()
            assert not mutagen.daemon_running()
            names.cleanup()
            shutil.rmtree(data_dir)


# --- (a) excluded at create time, and the pattern semantics ---------------------------------

SEMANTICS: dict[str, tuple[str, bool]] = {
    # path: (pattern that applies, expected inside the container?)
    ".env": (".env", False),
    "a/.env": (".env", False),
    "a/b/.env": (".env", False),
    ".envrc": (".env", True),  # the name must match exactly
    ".root-only": ("/.root-only", False),
    "a/.root-only": ("/.root-only", True),  # a leading / anchors at the root
    "deep.key": ("**/deep.key", False),  # **/ also matches at the top
    "a/deep.key": ("**/deep.key", False),
    "a/b/deep.key": ("**/deep.key", False),
    "conf/secret.yml": ("conf/secret.yml", False),
    "a/conf/secret.yml": ("conf/secret.yml", True),  # an inner / anchors too
    "secrets/token": ("secrets/", False),
    "a/secrets/token": ("secrets/", False),  # directory pattern, any depth
    "x/secrets": ("secrets/", True),  # ... but directories only: this is a file
    "c.pem": ("*.pem", False),
    "a/c.pem": ("*.pem", False),
    "KEY.PEM": ("*.pem", True),  # case-sensitive
    "tls.crt": ("*.{key,crt}", False),  # a comma inside a pattern survives
    "a/tls.key": ("*.{key,crt}", False),
    "notes.txt": ("(none)", True),
}
PATTERNS: tuple[str, ...] = (
    ".env",
    "/.root-only",
    "**/deep.key",
    "conf/secret.yml",
    "secrets/",
    "*.pem",
)
PATTERNS += ("*.{key,crt}",)


def test_a_excluded_paths_present_at_create_never_exist_inside(rig: Rig) -> None:
    files = {path: f"secret {path}" for path in SEMANTICS}
    files[".git/HEAD"] = "ref: refs/heads/main"
    _, inside, session = rig.session("a", files, ignores=PATTERNS)
    tree = rig.tree(inside)
    wrong = {
        path: pattern for path, (pattern, present) in SEMANTICS.items() if (path in tree) != present
    }
    assert not wrong, f"pattern semantics differ from the documented ones: {wrong}"
    assert tree[".git/HEAD"] == "ref: refs/heads/main"  # VCS data is synced
    assert "secrets" not in tree and "a/secrets" not in tree  # not even the directories
    assert session.conflicts == () and session.problems == ()


# --- (b) excluded files created on the host later ---------------------------------------------


def test_b_excluded_file_created_later_on_host_never_appears_inside(rig: Rig) -> None:
    host, inside, _ = rig.session("b", {"app.py": "print()", "sub/mod.py": "x"}, ignores=PATTERNS)
    write(
        host,
        {
            ".env": "API_KEY=late",
            "sub/.env": "late",
            "secrets/new-token": "late",
            "sub/new.pem": "late",
            "sub/control.py": "arrives",
        },
    )
    time.sleep(0.3)  # give the watcher a chance too, not only the flush
    session = rig.mutagen.flush(rig.sessions[-1])
    tree = rig.tree(inside)
    assert tree.get("sub/control.py") == "arrives"
    leaked = {".env", "sub/.env", "secrets", "secrets/new-token", "sub/new.pem"} & set(tree)
    assert not leaked
    assert session.conflicts == ()


# --- (c) files created inside at excluded paths, and escaping symlinks ----------------------


def test_c_file_created_inside_at_excluded_path_never_reaches_host(rig: Rig) -> None:
    host, inside, _ = rig.session(
        "c", {".env": "HOST_SECRET=1", "a.txt": "a"}, ignores=(".env", "secrets/")
    )
    rig.sh(
        "cd $1 && echo INSIDE=1 > .env && mkdir -p sub secrets && echo i > sub/.env "
        "&& echo t > secrets/token && echo ok > sub/control.py "
        "&& ln -s /etc/passwd abs-link && ln -s ../../../etc/shadow escaping-link "
        "&& ln -s a.txt inner-link",
        inside,
    )
    session = rig.mutagen.flush(rig.sessions[-1])
    tree = host_tree(host)
    assert tree["sub/control.py"] == "ok"
    assert tree[".env"] == "HOST_SECRET=1"  # neither overwritten nor deleted
    assert "sub/.env" not in tree and "secrets" not in tree
    # Portable symlink mode: only links that stay inside the root reach the host.
    assert tree["inner-link"] == "-> a.txt"
    assert "abs-link" not in tree and "escaping-link" not in tree
    problems = {(p.endpoint, p.path): p.error for p in session.problems}
    assert problems == {
        ("beta", "abs-link"): "invalid symbolic link: target is absolute",
        ("beta", "escaping-link"): "invalid symbolic link: target references location "
        "outside synchronization root",
    }
    assert rig.tree(inside)[".env"] == "INSIDE=1"  # the container keeps its own


# --- (d) two-way-safe: edits, deletes, renames ---------------------------------------------


def test_d_edits_deletes_and_renames_flow_both_ways(rig: Rig) -> None:
    files = {
        "h-edit.txt": "v1",
        "h-delete.txt": "x",
        "h-rename.txt": "moving",
        "c-edit.txt": "v1",
        "c-delete.txt": "x",
        "c-dir/f.txt": "in dir",
    }
    host, inside, _ = rig.session("d", files)
    assert rig.tree(inside)["h-edit.txt"] == "v1"  # *.txt from ~/.mutagen.yml is not applied
    write(host, {"h-edit.txt": "v2", "h-new/deep.txt": "new"})
    (host / "h-delete.txt").unlink()
    (host / "h-rename.txt").rename(host / "h-renamed.txt")
    rig.sh(
        "cd $1 && echo v2 > c-edit.txt && rm c-delete.txt && mv c-dir c-moved "
        "&& echo made > c-new.txt",
        inside,
    )
    session = rig.mutagen.flush(rig.sessions[-1])
    assert session.conflicts == ()
    expected = {
        "h-edit.txt": "v2",
        "h-new": None,
        "h-new/deep.txt": "new",
        "h-renamed.txt": "moving",
        "c-edit.txt": "v2",
        "c-moved": None,
        "c-moved/f.txt": "in dir",
        "c-new.txt": "made",
    }
    assert host_tree(host) == expected
    assert rig.tree(inside) == expected


# --- (e) one-way-replica --------------------------------------------------------------------


def test_e_one_way_replica_never_changes_the_host(rig: Rig) -> None:
    host, inside, _ = rig.session(
        "e", {"conf.txt": "host", "keep.txt": "k"}, ignores=(".env",), one_way=True
    )
    before = host_tree(host)
    rig.sh(
        "cd $1 && echo tampered > conf.txt && rm keep.txt && echo new > planted.txt "
        "&& echo inside > .env",
        inside,
    )
    session = rig.mutagen.flush(rig.sessions[-1])
    assert host_tree(host) == before
    assert session.conflicts == ()
    tree = rig.tree(inside)
    # The replica is restored from the host; excluded content inside is left alone.
    assert tree == {"conf.txt": "host", "keep.txt": "k", ".env": "inside"}
    write(host, {"conf.txt": "host v2", "added.txt": "a"})
    rig.mutagen.flush(rig.sessions[-1])
    tree = rig.tree(inside)
    assert tree["conf.txt"] == "host v2" and tree["added.txt"] == "a"
    assert host_tree(host) == {"conf.txt": "host v2", "keep.txt": "k", "added.txt": "a"}


# --- (f) conflicts: detected, both kept, resolved either way --------------------------------


def test_f_conflict_kept_until_resolved_either_way(rig: Rig, tmp_path: Path) -> None:
    host, inside, _ = rig.session("f", {"local-wins.txt": "base", "ctr-wins.txt": "base"})
    name = rig.sessions[-1]
    rig.mutagen.pause(name)  # edits on both sides between cycles: a conflict for sure
    write(host, {"local-wins.txt": "host", "ctr-wins.txt": "host"})
    rig.sh("cd $1 && echo ctr > local-wins.txt && echo ctr > ctr-wins.txt", inside)
    rig.mutagen.resume(name)
    session = rig.mutagen.flush(name)
    found = {c.path: (c.local_state, c.container_state) for c in session.conflicts}
    assert found == {
        "ctr-wins.txt": ("modified", "modified"),
        "local-wins.txt": ("modified", "modified"),
    }
    # Both versions are kept, and stay kept across more cycles.
    session = rig.mutagen.flush(name)
    assert len(session.conflicts) == 2
    assert host_tree(host) == {"local-wins.txt": "host", "ctr-wins.txt": "host"}
    assert rig.tree(inside) == {"local-wins.txt": "ctr", "ctr-wins.txt": "ctr"}

    # The banner and the cache, from real conflicts.
    cache = tmp_path / "conflicts.json"
    cf.write_cache(cache, session.conflicts, unlisted=session.excluded_conflicts)
    cached = cf.read_cache(cache)
    assert cached is not None
    assert cf.banner(cached.conflicts).startswith("⚠ 2 sync conflicts need attention:")

    # Resolve through the mount the session belongs to (index from its label).
    mounts = [Mount("/unrelated", "/elsewhere")] * session.mount_index
    mounts.append(Mount(str(host), inside))
    by_path = {c.path: c for c in session.conflicts}
    local = cf.deletion_for(by_path["local-wins.txt"], mounts, "local")
    assert local == cf.Deletion("container", f"{inside}/local-wins.txt")
    rig.sh('rm -rf -- "$1"', local.path)
    theirs = cf.deletion_for(by_path["ctr-wins.txt"], mounts, "container")
    assert theirs == cf.Deletion("host", str(host / "ctr-wins.txt"))
    cf.check_inside(theirs.path, str(host))
    os.unlink(theirs.path)
    session = rig.mutagen.flush(name)
    assert session.conflicts == ()
    expected = {"local-wins.txt": "host", "ctr-wins.txt": "ctr"}
    assert host_tree(host) == expected
    assert rig.tree(inside) == expected


# --- (g) latency ----------------------------------------------------------------------------


def container_root(rig: Rig) -> Path:
    result = rig.runtime.runner.run(
        [rig.engine, "inspect", "--format", "{{.State.Pid}}", rig.container], timeout=30
    )
    root = Path(f"/proc/{result.stdout.strip()}/root")
    if not result.ok or not os.access(root / "w", os.R_OK):
        pytest.skip("the container's files are not readable through /proc (needs root)")
    return root


def propagation_ms(source: Path, target: Path, edits: int = 20) -> list[float]:
    """Write `source` `edits` times; how long each takes to show up at `target`, sorted."""
    samples = []
    for i in range(1, edits + 1):
        content = f"edit {i} {source.name}\n"
        start = time.monotonic()
        source.write_text(content)
        while True:
            try:
                if target.read_text() == content:
                    break
            except FileNotFoundError:
                pass
            assert time.monotonic() - start < 15, f"edit {i} never arrived"
            time.sleep(0.002)
        samples.append((time.monotonic() - start) * 1000)
        time.sleep(0.05)
    return sorted(samples)


def summary(samples: list[float]) -> tuple[float, float]:
    """(median, p95) in ms."""
    return statistics.median(samples), samples[int(0.95 * len(samples)) - 1]


def test_g_latency(rig: Rig) -> None:
    """Small edits to a file the watcher already follows; printed for the record."""
    host, inside, _ = rig.session("g", {"edit.txt": "0", "back.txt": "0"})
    root = container_root(rig) / inside.lstrip("/")
    down = propagation_ms(host / "edit.txt", root / "edit.txt")
    up = propagation_ms(root / "back.txt", host / "back.txt")  # written as if inside
    for label, samples in (("host->container", down), ("container->host", up)):
        median, p95 = summary(samples)
        print(
            f"\n[{rig.engine}] {label} latency over 20 edits: median {median:.0f} ms, "
            f"p95 {p95:.0f} ms, max {samples[-1]:.0f} ms"
        )
    median, p95 = summary(down)
    assert median <= 150
    assert p95 <= 500


# --- failure modes the lifecycle will meet --------------------------------------------------


def test_create_against_a_missing_container_fails_cleanly(rig: Rig, tmp_path: Path) -> None:
    name = session_name(rig.project_id[:8], 99)
    with pytest.raises(CommandFailed) as info:
        rig.mutagen.create(
            name,
            str(tmp_path),
            f"{rig.container}-missing",
            "/w/none",
            ignores=(),
            one_way=False,
            labels=session_labels(rig.project_id, 99),
        )
    # Docker: "container does not exist"; Podman: 'no container with name or ID "..." found'.
    assert "unable to probe container" in info.value.message
    assert info.value.hint == "check that the container is running (alca up)"
    assert rig.mutagen.get(name) is None  # a failed create leaves no session behind


def test_emptied_container_copy_halts_instead_of_deleting(rig: Rig) -> None:
    host, inside, _ = rig.session("h", {"one.txt": "1", "two.txt": "2", "dir/three.txt": "3"})
    before = host_tree(host)
    rig.sh('rm -rf "$1"/*', inside)  # what a recreated container looks like
    with pytest.raises(SyncError, match="emptied") as info:
        rig.mutagen.flush(rig.sessions[-1])
    assert "alca up" in (info.value.hint or "")
    assert host_tree(host) == before  # nothing deleted on the host
    session = rig.mutagen.get(rig.sessions[-1])
    assert session is not None and session.status == "halted-on-root-emptied"
