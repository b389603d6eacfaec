"""The typed state file: v1 files written by the untyped code read, round trips, clear errors."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from alcatraz import state
from alcatraz.errors import AlcaError
from alcatraz.statefile import (
    STATE_VERSION,
    IsolationRecord,
    ProjectState,
    ResolverEntry,
    RunSpec,
    StateFileError,
)

SAMPLES = Path(__file__).parent / "state_v1"


def v1_samples() -> list[Path]:
    return sorted(SAMPLES.glob("*.json"))


@pytest.mark.parametrize("sample", v1_samples(), ids=lambda p: p.stem)
def test_a_v1_file_written_by_the_untyped_code_reads(sample: Path) -> None:
    data = json.loads(sample.read_text())
    read = ProjectState.from_json(data, str(sample))
    assert read.version == 1 == STATE_VERSION
    assert read.project_id == data["project_id"]
    assert read.container_name == data["container_name"]
    assert read.runtime == data["runtime"]
    assert list(read.root_identity or ()) == data["root_identity"]
    assert read.snapshot == data["snapshot"] and read.source_pins == data["source_pins"]
    assert read.extra == {}
    spec = read.run_spec
    assert spec is not None and spec.container == data["run_spec"]["container"]
    assert [list(s) for s in spec.stamps] == data["run_spec"]["stamps"]
    assert spec.isolation is not None and read.isolation is not None
    # `up` saves the run's record with the init its in-namespace layer was loaded into.
    assert spec.isolation._replace(inside=None) == read.isolation
    inside = data["run_spec"]["isolation"].get("inside")
    assert spec.isolation.inside == (None if inside is None else tuple(inside))
    resolver = data["run_spec"]["isolation"]["resolver"]
    assert spec.isolation.resolver is not None and spec.isolation.resolver.to_json() == resolver


@pytest.mark.parametrize("sample", v1_samples(), ids=lambda p: p.stem)
def test_v1_layout_is_kept_key_for_key(sample: Path) -> None:
    """Writing what was read gives the same JSON (keys the untyped code left out are null)."""
    data = json.loads(sample.read_text())
    written = ProjectState.from_json(data).to_json()
    for key, value in data.items():
        assert written[key] == value, key
    assert {k: v for k, v in written.items() if k not in data} == {}


def test_the_store_reads_a_v1_file_and_writes_it_back_identically(tmp_path: Path) -> None:
    sample = v1_samples()[0]
    store = state.ProjectStore(tmp_path)
    Path(store.state_path).write_text(sample.read_text())
    loaded = store.load()
    store.save(loaded)
    assert json.loads(Path(store.state_path).read_text()) == json.loads(sample.read_text())
    assert oct(os.stat(store.state_path).st_mode & 0o777) == "0o600"


def test_round_trip_of_every_field(tmp_path: Path) -> None:
    resolver = ResolverEntry("10.0.0.1", "/s/resolver.pid", "/s/resolver.log", "/etc/resolv.conf")
    record = IsolationRecord(
        network="alca-k",
        interface="alca-k",
        subnet="10.0.0.0/24",
        gateway="10.0.0.1",
        key="k",
        digest="d",
        enforced=True,
        nft=("sudo", "-n", "nft"),
        resolver=resolver,
        inside=(123, None),
    )
    spec = RunSpec(
        executable="podman",
        container="alca-x",
        workdir="/workspace",
        project_root="/p",
        enter="cd .",
        override_envs={"TERM": "${TERM}"},
        stamps=(("/p/.alca.toml", 1, 2),),
        isolation=record._replace(inside=(123, 456), proxied=True),
        api_socket="/run/podman/podman.sock",
    )
    assert spec.to_json()["api_socket"] == "/run/podman/podman.sock"
    assert "api_socket" not in spec._replace(api_socket="").to_json()  # v1 files unchanged
    full = ProjectState(
        project_id="id",
        project_path="/p",
        root_identity=(1, 2),
        container_name="alca-x",
        runtime="Podman",
        created_at="2026-01-01T00:00:00Z",
        snapshot={"image": "i"},
        setup_done=True,
        source_pins={".alca.toml": [1, 3]},
        isolation=record,
        run_spec=spec,
        extra={"added_later": {"by": "a newer alcatraz"}},
    )
    assert ProjectState.from_json(json.loads(json.dumps(full.to_json()))) == full
    store = state.ProjectStore(tmp_path)
    assert store.load() == ProjectState()  # no file yet: empty state
    assert store.save(full) == full
    assert store.load() == full
    changed = store.update(setup_done=False, snapshot=None)
    assert changed == full._replace(setup_done=False, snapshot=None) == store.load()
    # An update that changes nothing writes nothing (a warm `up`); one that does, writes.
    before = os.stat(store.state_path)
    os.utime(store.state_path, ns=(before.st_atime_ns, before.st_mtime_ns - 10**9))
    assert store.update(setup_done=False) == changed
    assert os.stat(store.state_path).st_mtime_ns == before.st_mtime_ns - 10**9
    assert store.update(setup_done=True).setup_done is True
    assert store.load().setup_done is True


def test_the_store_owns_the_names_and_forgets_all_but_the_lock(tmp_path: Path) -> None:
    store = state.ProjectStore.of(tmp_path, tmp_path)
    assert store.state_path == state.state_file(str(tmp_path), str(tmp_path))
    with store.lock():
        store.save(ProjectState(project_id="x"))
    for path in (store.approval_path, store.conflicts_path):
        Path(path).write_text("{}")
    store.forget()
    assert sorted(os.listdir(store.directory)) == ["lock"]


def _sample() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(v1_samples()[0].read_text())
    return data


# (where, wrong value, the words the error must contain)
WRONG: list[tuple[tuple[str, ...], object, str]] = [
    (("version",), "1", "key version should be a whole number, not a string"),
    (("project_id",), 7, "key project_id should be a string, not a number"),
    (("root_identity",), [1], "key root_identity should be a list of 2 whole numbers"),
    (("root_identity",), [1, True], "key root_identity should be a list of 2 whole numbers"),
    (("container_name",), ["x"], "key container_name should be a string, not a list"),
    (("runtime",), False, "key runtime should be a string, not a boolean"),
    (("setup_done",), "yes", "key setup_done should be true or false, not a string"),
    (("snapshot",), [], "key snapshot should be an object, not a list"),
    (("source_pins",), "x", "key source_pins should be an object, not a string"),
    (("isolation",), "on", "key isolation should be an object, not a string"),
    (("isolation", "enforced"), 1, "key isolation.enforced should be true or false"),
    (("run_spec", "isolation", "proxied"), "yes", "isolation.proxied should be true or false"),
    (("isolation", "nft"), "nft", "key isolation.nft should be a list of strings"),
    (("isolation", "nft"), ["nft", 1], "key isolation.nft should be a list of strings"),
    (("isolation", "resolver"), [], "key isolation.resolver should be an object, not a list"),
    (("isolation", "resolver", "listen"), None, "key isolation.resolver.listen should be a"),
    (("run_spec",), [], "key run_spec should be an object, not a list"),
    (("run_spec", "executable"), None, "key run_spec.executable should be a string, not null"),
    (("run_spec", "container"), 3, "key run_spec.container should be a string"),
    (("run_spec", "workdir"), {}, "key run_spec.workdir should be a string, not an object"),
    (("run_spec", "project_root"), None, "key run_spec.project_root should be a string"),
    (("run_spec", "enter"), 0, "key run_spec.enter should be a string"),
    (("run_spec", "api_socket"), 1, "key run_spec.api_socket should be a string, not a number"),
    (("run_spec", "override_envs"), {"A": 1}, "key run_spec.override_envs should be an object "),
    (("run_spec", "stamps"), [["p", 1]], "key run_spec.stamps should be a list of [path,"),
    (("run_spec", "isolation", "key"), 5, "key run_spec.isolation.key should be a string"),
    (("run_spec", "isolation", "inside"), [1], "key run_spec.isolation.inside should be a list"),
    (("run_spec", "isolation", "inside"), ["1", 2], "run_spec.isolation.inside should be a list"),
    (("run_spec", "isolation", "resolver", "pidfile"), 1, "isolation.resolver.pidfile should"),
]


@pytest.mark.parametrize(("where", "value", "words"), WRONG, ids=lambda x: repr(x)[:40])
def test_each_wrong_typed_key_is_named_with_its_file(
    where: tuple[str, ...], value: object, words: str
) -> None:
    data = copy.deepcopy(_sample())
    target = data
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = value
    with pytest.raises(StateFileError) as caught:
        ProjectState.from_json(data, "/h/projects/k/state.json")
    message = caught.value.message
    assert message.startswith("state file /h/projects/k/state.json: "), message
    assert words in message, message
    assert caught.value.hint and "alca up" in caught.value.hint
    assert isinstance(caught.value, AlcaError)  # the CLI shows it without a traceback


def test_not_an_object_and_a_newer_version_are_refused() -> None:
    with pytest.raises(StateFileError, match=r"the file should be an object, not a list"):
        ProjectState.from_json([], "s.json")
    with pytest.raises(StateFileError, match=r"has version 2; this alcatraz reads versions 1"):
        ProjectState.from_json({"version": 2}, "s.json")


def test_missing_and_null_keys_read_alike() -> None:
    """The untyped code used `.get`: a key it never wrote means what null means."""
    assert ProjectState.from_json({}) == ProjectState.from_json(
        dict.fromkeys(("project_id", "isolation", "run_spec", "snapshot", "setup_done"))
    )
    assert ProjectState.from_json({"version": 1}).setup_done is False


def test_unreadable_file_gives_a_state_file_error(tmp_path: Path) -> None:
    store = state.ProjectStore(tmp_path)
    Path(store.state_path).write_text('{"version": 1,')
    with pytest.raises(StateFileError, match=r"is not valid JSON"):
        store.load()
    Path(store.state_path).write_bytes(b'{"project_id": "\xff"}')
    with pytest.raises(StateFileError, match=r"cannot read the state file"):
        store.load()


def _alca_run(home: Path, root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ALCA_HOME": str(home)}
    env.pop("ALCA_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "alcatraz", "run", "true"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("{not json", "is not valid JSON"),
        ('{"run_spec": {"executable": 1}}', "key run_spec.executable should be a string"),
        ('{"version": 9}', "has version 9"),
    ],
)
def test_alca_run_on_a_corrupted_state_file_exits_1_without_a_traceback(
    tmp_path: Path, content: str, words: str
) -> None:
    """Today's code printed a traceback (exit 70) for a file that is not JSON."""
    root = tmp_path / "p"
    root.mkdir()
    (root / ".alca.toml").write_text('image = "alpine:3.21"\n')
    home = tmp_path / "home"
    store = state.ProjectStore.of(home, root)
    os.makedirs(store.directory)
    Path(store.state_path).write_text(content)
    done = _alca_run(home, root)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert store.state_path in done.stderr and words in done.stderr, done.stderr
    assert "move the file aside and run 'alca up'" in done.stderr
    assert Path(store.state_path).read_text() == content  # nothing changed


def test_project_key_and_owner_label_are_hashlib_sha256(tmp_path: Path) -> None:
    """The builtin SHA-256 the run path uses must name the same directories as before."""
    import hashlib

    real = os.path.realpath(tmp_path)
    assert state.project_key(tmp_path) == hashlib.sha256(real.encode()).hexdigest()[:24]
    expected = hashlib.sha256(f"{os.getuid()}:{real}".encode()).hexdigest()[:16]
    assert state.owner_label(str(tmp_path)) == expected
