"""Fixtures for the lifecycle tests: projects whose containers are removed even on failure."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from alcatraz.runtime.cli_compat import CliRuntime
from tests.integration.lifecycle.helpers import Projects


@pytest.fixture
def projects(engine: CliRuntime) -> Iterator[Projects]:
    """`projects.new(...)` makes a project for `engine`; its containers go at the end."""
    made = Projects(engine.executable)
    try:
        yield made
    finally:
        made.cleanup()
