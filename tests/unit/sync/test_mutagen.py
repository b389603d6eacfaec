"""The Mutagen wrapper and sync conflicts, without Mutagen: argv, parsing, paths, banner.

Session JSON below was recorded from real `mutagen sync list --template '{{json .}}'` output
(Mutagen 0.18.1, Docker 20.10, sessions created by `Mutagen.create`), kept byte-for-byte.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import shutil
import socket
import stat
import tempfile
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alcatraz.config.layer import Mount
from alcatraz.errors import AlcaError, UnavailableError
from alcatraz.proc import CommandFailed, Result
from alcatraz.sync import conflicts as cf
from alcatraz.sync.conflicts import Conflict, UnsafePathError
from alcatraz.sync.mutagen import (
    MAX_DATA_DIR_BYTES,
    Mutagen,
    Problem,
    SyncError,
    check_ignore,
    create_args,
    error_text,
    explain,
    ignore_arg,
    parse_sessions,
    project_selector,
    session_labels,
    session_name,
)
from tests.fakes import FakeClock, FakeRunner, Handler

PROJECT_ID = "3f2a9c1e-77b0-4c55-9a44-0c1d2e3f4a5b"

# Mount 1 (`alca-mount=1`) after edits on both sides while paused: edit/edit,
# create/create, delete-vs-excluded-file, dir-vs-file, dir-replaced-vs-file-added, plus two
# symlinks the container made that portable mode refused (scan problems).
RECORDED_CONFLICTS = (
    '[{"identifier":"sync_RLwPBEjh0HKukUIcQIxeSzftpMZkyQEmUuCuf6RHx5w","version":1,"creationT'
    'ime":"2026-11-22T23:30:45.593535007Z","creatingVersion":"0.18.1","alpha":{"protocol":"lo'
    'cal","path":"/tmp/mx/h1","ignore":{},"symlink":{},"watch":{},"permissions":{"defaultFile'
    'Mode":"0600","defaultDirectoryMode":"0700"},"compression":{},"connected":true,"scanned":'
    'true,"directories":2,"files":4,"totalFileSize":31},"beta":{"protocol":"docker","host":"m'
    'xd","path":"/w/lib","ignore":{},"symlink":{},"watch":{},"permissions":{"defaultFileMode"'
    ':"0644","defaultDirectoryMode":"0755"},"compression":{},"connected":true,"scanned":true,'
    '"directories":3,"files":6,"totalFileSize":31,"scanProblems":[{"path":"abs","error":"inva'
    'lid symbolic link: target is absolute"},{"path":"esc","error":"invalid symbolic link: ta'
    'rget references location outside synchronization root"}]},"mode":"two-way-safe","ignore"'
    ':{"syntax":"mutagen","paths":[".env"],"vcs":false},"symlink":{"mode":"portable"},"watch"'
    ':{},"permissions":{"mode":"portable"},"compression":{},"name":"alca-3f2a9c1e-1","labels"'
    ':{"alca-mount":"1","alca-project":"3f2a9c1e-77b0-4c55-9a44-0c1d2e3f4a5b"},"paused":false'
    ',"status":"watching","successfulCycles":2,"conflicts":[{"root":"both.txt","alphaChanges"'
    ':[{"path":"both.txt","old":null,"new":{"kind":"file","digest":"16dff05c8a13c5205710553e0'
    'fe7dc8ca6ac9535"}}],"betaChanges":[{"path":"both.txt","old":null,"new":{"kind":"file","d'
    'igest":"1c104ec37898cb7f8cc2e00b66d73e6b1546228d"}}]},{"root":"edit.txt","alphaChanges":'
    '[{"path":"edit.txt","old":{"kind":"file","digest":"3f786850e387550fdab836ed7e6dc881de230'
    '01b"},"new":{"kind":"file","digest":"168fcefb4a94f10387433108acd53583e9da12dc"}}],"betaC'
    'hanges":[{"path":"edit.txt","old":{"kind":"file","digest":"3f786850e387550fdab836ed7e6dc'
    '881de23001b"},"new":{"kind":"file","digest":"2c1c71b0f2182136d79c953fd33c904a4bcf819c"}}'
    ']},{"root":"keep","alphaChanges":[{"path":"keep","old":{"kind":"directory","contents":nu'
    'll},"new":null}],"betaChanges":[{"path":"keep/.env","old":null,"new":{"kind":"untracked"'
    '}}]},{"root":"kind","alphaChanges":[{"path":"kind","old":null,"new":{"kind":"directory",'
    '"contents":null}}],"betaChanges":[{"path":"kind","old":null,"new":{"kind":"file","digest'
    '":"3c532110902975234953448d63dda0ef759116d6"}}]},{"root":"sub","alphaChanges":[{"path":"'
    'sub","old":{"kind":"directory","contents":null},"new":{"kind":"file","digest":"cdf6e6a4f'
    '389745ac5321973754ca7a1f82fec76"}}],"betaChanges":[{"path":"sub/x2","old":null,"new":{"k'
    'ind":"file","digest":"9063a9f0e032b6239403b719cbbba56ac4e4e45f"}}]}]}]'
)

# 12 create/create conflicts: Mutagen lists 10 and counts 2 in `excludedConflicts`.
RECORDED_MANY = (
    '[{"identifier":"sync_o4HydqaBD8x0DoeMepTmQoIbfjwer3cxRO9VJR8QbED","version":1,"creationT'
    'ime":"2026-11-22T23:30:47.112342099Z","creatingVersion":"0.18.1","alpha":{"protocol":"lo'
    'cal","path":"/tmp/mx/h2","ignore":{},"symlink":{},"watch":{},"permissions":{"defaultFile'
    'Mode":"0600","defaultDirectoryMode":"0700"},"compression":{},"connected":true,"scanned":'
    'true,"directories":1,"files":12,"totalFileSize":60},"beta":{"protocol":"docker","host":"'
    'mxd","path":"/w/many","ignore":{},"symlink":{},"watch":{},"permissions":{"defaultFileMod'
    'e":"0644","defaultDirectoryMode":"0755"},"compression":{},"connected":true,"scanned":tru'
    'e,"directories":1,"files":12,"totalFileSize":48},"mode":"two-way-safe","ignore":{"syntax'
    '":"mutagen","vcs":false},"symlink":{"mode":"portable"},"watch":{},"permissions":{"mode":'
    '"portable"},"compression":{},"name":"alca-3f2a9c1e-2","labels":{"alca-mount":"2","alca-p'
    'roject":"3f2a9c1e-77b0-4c55-9a44-0c1d2e3f4a5b"},"paused":false,"status":"watching","succ'
    'essfulCycles":2,"conflicts":[{"root":"f00.txt","alphaChanges":[{"path":"f00.txt","old":n'
    'ull,"new":{"kind":"file","digest":"0a11f3691a10feefaeda9e30b4c891148d4ffdc1"}}],"betaCha'
    'nges":[{"path":"f00.txt","old":null,"new":{"kind":"file","digest":"ce8574df897bddc1ef2ce'
    '98f937051949d5a9179"}}]},{"root":"f01.txt","alphaChanges":[{"path":"f01.txt","old":null,'
    '"new":{"kind":"file","digest":"0a11f3691a10feefaeda9e30b4c891148d4ffdc1"}}],"betaChanges'
    '":[{"path":"f01.txt","old":null,"new":{"kind":"file","digest":"ce8574df897bddc1ef2ce98f9'
    '37051949d5a9179"}}]},{"root":"f02.txt","alphaChanges":[{"path":"f02.txt","old":null,"new'
    '":{"kind":"file","digest":"0a11f3691a10feefaeda9e30b4c891148d4ffdc1"}}],"betaChanges":[{'
    '"path":"f02.txt","old":null,"new":{"kind":"file","digest":"ce8574df897bddc1ef2ce98f93705'
    '1949d5a9179"}}]},{"root":"f03.txt","alphaChanges":[{"path":"f03.txt","old":null,"new":{"'
    'kind":"file","digest":"0a11f3691a10feefaeda9e30b4c891148d4ffdc1"}}],"betaChanges":[{"pat'
    'h":"f03.txt","old":null,"new":{"kind":"file","digest":"ce8574df897bddc1ef2ce98f937051949'
    'd5a9179"}}]},{"root":"f04.txt","alphaChanges":[{"path":"f04.txt","old":null,"new":{"kind'
    '":"file","digest":"0a11f3691a10feefaeda9e30b4c891148d4ffdc1"}}],"betaChanges":[{"path":"'
    'f04.txt","old":null,"new":{"kind":"file","digest":"ce8574df897bddc1ef2ce98f937051949d5a9'
    '179"}}]},{"root":"f05.txt","alphaChanges":[{"path":"f05.txt","old":null,"new":{"kind":"f'
    'ile","digest":"0a11f3691a10feefaeda9e30b4c891148d4ffdc1"}}],"betaChanges":[{"path":"f05.'
    'txt","old":null,"new":{"kind":"file","digest":"ce8574df897bddc1ef2ce98f937051949d5a9179"'
    '}}]},{"root":"f06.txt","alphaChanges":[{"path":"f06.txt","old":null,"new":{"kind":"file"'
    ',"digest":"0a11f3691a10feefaeda9e30b4c891148d4ffdc1"}}],"betaChanges":[{"path":"f06.txt"'
    ',"old":null,"new":{"kind":"file","digest":"ce8574df897bddc1ef2ce98f937051949d5a9179"}}]}'
    ',{"root":"f07.txt","alphaChanges":[{"path":"f07.txt","old":null,"new":{"kind":"file","di'
    'gest":"0a11f3691a10feefaeda9e30b4c891148d4ffdc1"}}],"betaChanges":[{"path":"f07.txt","ol'
    'd":null,"new":{"kind":"file","digest":"ce8574df897bddc1ef2ce98f937051949d5a9179"}}]},{"r'
    'oot":"f08.txt","alphaChanges":[{"path":"f08.txt","old":null,"new":{"kind":"file","digest'
    '":"0a11f3691a10feefaeda9e30b4c891148d4ffdc1"}}],"betaChanges":[{"path":"f08.txt","old":n'
    'ull,"new":{"kind":"file","digest":"ce8574df897bddc1ef2ce98f937051949d5a9179"}}]},{"root"'
    ':"f09.txt","alphaChanges":[{"path":"f09.txt","old":null,"new":{"kind":"file","digest":"0'
    'a11f3691a10feefaeda9e30b4c891148d4ffdc1"}}],"betaChanges":[{"path":"f09.txt","old":null,'
    '"new":{"kind":"file","digest":"ce8574df897bddc1ef2ce98f937051949d5a9179"}}]}],"excludedC'
    'onflicts":2}]'
)

# The container path's parent did not exist: a transition problem at the root ("").
RECORDED_NOPARENT = (
    '[{"identifier":"sync_WpZJQbpsOeWk1Muqhbu5rMLyC9oOMziev3LhO7Igym2","version":1,"creationT'
    'ime":"2026-11-22T23:30:47.446903402Z","creatingVersion":"0.18.1","alpha":{"protocol":"lo'
    'cal","path":"/tmp/mx/h3","ignore":{},"symlink":{},"watch":{},"permissions":{"defaultFile'
    'Mode":"0600","defaultDirectoryMode":"0700"},"compression":{},"connected":true,"scanned":'
    'true,"directories":1,"files":1,"totalFileSize":2},"beta":{"protocol":"docker","host":"mx'
    'd","path":"/nonexistent/dir","ignore":{},"symlink":{},"watch":{},"permissions":{"default'
    'FileMode":"0644","defaultDirectoryMode":"0755"},"compression":{},"connected":true,"scann'
    'ed":true,"transitionProblems":[{"path":"","error":"unable to walk to transition root par'
    'ent: unable to open synchronization root parent directory: no such file or directory"}]}'
    ',"mode":"two-way-safe","ignore":{"syntax":"mutagen","vcs":false},"symlink":{"mode":"port'
    'able"},"watch":{},"permissions":{"mode":"portable"},"compression":{},"name":"alca-3f2a9c'
    '1e-3","labels":{"alca-mount":"3","alca-project":"3f2a9c1e-77b0-4c55-9a44-0c1d2e3f4a5b"},'
    '"paused":false,"status":"watching","successfulCycles":2}]'
)

# A paused session: no status detail, both endpoints disconnected.
RECORDED_PAUSED = (
    '[{"identifier":"sync_RLwPBEjh0HKukUIcQIxeSzftpMZkyQEmUuCuf6RHx5w","version":1,"creationT'
    'ime":"2026-11-22T23:30:45.593535007Z","creatingVersion":"0.18.1","alpha":{"protocol":"lo'
    'cal","path":"/tmp/mx/h1","ignore":{},"symlink":{},"watch":{},"permissions":{"defaultFile'
    'Mode":"0600","defaultDirectoryMode":"0700"},"compression":{},"connected":false},"beta":{'
    '"protocol":"docker","host":"mxd","path":"/w/lib","ignore":{},"symlink":{},"watch":{},"pe'
    'rmissions":{"defaultFileMode":"0644","defaultDirectoryMode":"0755"},"compression":{},"co'
    'nnected":false},"mode":"two-way-safe","ignore":{"syntax":"mutagen","paths":[".env"],"vcs'
    '":false},"symlink":{"mode":"portable"},"watch":{},"permissions":{"mode":"portable"},"com'
    'pression":{},"name":"alca-3f2a9c1e-1","labels":{"alca-mount":"1","alca-project":"3f2a9c1'
    'e-77b0-4c55-9a44-0c1d2e3f4a5b"},"paused":true,"status":"disconnected"}]'
)

# The container was removed under a running session.
RECORDED_GONE = (
    '[{"identifier":"sync_aGPNnsbQbz0DGfgXXkrcaz54N357TT0wMLvOIXWDyuo","version":1,"creationT'
    'ime":"2026-11-22T23:31:03.934797506Z","creatingVersion":"0.18.1","alpha":{"protocol":"lo'
    'cal","path":"/tmp/mx/h4","ignore":{},"symlink":{},"watch":{},"permissions":{"defaultFile'
    'Mode":"0600","defaultDirectoryMode":"0700"},"compression":{},"connected":true,"scanned":'
    'false},"beta":{"protocol":"docker","host":"mxe","path":"/w4","ignore":{},"symlink":{},"w'
    'atch":{},"permissions":{"defaultFileMode":"0644","defaultDirectoryMode":"0755"},"compres'
    'sion":{},"connected":false},"mode":"two-way-safe","ignore":{"syntax":"mutagen","paths":['
    '".env"],"vcs":false},"symlink":{"mode":"portable"},"watch":{},"permissions":{"mode":"por'
    'table"},"compression":{},"name":"alca-3f2a9c1e-0","labels":{"alca-mount":"0","alca-proje'
    'ct":"3f2a9c1e-77b0-4c55-9a44-0c1d2e3f4a5b"},"paused":false,"status":"connecting-beta","l'
    'astError":"beta polling error: unable to receive poll response: unable to read message l'
    'ength: unexpected EOF"}]'
)

# The container's copy was emptied: Mutagen halted instead of deleting host files.
RECORDED_HALTED = (
    '[{"identifier":"sync_f8y8xXFQQHpbszy7yNnrwdKSjbBrhcvfZ9jVaiTshmZ","version":1,"creationT'
    'ime":"2026-11-22T23:30:52.757623637Z","creatingVersion":"0.18.1","alpha":{"protocol":"lo'
    'cal","path":"/tmp/mx/h4","ignore":{},"symlink":{},"watch":{},"permissions":{"defaultFile'
    'Mode":"0600","defaultDirectoryMode":"0700"},"compression":{},"connected":true,"scanned":'
    'true,"directories":1,"files":3,"totalFileSize":3},"beta":{"protocol":"docker","host":"mx'
    'e","path":"/w4","ignore":{},"symlink":{},"watch":{},"permissions":{"defaultFileMode":"06'
    '44","defaultDirectoryMode":"0755"},"compression":{},"connected":true,"scanned":true,"dir'
    'ectories":1},"mode":"two-way-safe","ignore":{"syntax":"mutagen","paths":[".env"],"vcs":f'
    'alse},"symlink":{"mode":"portable"},"watch":{},"permissions":{"mode":"portable"},"compre'
    'ssion":{},"name":"alca-3f2a9c1e-0","labels":{"alca-mount":"0","alca-project":"3f2a9c1e-7'
    '7b0-4c55-9a44-0c1d2e3f4a5b"},"paused":false,"status":"halted-on-root-emptied","successfu'
    'lCycles":3}]'
)


def recorded(text: str) -> dict[str, object]:
    data = json.loads(text)
    assert isinstance(data, list) and len(data) == 1
    session: dict[str, object] = data[0]
    return session


# --- a scripted runner --------------------------------------------------------------------


def ok(out: str = "") -> Result:
    return Result((), 0, out, "")


def fail(err: str) -> Result:
    return Result((), 1, "", err)


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A short directory under /tmp: pytest's tmp_path can exceed a socket path's limit."""
    path = Path(tempfile.mkdtemp(prefix="am-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def engines(tmp_path: Path) -> dict[str, str]:
    """A PATH with stand-in `docker` and `podman` executables."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name in ("docker", "podman"):
        exe = bindir / name
        exe.write_text("#!/bin/sh\nexit 0\n")
        exe.chmod(0o755)
    return {"PATH": str(bindir), "HOME": str(tmp_path)}


def make(
    short_dir: Path,
    environ: Mapping[str, str],
    handler: Handler | None = None,
    engine: str = "docker",
) -> tuple[Mutagen, FakeRunner, FakeClock]:
    runner = FakeRunner(handler or (lambda argv: ok()), streams=False)
    clock = FakeClock()
    mutagen = Mutagen(
        runner,
        data_dir=short_dir / "m",
        engine=engine,
        environ=environ,
        clock=clock,
        sleep=clock.sleep,
    )
    return mutagen, runner, clock


# --- argv ----------------------------------------------------------------------------------


def test_create_args_every_option() -> None:
    args = create_args(
        "alca-3f2a9c1e-1",
        "/home/dev/proj/lib",
        "alca-3f2a9c1e77b0",
        "/workspace/lib",
        ignores=[".env", "secrets/", "*.{key,crt}"],
        one_way=False,
        labels=session_labels(PROJECT_ID, 1),
        beta_user="root",
        watch_polling_interval=2,
    )
    assert args == [
        "sync",
        "create",
        "--name=alca-3f2a9c1e-1",
        "--label=alca-mount=1",
        f"--label=alca-project={PROJECT_ID}",
        "--mode=two-way-safe",
        "--no-global-configuration",
        "--ignore-syntax=mutagen",
        "--no-ignore-vcs",
        "--symlink-mode=portable",
        "--permissions-mode=portable",
        "--default-file-mode-alpha=0600",
        "--default-directory-mode-alpha=0700",
        "--default-file-mode-beta=0644",
        "--default-directory-mode-beta=0755",
        "--watch-polling-interval=2",
        "--ignore=.env",
        "--ignore=secrets/",
        '--ignore="*.{key,crt}"',
        "/home/dev/proj/lib",
        "docker://root@alca-3f2a9c1e77b0/workspace/lib",
    ]


def test_create_args_one_way_and_defaults() -> None:
    args = create_args(
        "alca-k-0", "/p", "c0ffee", "/w", ignores=[], one_way=True, labels={"alca-mount": "0"}
    )
    assert "--mode=one-way-replica" in args
    assert not any(a.startswith(("--ignore=", "--watch")) for a in args)
    assert args[-2:] == ["/p", "docker://c0ffee/w"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "1abc"}, "session name"),
        ({"name": "alca_x"}, "session name"),
        ({"name": "defaults"}, "session name"),
        ({"alpha": "relative/dir"}, "absolute"),
        ({"alpha": "/"}, "absolute"),
        ({"container": "-rm"}, "container name"),
        ({"container": "a/b"}, "container name"),
        ({"path": "workspace"}, "absolute"),
        ({"path": "/work space"}, "without spaces"),
        ({"path": "/a/../b"}, "normalised"),
        ({"path": "/a/"}, "normalised"),
        ({"path": "/"}, "refusing"),
        ({"path": "/proc/self"}, "refusing"),
        ({"path": "/dev"}, "refusing"),
        ({"user": "a b"}, "user"),
        ({"labels": {"alca-project": "x" * 64}}, "label value"),
        ({"labels": {"alca-project": "a,b"}}, "label value"),
        ({"labels": {"bad key": "x"}}, "label key"),
        ({"interval": 0}, "polling"),
        ({"ignores": ["!.env"]}, "negated"),
        ({"ignores": [""]}, "empty"),
    ],
)
def test_create_args_refuses(change: dict[str, object], message: str) -> None:
    values: dict[str, object] = {
        "name": "alca-k-0",
        "alpha": "/p",
        "container": "c",
        "path": "/w",
        "user": None,
        "labels": {},
        "interval": None,
        "ignores": [],
    }
    values.update(change)
    with pytest.raises(ValueError, match=message):
        create_args(
            str(values["name"]),
            str(values["alpha"]),
            str(values["container"]),
            str(values["path"]),
            ignores=values["ignores"],  # type: ignore[arg-type]
            one_way=False,
            labels=values["labels"],  # type: ignore[arg-type]
            beta_user=values["user"],  # type: ignore[arg-type]
            watch_polling_interval=values["interval"],  # type: ignore[arg-type]
        )


def test_names_and_labels() -> None:
    assert session_name("3f2a9c1e", 0) == "alca-3f2a9c1e-0"
    assert session_labels(PROJECT_ID, 2) == {"alca-project": PROJECT_ID, "alca-mount": "2"}
    assert project_selector(PROJECT_ID) == f"alca-project={PROJECT_ID}"
    with pytest.raises(ValueError):
        session_name("has space", 0)
    with pytest.raises(ValueError):
        session_name("k", -1)
    with pytest.raises(ValueError):
        project_selector("x,alca-mount=1")


@pytest.mark.parametrize(
    ("pattern", "arg"),
    [
        (".env", "--ignore=.env"),
        ("/.env", "--ignore=/.env"),
        ("**/.env", "--ignore=**/.env"),
        ("secrets/", "--ignore=secrets/"),
        ("a b", "--ignore=a b"),
        ("*.{key,crt}", '--ignore="*.{key,crt}"'),
        ('we"ird', '--ignore="we""ird"'),
    ],
)
def test_ignore_arg_quotes_only_what_csv_would_split(pattern: str, arg: str) -> None:
    assert ignore_arg(pattern) == arg


def _csv_value(arg: str) -> list[str]:
    """How Mutagen's flag parser (a CSV record reader) reads an --ignore value."""
    return next(csv.reader(io.StringIO(arg.removeprefix("--ignore="))))


@given(
    st.text(
        alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FF, exclude_characters="\x7f"),
        min_size=1,
    ).filter(lambda p: p.strip() and not p.startswith("!") and p.strip("/"))
)
def test_ignore_arg_round_trips_through_csv(pattern: str) -> None:
    assert _csv_value(ignore_arg(pattern)) == [pattern]


@pytest.mark.parametrize("pattern", ["", "  ", "!.env", "!", "a\nb", "tab\there", "/", "//"])
def test_check_ignore_refuses(pattern: str) -> None:
    with pytest.raises(ValueError):
        check_ignore(pattern)


# --- the wrapper: environment, data dir -----------------------------------------------------


def test_environment_is_private(short_dir: Path, engines: dict[str, str]) -> None:
    environ = {
        **engines,
        "MUTAGEN_DATA_DIRECTORY": "/home/u/.mutagen",
        "MUTAGEN_BETA_DOCKER_HOST": "tcp://evil:2375",
        "MUTAGEN_DISABLE_AUTOSTART": "1",
        "DOCKER_HOST": "unix:///run/docker.sock",
    }
    mutagen, _, _ = make(short_dir, environ)
    env = mutagen.env
    assert env["MUTAGEN_DATA_DIRECTORY"] == str(short_dir / "m")
    assert env["MUTAGEN_DOCKER_PATH"] == str(short_dir / "m" / "bin")
    assert {k for k in env if k.startswith("MUTAGEN_")} == {
        "MUTAGEN_DATA_DIRECTORY",
        "MUTAGEN_DOCKER_PATH",
    }
    assert env["DOCKER_HOST"] == "unix:///run/docker.sock"  # Docker: the user's engine
    podman, _, _ = make(short_dir, environ, engine="podman")
    assert "DOCKER_HOST" not in podman.env  # would be replayed to `podman` calls


def test_docker_symlink_points_at_the_engine(short_dir: Path, engines: dict[str, str]) -> None:
    mutagen, runner, _ = make(short_dir, engines, lambda a: ok("[]"), engine="podman")
    assert mutagen.list() == []
    link = short_dir / "m" / "bin" / "docker"
    assert os.readlink(link) == str(Path(engines["PATH"]) / "podman")
    assert (short_dir / "m" / "engine").read_text() == "podman\n"
    assert stat.S_IMODE((short_dir / "m").stat().st_mode) == 0o700
    assert runner.envs[0] == mutagen.env
    # The same data dir with the other engine would switch every session's engine.
    docker, _, _ = make(short_dir, engines, lambda a: ok("[]"), engine="docker")
    with pytest.raises(SyncError, match="belongs to podman"):
        docker.list()


def test_missing_engine_is_unavailable(short_dir: Path, tmp_path: Path) -> None:
    mutagen, _, _ = make(short_dir, {"PATH": str(tmp_path)}, lambda a: ok("[]"))
    with pytest.raises(UnavailableError, match="docker is not installed"):
        mutagen.list()


def test_data_dir_length_limit(engines: dict[str, str]) -> None:
    base = "/tmp/"
    fits = Path(base + "x" * (MAX_DATA_DIR_BYTES - len(base)))
    assert MAX_DATA_DIR_BYTES == 88  # 107-byte socket path minus "/daemon/daemon.sock"
    Mutagen(FakeRunner(), data_dir=fits, environ=engines)
    with pytest.raises(SyncError, match="89 bytes long; at most 88") as info:
        Mutagen(FakeRunner(), data_dir=Path(str(fits) + "y"), environ=engines)
    assert info.value.hint
    with pytest.raises(ValueError, match="absolute"):
        Mutagen(FakeRunner(), data_dir=Path("rel/dir"), environ=engines)
    with pytest.raises(ValueError, match="engine"):
        Mutagen(FakeRunner(), data_dir=fits, engine="lxc", environ=engines)


# --- check_installed -------------------------------------------------------------------------


def _mutagen_on_path(tmp_path: Path, bundle: bool) -> dict[str, str]:
    bindir = tmp_path / "mbin"
    bindir.mkdir()
    (bindir / "mutagen").write_text("#!/bin/sh\n")
    (bindir / "mutagen").chmod(0o755)
    if bundle:
        (bindir / "mutagen-agents.tar.gz").write_bytes(b"\x1f\x8b")
    return {"PATH": str(bindir)}


def test_check_installed(short_dir: Path, tmp_path: Path) -> None:
    environ = _mutagen_on_path(tmp_path, bundle=True)
    mutagen, runner, _ = make(short_dir, environ, lambda a: ok("0.18.1\n"))
    assert mutagen.check_installed() == "0.18.1"
    assert runner.calls == [("mutagen", "version")]
    assert not (short_dir / "m").exists()  # `version` needs no daemon, creates nothing


def test_check_installed_wrong_version(short_dir: Path, tmp_path: Path) -> None:
    environ = _mutagen_on_path(tmp_path, bundle=True)
    mutagen, _, _ = make(short_dir, environ, lambda a: ok("0.17.5\n"))
    with pytest.raises(UnavailableError, match=r"mutagen 0\.18\.1 is required, found 0\.17\.5"):
        mutagen.check_installed()


def test_check_installed_missing(short_dir: Path, tmp_path: Path) -> None:
    def missing(argv: tuple[str, ...]) -> BaseException:
        return UnavailableError("mutagen is not installed (not found on PATH)")

    mutagen, _, _ = make(short_dir, {"PATH": str(tmp_path)}, missing)
    with pytest.raises(UnavailableError) as info:
        mutagen.check_installed()
    assert info.value.exit_code == 69
    assert "setup-test-env.sh" in (info.value.hint or "")
    assert "0.18.1" in (info.value.hint or "")


def test_check_installed_without_agent_bundle(short_dir: Path, tmp_path: Path) -> None:
    environ = _mutagen_on_path(tmp_path, bundle=False)
    mutagen, _, _ = make(short_dir, environ, lambda a: ok("0.18.1\n"))
    with pytest.raises(UnavailableError, match=r"mutagen-agents\.tar\.gz is missing"):
        mutagen.check_installed()


# --- the wrapper: sessions -----------------------------------------------------------------


def _created(argv: tuple[str, ...], listing: str) -> Result:
    if argv[1:3] == ("sync", "create"):
        return Result(argv, 0, "Creating session...\rCreated session sync_abc\n", "")
    if argv[1:3] == ("sync", "list"):
        return ok(listing)
    return ok()


def test_create_replaces_then_verifies(
    short_dir: Path, engines: dict[str, str], tmp_path: Path
) -> None:
    listing = RECORDED_CONFLICTS
    mutagen, runner, _ = make(short_dir, engines, lambda a: _created(a, listing))
    session = mutagen.create(
        "alca-3f2a9c1e-1",
        str(tmp_path),
        "mxd",
        "/w/lib",
        ignores=[".env"],
        one_way=False,
        labels=session_labels(PROJECT_ID, 1),
    )
    assert session.name == "alca-3f2a9c1e-1"
    assert runner.verbs() == [("sync", "terminate"), ("sync", "create"), ("sync", "list")]
    assert runner.calls[0] == ("mutagen", "sync", "terminate", "alca-3f2a9c1e-1")
    assert runner.calls[2][-1] == "alca-3f2a9c1e-1"


def test_create_refuses_patterns_mutagen_recorded_differently(
    short_dir: Path, engines: dict[str, str], tmp_path: Path
) -> None:
    mutagen, runner, _ = make(short_dir, engines, lambda a: _created(a, RECORDED_CONFLICTS))
    with pytest.raises(SyncError, match="recorded the exclude patterns"):
        mutagen.create(
            "alca-3f2a9c1e-1",
            str(tmp_path),
            "mxd",
            "/w/lib",
            ignores=[".env", "*.pem"],
            one_way=False,
            labels={},
        )
    assert runner.verbs()[-1] == ("sync", "terminate")


def test_create_failure_is_explained(
    short_dir: Path, engines: dict[str, str], tmp_path: Path
) -> None:
    err = (
        "Creating session...\r                \rConnecting to agent (POSIX)...\r\n"
        "Error: unable to connect to beta: unable to connect to endpoint: unable to dial agent "
        "endpoint: unable to create agent command: unable to probe container: container does "
        "not exist\n"
    )

    def handler(argv: tuple[str, ...]) -> Result:
        return fail(err) if argv[1:3] == ("sync", "create") else ok()

    mutagen, _, _ = make(short_dir, engines, handler)
    with pytest.raises(CommandFailed) as info:
        mutagen.create(
            "alca-k-0", str(tmp_path), "gone", "/w", ignores=[], one_way=False, labels={}
        )
    assert "container does not exist" in info.value.message
    assert "\r" not in info.value.message
    assert "Connecting" not in info.value.message
    assert info.value.hint == "check that the container is running (alca up)"


def test_create_retries_once_when_the_daemon_lost_the_prompter(
    short_dir: Path, engines: dict[str, str], tmp_path: Path
) -> None:
    lost = "Error: unable to connect to beta: unable to message prompter: prompter not found\n"
    creates: list[int] = []

    def handler(argv: tuple[str, ...]) -> Result:
        if argv[1:3] == ("sync", "create"):
            creates.append(1)
            return fail(lost) if len(creates) == 1 else _created(argv, RECORDED_CONFLICTS)
        return _created(argv, RECORDED_CONFLICTS)

    mutagen, runner, _ = make(short_dir, engines, handler)
    mutagen.create(
        "alca-3f2a9c1e-1", str(tmp_path), "mxd", "/w/lib", ignores=[".env"], one_way=False,
        labels={},
    )  # fmt: skip
    assert runner.verbs() == [
        ("sync", "terminate"),
        ("sync", "create"),
        ("sync", "terminate"),
        ("sync", "create"),
        ("sync", "list"),
    ]
    creates.clear()

    def always_lost(argv: tuple[str, ...]) -> Result:
        return fail(lost) if argv[1:3] == ("sync", "create") else ok()

    mutagen, runner, _ = make(short_dir, engines, always_lost)
    with pytest.raises(CommandFailed, match="prompter not found"):
        mutagen.create("alca-k-0", str(tmp_path), "mxd", "/w", ignores=[], one_way=False, labels={})
    assert runner.verbs().count(("sync", "create")) == 2


def test_create_refuses_data_dir_inside_the_synced_dir(
    short_dir: Path, engines: dict[str, str]
) -> None:
    mutagen, runner, _ = make(short_dir, engines)
    with pytest.raises(SyncError, match="inside the synced directory"):
        mutagen.create("alca-k-0", str(short_dir), "c", "/w", ignores=[], one_way=False, labels={})
    assert runner.calls == []


def test_create_refuses_a_missing_host_directory(
    short_dir: Path, engines: dict[str, str], tmp_path: Path
) -> None:
    mutagen, runner, _ = make(short_dir, engines)
    with pytest.raises(SyncError, match="not a directory on the host"):
        mutagen.create(
            "alca-k-0", str(tmp_path / "gone"), "c", "/w", ignores=[], one_way=False, labels={}
        )
    assert runner.calls == []


def test_flush_of_a_paused_session(short_dir: Path, engines: dict[str, str]) -> None:
    def handler(argv: tuple[str, ...]) -> Result:
        if argv[1:3] == ("sync", "flush"):
            return fail("Error: unable to flush session: session is paused")
        return ok(RECORDED_PAUSED)

    mutagen, _, _ = make(short_dir, engines, handler)
    with pytest.raises(SyncError, match="it is paused") as info:
        mutagen.flush("alca-3f2a9c1e-1")
    assert info.value.hint == "resume it first"


def test_flush_retries_while_connecting(short_dir: Path, engines: dict[str, str]) -> None:
    answers = iter(
        [fail("Error: unable to flush session: session is not currently able to synchronize")] * 3
        + [ok()]
    )

    def handler(argv: tuple[str, ...]) -> Result:
        if argv[1:3] == ("sync", "flush"):
            return next(answers)
        return ok(RECORDED_CONFLICTS)

    mutagen, runner, clock = make(short_dir, engines, handler)
    session = mutagen.flush("alca-3f2a9c1e-1", timeout=10)
    assert len(session.conflicts) == 5
    assert runner.verbs().count(("sync", "flush")) == 4
    assert clock.slept == [0.1, 0.2, 0.4]


def test_flush_gives_up_with_the_reason(short_dir: Path, engines: dict[str, str]) -> None:
    def handler(argv: tuple[str, ...]) -> Result:
        if argv[1:3] == ("sync", "flush"):
            return fail(
                "Error: unable to flush session: session is not currently able to synchronize"
            )
        return ok(RECORDED_GONE)

    mutagen, _, clock = make(short_dir, engines, handler)
    with pytest.raises(SyncError, match=r"connecting-beta \(beta polling error") as info:
        mutagen.flush("alca-3f2a9c1e-0", timeout=5)
    assert 4 <= clock.now <= 5  # never sleeps past the deadline
    assert "alca up" in (info.value.hint or "")


def test_flush_of_a_halted_session(short_dir: Path, engines: dict[str, str]) -> None:
    def handler(argv: tuple[str, ...]) -> Result:
        if argv[1:3] == ("sync", "flush"):
            return fail(
                "Error: unable to flush session: synchronization failed while waiting for flush "
                "response"
            )
        return ok(RECORDED_HALTED)

    mutagen, runner, _ = make(short_dir, engines, handler)
    with pytest.raises(SyncError, match="emptied"):
        mutagen.flush("alca-3f2a9c1e-0")
    assert runner.verbs().count(("sync", "flush")) == 1  # not a retryable state


def test_flush_reports_a_root_problem(short_dir: Path, engines: dict[str, str]) -> None:
    mutagen, _, _ = make(short_dir, engines, lambda a: ok(RECORDED_NOPARENT))
    with pytest.raises(SyncError, match="cannot write its container directory: unable to walk"):
        mutagen.flush("alca-3f2a9c1e-3")


def test_flush_all_by_label(short_dir: Path, engines: dict[str, str]) -> None:
    mutagen, runner, _ = make(short_dir, engines, lambda a: ok(RECORDED_MANY))
    sessions = mutagen.flush_all(project_selector(PROJECT_ID))
    assert [s.name for s in sessions] == ["alca-3f2a9c1e-2"]
    assert runner.calls[0] == (
        "mutagen",
        "sync",
        "flush",
        f"--label-selector=alca-project={PROJECT_ID}",
    )


def test_terminate_tolerates_missing_sessions(short_dir: Path, engines: dict[str, str]) -> None:
    def handler(argv: tuple[str, ...]) -> Result:
        if argv[-1] == "gone":
            return fail(
                'Error: unable to locate requested sessions: specification "gone" did not match '
                "any sessions"
            )
        return ok()

    mutagen, runner, _ = make(short_dir, engines, handler)
    mutagen.terminate("gone", "alca-k-0", label_selector="alca-project=p")
    assert runner.calls == [
        ("mutagen", "sync", "terminate", "gone"),
        ("mutagen", "sync", "terminate", "alca-k-0"),
        ("mutagen", "sync", "terminate", "--label-selector=alca-project=p"),
    ]
    with pytest.raises(ValueError):
        mutagen.terminate()


def test_terminate_other_failures_raise(short_dir: Path, engines: dict[str, str]) -> None:
    mutagen, _, _ = make(short_dir, engines, lambda a: fail("Error: unable to connect to daemon"))
    with pytest.raises(CommandFailed, match="could not terminate"):
        mutagen.terminate("alca-k-0")


def test_pause_resume_get_list(short_dir: Path, engines: dict[str, str]) -> None:
    def handler(argv: tuple[str, ...]) -> Result:
        if argv[-1] == "nope":
            return fail('Error: specification "nope" did not match any sessions')
        return ok(RECORDED_PAUSED if argv[1:3] == ("sync", "list") else "")

    mutagen, runner, _ = make(short_dir, engines, handler)
    mutagen.pause("a")
    mutagen.resume(label_selector="alca-project=p")
    assert mutagen.get("nope") is None
    [session] = mutagen.list("alca-project=p")
    assert session.paused
    assert runner.calls[-1] == (
        "mutagen",
        "sync",
        "list",
        "--template={{json .}}",
        "--label-selector=alca-project=p",
    )


def test_version_mismatch_restarts_our_daemon_once(
    short_dir: Path, engines: dict[str, str]
) -> None:
    answers = iter([fail("Error: client/daemon version mismatch (daemon restart recommended)")])

    def handler(argv: tuple[str, ...]) -> Result:
        return next(answers, ok("[]"))

    mutagen, runner, _ = make(short_dir, engines, handler)
    assert mutagen.list() == []
    assert runner.verbs() == [("sync", "list"), ("sync", "list")]  # no daemon answered: no stop


def test_daemon_running_and_stop(short_dir: Path, engines: dict[str, str]) -> None:
    mutagen, runner, _ = make(short_dir, engines)
    assert not mutagen.daemon_running()
    mutagen.daemon_stop()
    assert runner.calls == []  # nothing to stop: no command, no auto-started daemon
    mutagen.socket_path.parent.mkdir(parents=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(mutagen.socket_path))
        server.listen()
        assert mutagen.daemon_running()
        with pytest.raises(SyncError, match="still running"):
            mutagen.daemon_stop(wait=1)
        assert runner.calls == [("mutagen", "daemon", "stop")]
    assert not mutagen.daemon_running()  # a stale socket file with no listener


def test_error_text() -> None:
    progress = "Forcing synchronization cycle for session sync_x\r" + " " * 20 + "\r"
    assert error_text(Result((), 1, "", progress + "Error: boom\n")) == "boom"
    assert error_text(Result((), 1, "", "")) == "(no output)"
    assert error_text(Result((), 1, "only stdout\n", "")) == "only stdout"


# --- parsing recorded output ---------------------------------------------------------------


def test_parse_session_with_conflicts() -> None:
    [session] = parse_sessions(RECORDED_CONFLICTS)
    assert session.name == "alca-3f2a9c1e-1"
    assert session.identifier.startswith("sync_")
    assert session.status == "watching"
    assert session.mode == "two-way-safe"
    assert session.ignore_paths == (".env",)
    assert session.connected and not session.paused and not session.halted
    assert session.successful_cycles == 2
    assert session.mount_index == 1
    assert session.labels["alca-project"] == PROJECT_ID
    assert (session.alpha_path, session.beta_host, session.beta_path) == (
        "/tmp/mx/h1",
        "mxd",
        "/w/lib",
    )
    assert [(p.endpoint, p.kind, p.path) for p in session.problems] == [
        ("beta", "scan", "abs"),
        ("beta", "scan", "esc"),
    ]
    assert session.problems[0].error == "invalid symbolic link: target is absolute"
    assert session.root_problems == ()
    assert [(c.path, c.local_state, c.container_state) for c in session.conflicts] == [
        ("both.txt", "created", "created"),
        ("edit.txt", "modified", "modified"),
        ("keep", "deleted", "holds excluded files"),
        ("kind", "created directory", "created"),
        ("sub", "replaced by file", "changed inside"),
    ]
    assert {c.session for c in session.conflicts} == {"alca-3f2a9c1e-1"}
    assert {c.mount_index for c in session.conflicts} == {1}
    assert session.conflict_count == 5


def test_parse_session_with_unlisted_conflicts() -> None:
    [session] = parse_sessions(RECORDED_MANY)
    assert len(session.conflicts) == 10
    assert session.excluded_conflicts == 2
    assert session.conflict_count == 12
    assert session.mount_index == 2


def test_parse_other_states() -> None:
    [paused] = parse_sessions(RECORDED_PAUSED)
    assert paused.paused and paused.status == "disconnected" and not paused.connected
    assert paused.conflicts == ()
    assert explain(paused) == "it is paused"
    [gone] = parse_sessions(RECORDED_GONE)
    assert gone.alpha_connected and not gone.beta_connected
    assert gone.status == "connecting-beta"
    assert gone.last_error.startswith("beta polling error")
    [halted] = parse_sessions(RECORDED_HALTED)
    assert halted.halted
    assert "emptied" in explain(halted)
    [noparent] = parse_sessions(RECORDED_NOPARENT)
    assert [p.endpoint for p in noparent.root_problems] == ["beta"]
    assert noparent.root_problems[0].kind == "transition"


def test_skipped_paths_are_named_made_printable() -> None:
    [session] = parse_sessions(RECORDED_PAUSED)
    skipped = (
        Problem("beta", "scan", "bad\x1b]0;t\x07name", "invalid name"),
        Problem("alpha", "scan", "other", "permission denied"),
    )
    watching = dataclasses.replace(session, paused=False, status="watching", problems=skipped)
    text = explain(watching)
    assert text == (
        "watching; not synced: bad\\x1b]0;t\\x07name in the container (invalid name) and 1 more"
    )


def test_parse_sessions_edge_cases() -> None:
    assert parse_sessions("[]") == []
    assert parse_sessions("null") == []
    with pytest.raises(SyncError, match="not JSON"):
        parse_sessions("No synchronization sessions found")
    with pytest.raises(SyncError, match="not a JSON array"):
        parse_sessions("{}")
    [bare] = parse_sessions('[{"name": "x", "labels": {"alca-mount": "one"}}]')
    assert bare.mount_index == -1 and bare.status == "" and bare.conflicts == ()
    odd = '[{"name": "x", "labels": {"alca-mount": "\u00b2"}, "conflicts": [{"root": "a"}]}]'
    [superscript] = parse_sessions(odd)
    assert superscript.mount_index == -1
    assert superscript.conflicts[0].mount_index == -1


# --- conflicts -----------------------------------------------------------------------------


def conflict(path: str, index: int = 0, local: str = "modified", ctr: str = "modified") -> Conflict:
    return Conflict(f"alca-k-{index}", index, path, local, ctr)


def test_side_states_from_raw_changes() -> None:
    def change(path: str, old: str | None, new: str | None) -> dict[str, object]:
        return {
            "path": path,
            "old": {"kind": old} if old else None,
            "new": {"kind": new} if new else None,
        }

    assert cf.side_state([], "a") == "unchanged"
    assert cf.side_state(None, "a") == "unchanged"
    assert cf.side_state([change("a", None, "symlink")], "a") == "created symlink"
    assert cf.side_state([change("a", "file", "directory")], "a") == "replaced by directory"
    assert cf.side_state([change("a", "file", None)], "a") == "deleted"
    assert cf.side_state([change("a", "directory", "directory")], "a") == "modified"
    assert cf.side_state([change("a", None, "problematic")], "a") == "created unsyncable entry"


def test_banner_grammar_and_limits() -> None:
    assert cf.banner([]) == ""
    one = cf.banner([conflict("src/app.py")])
    assert one == (
        "⚠ 1 sync conflict needs attention:\n"
        "  src/app.py                     (modified on both sides)\n"
        "Run 'alca experimental sync resolve' to resolve."
    )
    three = cf.banner(
        [conflict("a"), conflict("b", local="deleted", ctr="modified"), conflict("c")]
    )
    assert three.splitlines()[0] == "⚠ 3 sync conflicts need attention:"
    assert "  b" + " " * 30 + "(deleted locally, modified in container)" in three
    assert "more" not in three
    five = cf.banner([conflict(x) for x in "abcde"])
    assert five.splitlines()[-2] == "  ...and 2 more"
    assert len(five.splitlines()) == 6


def test_banner_counts_unlisted_and_shows_mounts() -> None:
    [session] = parse_sessions(RECORDED_MANY)
    text = cf.banner(session.conflicts, unlisted=session.excluded_conflicts)
    assert text.startswith("⚠ 12 sync conflicts need attention:")
    assert "  ...and 9 more" in text
    assert "[mount 2] f00.txt" in text
    with_targets = cf.banner(session.conflicts, targets=["/workspace", "/a", "/data/many"])
    assert "  /data/many/f00.txt" in with_targets
    only_unlisted = cf.banner([], unlisted=4)
    assert only_unlisted.splitlines()[1] == "  ...and 4 more"


def test_banner_escapes_what_a_terminal_would_act_on() -> None:
    text = cf.banner([conflict("evil\x1b]0;pwned\x07\nname\u202e")])
    assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
    assert "evil\\x1b]0;pwned\\x07\\nname\\u202e" in text
    assert len(text.splitlines()) == 3


def test_cache_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "state" / "sync-conflicts.json"
    now = datetime(2026, 11, 22, 23, 30, tzinfo=UTC)
    items = [conflict("a.txt"), conflict("lib/b", 1, "deleted", "holds excluded files")]
    cf.write_cache(path, items, unlisted=3, now=now)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left
    data = json.loads(path.read_text())
    assert data["version"] == 1 and data["updatedAt"] == "2026-11-22T23:30:00Z"
    assert data["conflicts"][1] == {
        "session": "alca-k-1",
        "mountIndex": 1,
        "path": "lib/b",
        "local": "deleted",
        "container": "holds excluded files",
    }
    cache = cf.read_cache(path)
    assert cache is not None
    assert cache.conflicts == tuple(items)
    assert cache.unlisted == 3 and cache.total == 5
    assert cache.updated_at == now


@pytest.mark.parametrize(
    "content",
    [
        "",
        "not json",
        "[]",
        '{"version": 2, "updatedAt": "x", "conflicts": []}',
        '{"version": 1, "updatedAt": "yesterday", "conflicts": []}',
        '{"version": 1, "updatedAt": "2026-01-01T00:00:00Z", "conflicts": [{"path": "a"}]}',
    ],
)
def test_unreadable_cache_means_no_banner(tmp_path: Path, content: str) -> None:
    path = tmp_path / "c.json"
    path.write_text(content)
    assert cf.read_cache(path) is None
    assert cf.read_cache(tmp_path / "missing.json") is None


MOUNTS = (
    Mount("/home/dev/proj", "/workspace", False, (".env",)),
    Mount("/home/dev/shared-lib", "/opt/lib", False, ("*.key",)),
)


def test_resolution_uses_the_conflicts_own_mount() -> None:
    """Upstream B9: a conflict from mount 1 was resolved relative to the workdir."""
    paths = cf.resolution_paths(conflict("src/x.py", 1), MOUNTS)
    assert paths == cf.ResolutionPaths("/home/dev/shared-lib/src/x.py", "/opt/lib/src/x.py")
    paths0 = cf.resolution_paths(conflict("src/x.py", 0), MOUNTS)
    assert paths0 == cf.ResolutionPaths("/home/dev/proj/src/x.py", "/workspace/src/x.py")
    local = cf.deletion_for(conflict("a b/c", 1), MOUNTS, "local")
    assert local == cf.Deletion("container", "/opt/lib/a b/c")
    theirs = cf.deletion_for(conflict("a b/c", 1), MOUNTS, "container")
    assert theirs == cf.Deletion("host", "/home/dev/shared-lib/a b/c")
    with pytest.raises(ValueError):
        cf.deletion_for(conflict("a"), MOUNTS, "both")  # type: ignore[arg-type]


def test_resolution_of_recorded_conflicts() -> None:
    [session] = parse_sessions(RECORDED_CONFLICTS)
    keep = next(c for c in session.conflicts if c.path == "keep")
    assert cf.deletion_for(keep, MOUNTS, "local") == cf.Deletion("container", "/opt/lib/keep")


@pytest.mark.parametrize(
    "path",
    ["", "/etc/passwd", "..", "../x", "a/../../x", "a/..", "./a", "a/./b", "a//b", "a/", "a\x00b"],
)
def test_resolution_refuses_unsafe_paths(path: str) -> None:
    with pytest.raises(UnsafePathError):
        cf.resolution_paths(conflict(path, 0), MOUNTS)


@pytest.mark.parametrize("index", [-1, 2, 99])
def test_resolution_refuses_unknown_mounts(index: int) -> None:
    with pytest.raises(UnsafePathError, match=f"mount #{index}") as info:
        cf.resolution_paths(conflict("a", index), MOUNTS)
    assert info.value.hint == "run `alca up` so the sync sessions match the configuration"


def test_check_inside(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    (root / "sub").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "link").symlink_to(outside)
    cf.check_inside(str(root / "sub" / "file"), str(root))
    cf.check_inside(str(root / "file"), str(root))
    with pytest.raises(UnsafePathError, match="outside"):
        cf.check_inside(str(root / "link" / "file"), str(root))


def test_errors_are_alca_errors() -> None:
    assert issubclass(SyncError, AlcaError)
    assert issubclass(UnsafePathError, AlcaError)
