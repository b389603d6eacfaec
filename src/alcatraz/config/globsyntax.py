"""The glob syntax of `extends`/`includes` entries, checked as the Go tool checks it.

Upstream globs these entries with Go's `filepath.Glob`, which rejects a malformed pattern
(`[unclosed`, `[]`, `[z-a]`, a trailing `\\`) with `ErrBadPattern`. Python's `glob` would
instead treat such a pattern as literal text and silently match nothing, so a typo would
quietly drop a layer of configuration. This module finds the first syntax error, following
Go's grammar for a character class:

    '[' [ '^' ] { character-range } ']'     (must be non-empty)
    character-range: c | '\\' c | lo '-' hi  (c != '\\', '-', ']'; lo <= hi)
"""

from __future__ import annotations


def _class_char(pattern: str, index: int) -> tuple[str, int] | None:
    """The character of a class at `index` (after an escape) and the next index, or None."""
    if index >= len(pattern) or pattern[index] in "-]":
        return None
    if pattern[index] == "\\":
        if index + 1 >= len(pattern):
            return None
        return pattern[index + 1], index + 2
    return pattern[index], index + 1


def _class_end(pattern: str, start: int) -> int | str:
    """Index after the `]` closing the class opened at `start`, or what is wrong with it."""
    index = start + 1
    if index < len(pattern) and pattern[index] == "^":
        index += 1
    ranges = 0
    while True:
        if index >= len(pattern):
            return "a character class '[' is never closed by ']'"
        if pattern[index] == "]":
            return index + 1 if ranges else "a character class '[]' is empty"
        low = _class_char(pattern, index)
        if low is None:
            return "a character class holds an unescaped '-' or ends with '\\'"
        index = low[1]
        if index < len(pattern) and pattern[index] == "-":
            high = _class_char(pattern, index + 1)
            if high is None:
                return "a character range has no upper end"
            if high[0] < low[0]:
                return f"the character range {low[0]}-{high[0]} is reversed"
            index = high[1]
        ranges += 1


def glob_syntax_error(pattern: str) -> str | None:
    """What makes `pattern` an invalid glob for the Go tool, or None when it is valid."""
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            if index + 1 >= len(pattern):
                return "the pattern ends with a lone '\\'"
            index += 2
        elif char == "[":
            end = _class_end(pattern, index)
            if isinstance(end, str):
                return end
            index = end
        else:
            index += 1
    return None
