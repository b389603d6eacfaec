"""The import contracts in pyproject.toml hold, and each one fails on a deliberate violation.

A contract that names a module that no longer exists, or a layer list nothing reaches,
passes forever; so every contract is broken here on purpose, in a copy of the source tree,
and `lint-imports` must say so by the contract's name and the offending import.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(project: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` on `project` (its pyproject.toml and its src/alcatraz, nothing else)."""
    assert LINT_IMPORTS.is_file(), "lint-imports is missing: pip install -e '.[dev]'"
    env = {**os.environ, "PYTHONPATH": str(project / "src")}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """A copy of the project's contracts and package, free to break."""
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(
        REPO / "src" / "alcatraz",
        tmp_path / "src" / "alcatraz",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    return tmp_path


def test_the_tree_keeps_every_contract() -> None:
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_the_copy_is_what_gets_checked(copy: Path) -> None:
    """The unbroken copy passes, so each failure below comes from its one injected import."""
    result = lint_imports(copy)
    assert result.returncode == 0, result.stdout + result.stderr


# (module that gets the import, import line, contract that must break, text in the report)
VIOLATIONS = [
    (
        "config/merge.py",
        "from alcatraz import app",
        "network, runtime, sync and config never import the App BROKEN",
        "alcatraz.config.merge -> alcatraz.app",
    ),
    (
        "config/merge.py",
        "from alcatraz import proc",
        "config is pure: no effect layer, no init BROKEN",
        "alcatraz.config.merge -> alcatraz.proc",
    ),
    (
        "network/plan.py",
        "from alcatraz.sandbox import up",
        "Layers: each module imports only from the layers below it BROKEN",
        "alcatraz.network.plan -> alcatraz.sandbox",
    ),
    (
        "sandbox/plan.py",
        "from alcatraz import app",
        "The plans of up and down are pure: no engine, no files, no App BROKEN",
        "alcatraz.sandbox.plan -> alcatraz.app",
    ),
    (
        "sandbox/plan.py",
        "from alcatraz.runtime import base",
        "The plans of up and down are pure: no engine, no files, no App BROKEN",
        "alcatraz.sandbox.plan -> alcatraz.runtime.base",
    ),
    (
        "sandbox/enter.py",
        "from alcatraz.sandbox import project",
        "alca run reads the run-spec only: no engine layer, no App, no lifecycle BROKEN",
        "alcatraz.sandbox.enter -> alcatraz.sandbox.project",
    ),
    (
        "sandbox/guard.py",
        "from alcatraz.sandbox import up",
        "Inside the sandbox package: the executors on top, the pure plan at the bottom BROKEN",
        "alcatraz.sandbox.guard -> alcatraz.sandbox.up",
    ),
    (
        "runtime/docker.py",
        "from alcatraz import sync",
        "Layers: each module imports only from the layers below it BROKEN",
        "alcatraz.runtime.docker -> alcatraz.sync",
    ),
    (
        "init/templates.py",
        "from alcatraz import sandbox",
        "init and the sandbox lifecycle stay independent BROKEN",
        "alcatraz.init.templates -> alcatraz.sandbox",
    ),
    (
        "init/preset_url.py",
        "from alcatraz.init import presets",
        "No import cycles between sibling modules BROKEN",
        "No cycles are allowed in alcatraz.init",
    ),
]


@pytest.mark.parametrize(("module", "line", "contract", "detail"), VIOLATIONS)
def test_a_deliberate_violation_fails_the_check(
    copy: Path, module: str, line: str, contract: str, detail: str
) -> None:
    path = copy / "src" / "alcatraz" / module
    path.write_text(path.read_text(encoding="utf-8") + f"\n{line}  # injected\n")
    result = lint_imports(copy)
    assert result.returncode != 0, result.stdout
    assert contract in result.stdout, result.stdout
    assert detail in result.stdout, result.stdout


def test_a_new_top_level_module_needs_a_layer(copy: Path) -> None:
    (copy / "src" / "alcatraz" / "newcomer.py").write_text('"""Not in any layer yet."""\n')
    result = lint_imports(copy)
    assert result.returncode != 0, result.stdout
    assert "alcatraz.newcomer" in result.stdout, result.stdout


def test_an_ignore_that_no_longer_matches_fails(copy: Path) -> None:
    """An exemption whose import is gone must go too, so none can outlive its reason."""
    pyproject = copy / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    stale = '"alcatraz.config.merge -> alcatraz.proc"'
    if "ignore_imports = [" in text:
        text = text.replace("ignore_imports = [", f"ignore_imports = [\n  {stale},", 1)
    else:
        layers = 'id = "layers"\n'
        assert layers in text
        text = text.replace(layers, f"{layers}ignore_imports = [{stale}]\n")
    pyproject.write_text(text)
    result = lint_imports(copy)
    assert result.returncode != 0, result.stdout
    assert "alcatraz.config.merge -> alcatraz.proc" in result.stdout + result.stderr
