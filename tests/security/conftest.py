"""Fixtures for the security tests, and the scorecard plugin when run on their own.

`engine` runs a test once per engine and skips, saying why, when the engine cannot be used
(the same probe as tests/integration). The scorecard (tests/security/scorecard.py) is
registered here unless the root conftest already loads it via `pytest_plugins`.
"""

from __future__ import annotations

import pytest

from tests.integration.conftest import engine_problem

SCORECARD = "tests.security.scorecard"


def pytest_configure(config: pytest.Config) -> None:
    if config.pluginmanager.get_plugin(SCORECARD) is None:
        config.pluginmanager.import_plugin(SCORECARD)


@pytest.fixture(
    scope="session",
    params=[
        pytest.param("docker", marks=pytest.mark.docker, id="docker"),
        pytest.param("podman", marks=pytest.mark.podman, id="podman"),
    ],
)
def engine(request: pytest.FixtureRequest) -> str:
    """The engine's executable name (Docker, then Podman), or the test is skipped."""
    name: str = request.param
    problem = engine_problem(name)
    if problem:
        pytest.skip(problem)
    return name


@pytest.fixture(scope="session")
def docker() -> str:
    """Docker only (for the tests that are too slow to repeat on Podman)."""
    problem = engine_problem("docker")
    if problem:
        pytest.skip(problem)
    return "docker"
