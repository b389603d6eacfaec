"""The Tier B lab exists once per session: `tests/conftest.py` registers its fixtures as a
plugin. A test module that also imports `lab_session_fixture` gets a second, module-level
`lab_session`, whose set-up sweeps the first lab's namespaces and servers, so every later
lab test errors (seen: 45 errors in one run)."""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
PATTERNS = ("import lab_session_fixture", "import lab_fixture")


def test_no_test_module_imports_the_lab_session_fixture_again() -> None:
    offenders = [
        str(path.relative_to(TESTS))
        for path in TESTS.rglob("test_*.py")
        if path != Path(__file__).resolve()
        and any(word in path.read_text(encoding="utf-8") for word in PATTERNS)
    ]
    assert offenders == [], f"use the root conftest's `lab_session` fixture: {offenders}"
