"""Engine facts cached per daemon identity: reuse, invalidation, corrupt files, the TTL."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from alcatraz.app import App
from alcatraz.errors import UsageError
from alcatraz.proc import SubprocessRunner
from alcatraz.runtime import detect, engine_facts
from alcatraz.runtime.docker import DockerRuntime
from alcatraz.runtime.engine_facts import CACHE_FILE, FactsCache, api_enabled, identity
from alcatraz.runtime.podman import PodmanRuntime
from tests.fakes import FakeRunner
from tests.unit.runtime.engine_server import short_dir

DOCKER_INFO = ("docker", "info", "--format", DockerRuntime.FACTS_FORMAT)
PODMAN_INFO = ("podman", "info", "--format", "{{.Host.Security.Rootless}}")


@pytest.fixture
def sock() -> Iterator[str]:
    """A real Unix socket file (nothing answers on it: these tests never connect)."""
    with short_dir() as directory:
        path = os.path.join(directory, "docker.sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        try:
            yield path
        finally:
            listener.close()


def recreate(path: str) -> socket.socket:
    """What a restarted daemon does: remove its socket file and bind a new one."""
    os.unlink(path)
    fresh = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    fresh.bind(path)
    return fresh


def env_for(path: str) -> dict[str, str]:
    return {"DOCKER_HOST": f"unix://{path}"}


def cached_docker(home: Path, environ: dict[str, str], runner: FakeRunner) -> DockerRuntime:
    docker = DockerRuntime(runner)
    docker.use_facts(FactsCache(home, "docker", environ), api=False)
    return docker


def info_runner() -> FakeRunner:
    return FakeRunner().on(*DOCKER_INFO, out='["name=seccomp"]\t"Debian"\n')


def test_docker_info_is_asked_once_per_daemon_identity(tmp_path: Path, sock: str) -> None:
    runner = info_runner()
    assert cached_docker(tmp_path, env_for(sock), runner).is_rootless() is False
    again = cached_docker(tmp_path, env_for(sock), runner)  # a later `alca` command
    assert again.is_rootless() is False
    assert again.operating_system() == "Debian"
    assert runner.calls == [DOCKER_INFO]


def test_a_restarted_daemon_is_asked_again(tmp_path: Path, sock: str) -> None:
    runner = info_runner()
    cached_docker(tmp_path, env_for(sock), runner).is_rootless()
    before = identity("docker", env_for(sock))[0]
    fresh = recreate(sock)
    try:
        assert identity("docker", env_for(sock))[0] != before
        runner.script.clear()
        runner.on(*DOCKER_INFO, out='["name=rootless"]\t"Debian"\n')
        assert cached_docker(tmp_path, env_for(sock), runner).is_rootless() is True
    finally:
        fresh.close()
    assert runner.calls == [DOCKER_INFO, DOCKER_INFO]


@pytest.mark.parametrize(
    "content",
    ["{not json", "[1, 2]", '{"docker": "x"}', '{"docker": {"identity": 1}}', "\x00\xff"],
)
def test_a_corrupt_cache_file_is_ignored_and_rewritten(
    tmp_path: Path, sock: str, content: str
) -> None:
    (tmp_path / CACHE_FILE).write_text(content, encoding="utf-8", errors="surrogateescape")
    runner = info_runner()
    assert cached_docker(tmp_path, env_for(sock), runner).is_rootless() is False
    written = json.loads((tmp_path / CACHE_FILE).read_text(encoding="utf-8"))
    assert written["docker"]["identity"] == identity("docker", env_for(sock))[0]
    assert cached_docker(tmp_path, env_for(sock), runner).is_rootless() is False
    assert runner.calls == [DOCKER_INFO]


def test_a_fact_that_does_not_parse_is_never_cached(tmp_path: Path, sock: str) -> None:
    runner = FakeRunner().on(*DOCKER_INFO, out="garbage\t\n")
    with pytest.raises(Exception, match="security options"):
        cached_docker(tmp_path, env_for(sock), runner).is_rootless()
    assert not (tmp_path / CACHE_FILE).exists()


def test_an_unwritable_home_only_costs_the_probe(tmp_path: Path, sock: str) -> None:
    home = tmp_path / "file-not-dir"
    home.write_text("")
    runner = info_runner()
    assert cached_docker(home, env_for(sock), runner).is_rootless() is False
    assert cached_docker(home, env_for(sock), runner).is_rootless() is False
    assert runner.calls == [DOCKER_INFO, DOCKER_INFO]


def test_without_a_socket_facts_expire_after_the_ttl(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    environ = {"CONTAINER_HOST": "ssh://somewhere/run/podman.sock"}
    runner = FakeRunner().on(*PODMAN_INFO, out="true\n")

    def podman() -> PodmanRuntime:
        made = PodmanRuntime(runner)
        made.use_facts(FactsCache(tmp_path, "podman", environ), api=True)
        assert made.api is None  # a remote engine has no local socket
        return made

    monkeypatch.setenv("CONTAINER_HOST", environ["CONTAINER_HOST"])
    assert podman().is_rootless() is True
    assert podman().is_rootless() is True
    assert len(runner.calls) == 1
    later = time.time() + engine_facts.CLI_TTL + 1
    monkeypatch.setattr(engine_facts.time, "time", lambda: later)
    assert podman().is_rootless() is True
    assert len(runner.calls) == 2


def test_each_engine_and_host_keeps_its_own_facts(tmp_path: Path, sock: str) -> None:
    runner = info_runner()
    cached_docker(tmp_path, env_for(sock), runner).is_rootless()
    other = {"DOCKER_HOST": "tcp://10.0.0.1:2376"}
    cached_docker(tmp_path, other, runner).is_rootless()
    assert len(runner.calls) == 2
    found, socket_path = identity("docker", other)
    assert socket_path is None and found.startswith("cli ")
    assert "DOCKER_HOST=tcp://10.0.0.1:2376" in found


def test_another_cli_program_is_another_identity(tmp_path: Path, sock: str) -> None:
    """A wrapper `docker` first on PATH (or another installation) has facts of its own."""
    wrapper = tmp_path / "bin" / "docker"
    wrapper.parent.mkdir()
    wrapper.write_text("#!/bin/sh\nexit 1\n")
    wrapper.chmod(0o755)
    plain = identity("docker", env_for(sock))[0]
    wrapped = identity("docker", {**env_for(sock), "PATH": str(wrapper.parent)})[0]
    assert plain != wrapped and str(wrapper) in wrapped


def test_a_missing_or_non_socket_path_is_no_socket_identity(tmp_path: Path) -> None:
    plain = tmp_path / "docker.sock"
    plain.write_text("")
    assert identity("docker", env_for(str(plain)))[1] is None
    assert identity("docker", env_for(str(tmp_path / "gone.sock")))[1] is None


@pytest.mark.parametrize(
    ("value", "enabled"),
    [("", True), ("auto", True), ("0", False), ("off", False), ("cli", False)],
)
def test_api_switch(value: str, enabled: bool) -> None:
    assert api_enabled({engine_facts.API_ENV: value}) is enabled


def test_api_switch_refuses_other_values() -> None:
    with pytest.raises(UsageError, match="ALCA_ENGINE_API"):
        api_enabled({engine_facts.API_ENV: "yes\x1b[2J"})
    with pytest.raises(UsageError):
        api_enabled({engine_facts.API_ENV: "AUTO"})  # as `alca run` reads it: exact values


def test_facts_are_cached_only_for_the_real_runner(tmp_path: Path) -> None:
    """A stand-in runner's answers are no engine's: nothing is cached for it."""
    environ = {"ALCA_HOME": str(tmp_path)}
    assert App(environ=environ, runner=SubprocessRunner()).facts_home == tmp_path
    assert App(environ=environ, runner=FakeRunner()).facts_home is None


def test_detect_with_a_home_uses_facts_and_without_none(tmp_path: Path, sock: str) -> None:
    runner = FakeRunner().on("docker", "version", out="27.0\n")
    detect.clear_cache()
    try:
        plain, _ = detect.resolve_runtime("docker", runner=runner, environ=env_for(sock))
        cached, _ = detect.resolve_runtime(
            "docker", runner=runner, environ=env_for(sock), home=tmp_path
        )
    finally:
        detect.clear_cache()
    assert isinstance(plain, DockerRuntime) and isinstance(cached, DockerRuntime)
    assert plain.facts is None and plain.api is None
    assert cached.facts is not None and cached.facts.socket == sock
    assert cached.api is None  # it did not answer the ping: the CLI's probe decided
    assert runner.calls == [("docker", "version", "--format", "{{.Server.Version}}")] * 2


PODMAN_VERSION = ("podman", "version", "--format", "{{.Version}}")


def test_availability_without_a_socket_is_trusted_for_the_ttl_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    environ = {"XDG_RUNTIME_DIR": str(tmp_path / "no-runtime-dir")}
    monkeypatch.setattr("os.geteuid", lambda: 1000)  # rootless: the socket would be there
    runner = FakeRunner().on(*PODMAN_VERSION, out="4.3.1\n")

    def podman() -> PodmanRuntime:
        made = PodmanRuntime(runner)
        made.use_facts(FactsCache(tmp_path, "podman", environ), api=True)
        return made

    assert podman().available() and podman().available()
    assert runner.calls == [PODMAN_VERSION]
    later = time.time() + engine_facts.CLI_TTL + 1
    monkeypatch.setattr(engine_facts.time, "time", lambda: later)
    assert podman().available()
    assert runner.calls == [PODMAN_VERSION, PODMAN_VERSION]


def test_a_daemon_behind_a_socket_is_asked_every_time(tmp_path: Path, sock: str) -> None:
    """Its socket file can outlive it: nothing answering the ping means the CLI's probe."""
    probe = ("docker", "version", "--format", "{{.Server.Version}}")
    runner = FakeRunner().on(*probe, rc=1, err="Cannot connect to the Docker daemon")
    for _ in range(2):
        docker = DockerRuntime(runner)
        docker.use_facts(FactsCache(tmp_path, "docker", env_for(sock)), api=True)
        assert docker.available() is False
    assert runner.calls == [probe, probe]
