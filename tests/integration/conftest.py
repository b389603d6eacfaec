"""Fixtures for tests against real engines: which engines are usable, unique names, cleanup.

`engine` runs a test once per engine (marked `docker` / `podman`) and skips, saying why,
when that engine is missing, not answering, lacks the test image, or cannot run a container.
Containers are only ever removed by the unique names the tests created, never by pattern.
"""

from __future__ import annotations

import functools
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import alcatraz
from alcatraz.errors import AlcaError
from alcatraz.proc import SubprocessRunner
from alcatraz.runtime.cli_compat import CliRuntime
from alcatraz.runtime.docker import DockerRuntime
from alcatraz.runtime.podman import PodmanRuntime

TEST_IMAGE = "alpine:3.21"
"""A local image in both engines (a busybox rootfs tagged like this by setup-test-env.sh)."""

SETUP_HINT = "run `bash scripts/setup-test-env.sh` as root"

_INIT_CANDIDATES = ("/usr/bin/tini-static", "/usr/bin/tini", "/usr/bin/docker-init")


def podman_init_path() -> str | None:
    """An init for Podman's `--init` when its default, catatonit, is not installed.

    Podman 4.3 looks for /usr/libexec/podman/catatonit unless containers.conf sets
    `init_path`; tini (Docker's docker-init) works too. `ALCA_TEST_PODMAN_INIT_PATH`
    overrides the choice ("" = Podman's own setting).
    """
    if "ALCA_TEST_PODMAN_INIT_PATH" in os.environ:
        return os.environ["ALCA_TEST_PODMAN_INIT_PATH"] or None
    if Path("/usr/libexec/podman/catatonit").exists():
        return None
    return next((p for p in _INIT_CANDIDATES if Path(p).exists()), None)


def make_runtime(engine: str) -> CliRuntime:
    runner = SubprocessRunner()
    if engine == "docker":
        return DockerRuntime(runner)
    return PodmanRuntime(runner, init_path=podman_init_path())


@functools.cache
def engine_problem(engine: str) -> str | None:
    """Why `engine` cannot be used for tests, or None when it can (checked once per session)."""
    runtime = make_runtime(engine)
    if not runtime.available():
        return f"{engine} is not installed or not answering `{engine} version`; {SETUP_HINT}"
    try:
        if not runtime.image_exists(TEST_IMAGE):
            return f"{engine} has no local image {TEST_IMAGE} (there is no registry); {SETUP_HINT}"
    except AlcaError as exc:
        return f"{engine} image inspect failed: {exc.message}"
    probe = runtime.runner.run(
        [engine, "run", "--rm", "--pull=never", TEST_IMAGE, "true"], timeout=60
    )
    if not probe.ok:
        return f"`{engine} run --rm {TEST_IMAGE} true` fails: {probe.stderr.strip()}; {SETUP_HINT}"
    return None


@pytest.fixture(
    scope="session",
    params=[
        pytest.param("docker", marks=pytest.mark.docker, id="docker"),
        pytest.param("podman", marks=pytest.mark.podman, id="podman"),
    ],
)
def engine(request: pytest.FixtureRequest) -> CliRuntime:
    """A usable engine (Docker, then Podman), or the test is skipped with the reason."""
    name: str = request.param
    problem = engine_problem(name)
    if problem:
        pytest.skip(problem)
    return make_runtime(name)


class Names:
    """Hands out unique container names and removes exactly those containers at the end."""

    def __init__(self, runtime: CliRuntime, prefix: str = "alca-it") -> None:
        self.runtime = runtime
        self.prefix = f"{prefix}-{uuid.uuid4().hex[:8]}"
        self.made: list[str] = []

    def __call__(self, tag: str = "c") -> str:
        name = f"{self.prefix}-{tag}-{len(self.made)}"
        self.made.append(name)
        return name

    def cleanup(self) -> None:
        """Remove each container by its own name (one per call: Podman 4.3's `rm -f a b`
        removes nothing when one of them is missing)."""
        errors: list[str] = []
        for name in self.made:
            try:
                self.runtime.remove(name)
            except AlcaError as exc:
                errors.append(exc.message)
        self.made.clear()
        if errors:
            raise AssertionError("cleanup failed:\n" + "\n".join(errors))


@pytest.fixture
def container_name(engine: CliRuntime) -> Iterator[Names]:
    """`container_name("tag")` gives a fresh name; those containers are removed afterwards."""
    names = Names(engine)
    yield names
    names.cleanup()


# --- a private network namespace (nftables tests that never touch the host's ruleset) ---

SRC = str(Path(alcatraz.__file__).parent.parent)


@pytest.fixture
def netns() -> Iterator[str]:
    """A network namespace of the test's own, deleted after it (its nft tables with it)."""
    if os.geteuid() != 0:
        pytest.skip("needs root (a network namespace and nftables)")
    name = f"alcans-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


def in_ns(ns: str, argv: list[str], stdin: str | None = None) -> str:
    """`argv`'s stdout, run in namespace `ns` with this alcatraz on PYTHONPATH."""
    done = subprocess.run(
        ["ip", "netns", "exec", ns, *argv],
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": SRC},
    )
    return done.stdout
