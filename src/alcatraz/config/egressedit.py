"""Adding entries to `[network] egress` in the text of a configuration file (`net allow`).

The file is the user's, with their comments and layout, so it is edited as text: the new
entries go into the existing array (one per line when the array spans lines, inline
otherwise), or a new `egress` line at the end of the `[network]` table, or a new table at
the end of the file. Pure: text in, text out. Every edit is proved by parsing the result:
it must hold exactly what the file held, plus the entries at the end of `network.egress`.
Whatever the edit cannot place that way (a quoted key, an inline `network = {...}`) is
refused, for the user to add by hand. Entries are checked by the caller (the egress
grammar), so they are plain ASCII.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Sequence
from typing import Any

_HEADER = re.compile(r"(?m)^[ \t]*(\[\[?)([^\]\n]*)\]")
_KEY = re.compile(r"(?m)^[ \t]*egress[ \t]*=[ \t]*\[")
_DOTTED_KEY = re.compile(r"(?m)^[ \t]*network[ \t]*\.[ \t]*egress[ \t]*=[ \t]*\[")


class EditError(ValueError):
    """The entries cannot be placed automatically; the message says what to add by hand."""


def add_egress_entries(text: str, entries: Sequence[str]) -> str:
    """`text` with `entries` appended to `network.egress` (created when the file has none)."""
    try:
        before = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise EditError(f"the file is not valid TOML ({error}): fix it first") from None
    code = _mask(text)
    array = _egress_array(code)
    if array is not None:
        edited = _into_array(text, code, array, entries)
    else:
        edited = _new_key(text, code, entries)
    _prove(before, edited, entries)
    return edited


def _mask(text: str) -> str:
    """`text` with string contents as `x` and comments as spaces (same length, same lines),
    so that brackets, `=` and `#` inside values are not taken for structure."""
    out = list(text)
    index, length = 0, len(text)
    while index < length:
        char = text[index]
        if char == "#":
            end = text.find("\n", index)
            end = length if end < 0 else end
            out[index:end] = " " * (end - index)
            index = end
        elif char in "\"'":
            end = _string_end(text, index)
            for position in range(index + 1, end - 1):
                if out[position] != "\n":
                    out[position] = "x"
            index = end
        else:
            index += 1
    return "".join(out)


def _string_end(text: str, start: int) -> int:
    """The index just past the string starting at `start` (basic or literal, one or three)."""
    quote = text[start]
    triple = text.startswith(quote * 3, start)
    delimiter = quote * 3 if triple else quote
    index = start + len(delimiter)
    while index < len(text):
        if quote == '"' and text[index] == "\\":
            index += 2
            continue
        if text.startswith(delimiter, index):
            end = index + len(delimiter)
            while triple and end < len(text) and text[end] == quote and end - index < 5:
                end += 1  # up to two quotes may close a multi-line string
            return end
        if text[index] == "\n" and not triple:
            return index
        index += 1
    return len(text)


def _tables(code: str, text: str) -> list[tuple[str, int, int]]:
    """(header name, start of its body, end of its body) for every table; "" is the root.
    An array of tables keeps its brackets in the name, so it never passes for `network`."""
    found: list[tuple[str, int, int]] = []
    start, name = 0, ""
    for match in _HEADER.finditer(code):
        found.append((name, start, match.start()))
        name = re.sub(r"[ \t]", "", text[match.start(2) : match.end(2)])
        name = f"[{name}]" if match.group(1) == "[[" else name
        start = match.end()
    found.append((name, start, len(code)))
    return found


def _egress_array(code: str) -> tuple[int, int] | None:
    """(index of `[`, index of its `]`) of the egress array, when the file has one."""
    for name, start, end in _tables(code, code):
        pattern = _KEY if name == "network" else _DOTTED_KEY if name == "" else None
        match = pattern.search(code, start, end) if pattern else None
        if match is not None:
            opening = match.end() - 1
            return opening, _closing(code, opening)
    return None


def _closing(code: str, opening: int) -> int:
    depth = 0
    for index in range(opening, len(code)):
        if code[index] == "[":
            depth += 1
        elif code[index] == "]":
            depth -= 1
            if depth == 0:
                return index
    raise EditError("the egress array is not closed")


def _quoted(entries: Sequence[str]) -> list[str]:
    return [json.dumps(entry) for entry in entries]


def _into_array(text: str, code: str, array: tuple[int, int], entries: Sequence[str]) -> str:
    opening, closing = array
    inside = code[opening + 1 : closing]
    last = len(inside.rstrip()) - 1  # the last significant character inside, or -1
    quoted = _quoted(entries)
    if "\n" not in inside or "\n" not in inside[last + 1 :]:  # inline, or `]` after an item
        separator = "" if last < 0 or inside[last] == "," else ","
        spacing = " " if last >= 0 else ""
        insertion = separator + spacing + ", ".join(quoted)
        at = opening + 1 + last + 1
        return text[:at] + insertion + text[at:]
    line_start = code.rfind("\n", 0, opening + 1 + last) + 1
    rest = code[line_start:]
    indent = rest[: len(rest) - len(rest.lstrip(" \t"))]
    if line_start <= opening:  # the last item shares the line of `[`
        indent = "  "
    comma = "" if last < 0 or inside[last] == "," else ","
    at = opening + 1 + last + 1
    line_end = code.find("\n", at)
    lines = "".join(f"\n{indent}{item}," for item in quoted)
    return text[:at] + comma + text[at:line_end] + lines + text[line_end:]


def _new_key(text: str, code: str, entries: Sequence[str]) -> str:
    line = "egress = [" + ", ".join(_quoted(entries)) + "]"
    for name, start, end in _tables(code, text):
        if name == "network":  # after its last line (past a comment on that line)
            at = start + len(code[start:end].rstrip())
            line_end = code.find("\n", at)
            at = len(code) if line_end < 0 else line_end
            return text[:at] + "\n" + line + text[at:]
    ending = "" if text.endswith("\n") or not text else "\n"
    return text + ending + "\n[network]\n" + line + "\n"


def _prove(before: dict[str, Any], edited: str, entries: Sequence[str]) -> None:
    """The edit changed nothing but the end of `network.egress`."""
    hint = "add them to [network] egress in .alca.toml yourself: " + ", ".join(_quoted(entries))
    try:
        after = tomllib.loads(edited)
    except tomllib.TOMLDecodeError:
        raise EditError(hint) from None
    network = before.get("network", {})
    if not isinstance(network, dict):
        raise EditError(hint)
    egress = network.get("egress", [])
    expected = {**before, "network": {**network, "egress": [*egress, *entries]}}
    if after != expected:
        raise EditError(hint)
