"""`extends`/`includes` glob syntax follows Go's `filepath.Match` grammar (the upstream tool)."""

from __future__ import annotations

import pytest

from alcatraz.config.globsyntax import glob_syntax_error


@pytest.mark.parametrize(
    "pattern",
    ["*.toml", "conf/[ab].toml", "[^a]x", "[[]", "\\[x", "a]", "[a-c]*", "p?.toml", "[\\]]"],
)
def test_valid_patterns_pass(pattern: str) -> None:
    assert glob_syntax_error(pattern) is None


@pytest.mark.parametrize(
    ("pattern", "fragment"),
    [
        ("[unclosed", "never closed"),
        ("conf/[ab.toml", "never closed"),
        ("[]", "is empty"),
        ("[^]", "is empty"),
        ("[z-a]", "reversed"),
        ("[a-]", "no upper end"),
        ("[-a]", "unescaped '-'"),
        ("*.toml\\", "lone"),
        ("[a\\", "ends with"),
    ],
)
def test_invalid_patterns_are_named(pattern: str, fragment: str) -> None:
    error = glob_syntax_error(pattern)
    assert error is not None and fragment in error
