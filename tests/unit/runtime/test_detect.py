"""Runtime selection: configuration, ALCA_RUNTIME, auto-detection, OrbStack, caching."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from alcatraz.errors import AlcaError, ExitCode, UnavailableError, UsageError
from alcatraz.runtime import detect
from alcatraz.runtime.base import Runtime
from alcatraz.runtime.detect import resolve_runtime
from alcatraz.runtime.docker import DockerRuntime, is_orbstack, rootless_from_security_options
from alcatraz.runtime.podman import PodmanRuntime
from tests.fakes import FakeRunner

DOCKER_PROBE = ("docker", "version", "--format", "{{.Server.Version}}")
PODMAN_PROBE = ("podman", "version", "--format", "{{.Version}}")
DOCKER_OS = ("docker", "info", "--format", DockerRuntime.FACTS_FORMAT)
NO_ENV: dict[str, str] = {}


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    detect.clear_cache()
    yield
    detect.clear_cache()


def engines(*, docker: bool, podman: bool, os_name: str = "Docker Desktop") -> FakeRunner:
    """A runner on which the given engines answer their probes."""
    runner = FakeRunner()
    if docker:
        runner.on(*DOCKER_PROBE, out="27.1.1\n").on(*DOCKER_OS, out=f'[]\t"{os_name}"\n')
    else:
        runner.on(
            *DOCKER_PROBE,
            rc=1,
            err="Cannot connect to the Docker daemon at unix:///var/run/docker.sock.",
        )
    if podman:
        runner.on(*PODMAN_PROBE, out="4.3.1\n")
    else:
        runner.raises(
            *PODMAN_PROBE, exc=UnavailableError("podman is not installed (not found on PATH)")
        )
    return runner


def resolve(
    configured: str = "auto",
    *,
    runner: FakeRunner,
    platform: str = "linux",
    env: dict[str, str] = NO_ENV,
) -> tuple[Runtime, str]:
    return resolve_runtime(configured, platform=platform, runner=runner, environ=env)


# --- configured ------------------------------------------------------------------------------


@pytest.mark.parametrize("platform", ["linux", "darwin"])
def test_configured_docker(platform: str) -> None:
    runtime, reason = resolve("docker", runner=engines(docker=True, podman=True), platform=platform)
    assert isinstance(runtime, DockerRuntime)
    assert (runtime.name, runtime.executable) == ("Docker", "docker")
    assert reason == "configured runtime=docker"


def test_configured_podman_even_when_docker_answers() -> None:
    runner = engines(docker=True, podman=True)
    runtime, reason = resolve("podman", runner=runner)
    assert isinstance(runtime, PodmanRuntime)
    assert reason == "configured runtime=podman"
    assert runner.calls == [PODMAN_PROBE]


def test_configured_docker_unavailable_on_linux() -> None:
    with pytest.raises(UnavailableError) as caught:
        resolve("docker", runner=engines(docker=False, podman=True))
    assert caught.value.message == "Docker not available (configured runtime=docker)"
    assert caught.value.hint is not None
    assert "systemctl start docker" in caught.value.hint
    assert caught.value.exit_code is ExitCode.UNAVAILABLE


def test_configured_docker_unavailable_on_macos_hints_desktop_apps() -> None:
    with pytest.raises(UnavailableError) as caught:
        resolve("docker", runner=engines(docker=False, podman=False), platform="darwin")
    assert caught.value.message == "Docker not available (configured runtime=docker)"
    assert caught.value.hint is not None
    assert "Docker Desktop or OrbStack" in caught.value.hint


def test_configured_podman_unavailable() -> None:
    with pytest.raises(UnavailableError) as caught:
        resolve("podman", runner=engines(docker=True, podman=False))
    assert caught.value.message == "Podman not available (configured runtime=podman)"
    assert caught.value.hint is not None
    assert "podman.io" in caught.value.hint


def test_configured_podman_on_macos_hints_the_machine() -> None:
    with pytest.raises(UnavailableError) as caught:
        resolve("podman", runner=engines(docker=True, podman=False), platform="darwin")
    assert caught.value.hint is not None
    assert "podman machine start" in caught.value.hint


def test_unknown_configured_value() -> None:
    with pytest.raises(UsageError, match='unknown runtime "containerd"'):
        resolve("containerd", runner=engines(docker=True, podman=True))


# --- auto ------------------------------------------------------------------------------------


def test_auto_linux_prefers_podman() -> None:
    runner = engines(docker=True, podman=True)
    runtime, reason = resolve(runner=runner)
    assert isinstance(runtime, PodmanRuntime)
    assert reason == "auto: Podman found on Linux"
    assert runner.calls == [PODMAN_PROBE]


def test_empty_configured_value_means_auto() -> None:
    _, reason = resolve("", runner=engines(docker=True, podman=True))
    assert reason == "auto: Podman found on Linux"


def test_auto_linux_falls_back_to_docker() -> None:
    runner = engines(docker=True, podman=False)
    runtime, reason = resolve(runner=runner)
    assert isinstance(runtime, DockerRuntime)
    assert runtime.name == "Docker"
    assert reason == "auto: Podman not available, using Docker"
    assert DOCKER_OS not in runner.calls  # OrbStack is a macOS thing


def test_auto_linux_podman_failing_counts_as_missing() -> None:
    runner = FakeRunner().on(*PODMAN_PROBE, rc=125, err="Error: boom").on(*DOCKER_PROBE, out="1\n")
    _, reason = resolve(runner=runner)
    assert reason == "auto: Podman not available, using Docker"


def test_auto_linux_nothing() -> None:
    with pytest.raises(UnavailableError) as caught:
        resolve(runner=engines(docker=False, podman=False))
    assert caught.value.message == (
        "no container runtime available: neither Podman nor Docker found"
    )
    assert caught.value.hint is not None
    assert "Podman" in caught.value.hint
    assert "Docker" in caught.value.hint


def test_auto_macos_uses_docker_without_probing_podman() -> None:
    runner = engines(docker=True, podman=True)
    runtime, reason = resolve(runner=runner, platform="darwin")
    assert isinstance(runtime, DockerRuntime)
    assert runtime.name == "Docker"
    assert reason == "auto: Docker on macOS"
    assert PODMAN_PROBE not in runner.calls


def test_auto_macos_recognises_orbstack() -> None:
    runtime, reason = resolve(
        runner=engines(docker=True, podman=False, os_name="OrbStack"), platform="darwin"
    )
    assert isinstance(runtime, DockerRuntime)
    assert (runtime.name, runtime.executable) == ("OrbStack", "docker")
    assert reason == "auto: Docker (OrbStack) on macOS"


def test_configured_docker_on_macos_can_be_orbstack() -> None:
    runtime, reason = resolve(
        "docker", runner=engines(docker=True, podman=False, os_name="OrbStack"), platform="darwin"
    )
    assert (runtime.name, reason) == ("OrbStack", "configured runtime=docker")


def test_orbstack_probe_failure_keeps_docker() -> None:
    runner = FakeRunner().on(*DOCKER_PROBE, out="1\n").on(*DOCKER_OS, rc=1, err="x")
    runtime, reason = resolve(runner=runner, platform="darwin")
    assert (runtime.name, reason) == ("Docker", "auto: Docker on macOS")


def test_auto_macos_nothing() -> None:
    with pytest.raises(UnavailableError) as caught:
        resolve(runner=engines(docker=False, podman=True), platform="darwin")
    assert caught.value.message == "no container runtime available: Docker not found"


def test_auto_other_platform_names_it() -> None:
    _, reason = resolve(runner=engines(docker=True, podman=True), platform="freebsd14")
    assert reason == "auto: Docker on freebsd14"


# --- ALCA_RUNTIME ----------------------------------------------------------------------------


def test_env_beats_auto() -> None:
    runtime, reason = resolve(
        runner=engines(docker=True, podman=True), env={"ALCA_RUNTIME": "docker"}
    )
    assert isinstance(runtime, DockerRuntime)
    assert reason == "ALCA_RUNTIME=docker"


def test_env_engine_must_be_available() -> None:
    with pytest.raises(UnavailableError) as caught:
        resolve(runner=engines(docker=True, podman=False), env={"ALCA_RUNTIME": "podman"})
    assert caught.value.message == "Podman not available (ALCA_RUNTIME=podman)"


def test_config_beats_env() -> None:
    runtime, reason = resolve(
        "podman", runner=engines(docker=True, podman=True), env={"ALCA_RUNTIME": "docker"}
    )
    assert isinstance(runtime, PodmanRuntime)
    assert reason == "configured runtime=podman"


@pytest.mark.parametrize("value", ["", "auto"])
def test_env_auto_or_empty_is_auto(value: str) -> None:
    _, reason = resolve(runner=engines(docker=True, podman=True), env={"ALCA_RUNTIME": value})
    assert reason == "auto: Podman found on Linux"


def test_env_bad_value() -> None:
    with pytest.raises(UsageError) as caught:
        resolve(runner=engines(docker=True, podman=True), env={"ALCA_RUNTIME": "Docker"})
    assert caught.value.message == (
        'ALCA_RUNTIME="Docker" is not a runtime: expected docker, podman or auto'
    )


def test_env_is_read_from_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALCA_RUNTIME", "docker")
    runtime, reason = resolve_runtime(platform="linux", runner=engines(docker=True, podman=True))
    assert (runtime.executable, reason) == ("docker", "ALCA_RUNTIME=docker")


# --- caching ---------------------------------------------------------------------------------


def test_detection_is_cached_per_runner() -> None:
    runner = engines(docker=True, podman=True)
    first = resolve(runner=runner)
    second = resolve(runner=runner)
    assert first[0] is second[0]
    assert runner.calls == [PODMAN_PROBE]
    other = engines(docker=True, podman=True)
    assert resolve(runner=other)[0] is not first[0]
    assert other.calls == [PODMAN_PROBE]


def test_cache_key_includes_configuration_and_env() -> None:
    runner = engines(docker=True, podman=True)
    assert resolve(runner=runner)[1] == "auto: Podman found on Linux"
    assert resolve("docker", runner=runner)[1] == "configured runtime=docker"
    assert resolve(runner=runner, env={"ALCA_RUNTIME": "docker"})[1] == "ALCA_RUNTIME=docker"


def test_failures_are_not_cached() -> None:
    runner = engines(docker=False, podman=False)
    with pytest.raises(UnavailableError):
        resolve(runner=runner)
    with pytest.raises(UnavailableError):
        resolve(runner=runner)
    assert runner.calls.count(PODMAN_PROBE) == 2


def test_clear_cache() -> None:
    runner = engines(docker=True, podman=True)
    resolve(runner=runner)
    detect.clear_cache()
    resolve(runner=runner)
    assert runner.calls == [PODMAN_PROBE, PODMAN_PROBE]


# --- pure helpers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("OrbStack", True),
        ("OrbStack\n", True),
        ("orbstack", True),
        ("Docker Desktop", False),
        ("Debian GNU/Linux 12 (bookworm)", False),
        ("", False),
    ],
)
def test_is_orbstack(text: str, expected: bool) -> None:
    assert is_orbstack(text) is expected


def test_rootless_from_security_options() -> None:
    assert rootless_from_security_options('["name=rootless"]') is True
    assert rootless_from_security_options('["name=seccomp,profile=default"]') is False
    assert rootless_from_security_options('["name=seccomp,profile=rootless"]') is False
    with pytest.raises(AlcaError):
        rootless_from_security_options("template: info:1: bad")
