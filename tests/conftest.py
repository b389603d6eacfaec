"""Test isolation: no test touches the real home, alcatraz dir or environment."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# One registration for the whole session: two copies of the lab fixtures would build two
# labs that tear each other down.
pytest_plugins = ["tests.security.scorecard", "tests.lab.fixtures"]


@pytest.fixture(autouse=True)
def _environ_stable() -> Iterator[None]:
    """Fail a test that leaves os.environ changed (set up before, torn down after monkeypatch)."""

    def current() -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}

    before = current()
    yield
    assert current() == before, "a test changed os.environ"


@pytest.fixture(autouse=True)
def _isolated_home(
    _environ_stable: None, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Point HOME and ALCA_HOME at fresh directories, so no test touches the real ones."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("ALCA_HOME", str(home / ".alcatraz"))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("ALCA_DEBUG", raising=False)


def tree_snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under `root` with its content (None for directories): to prove nothing changed."""
    snapshot: dict[str, bytes | None] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        snapshot[rel] = (
            None
            if path.is_dir() and not path.is_symlink()
            else (path.read_bytes() if path.is_file() else os.readlink(path).encode())
        )
    return snapshot
