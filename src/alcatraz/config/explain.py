"""Turning msgspec's validation errors into messages that name the file, key, line and fix.

Hints come from the model's field documentation (`fields.descriptions`), so the text a user
reads in an error is the text of the key reference.
"""

from __future__ import annotations

import difflib
import re
from typing import Any, Final

import msgspec

from alcatraz.config import model
from alcatraz.errors import ConfigError, quote

_TYPE_WORDS: Final = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "array": "an array",
    "object": "a table",
    "null": "nothing",
    "datetime": "a date-time",
    "date": "a date",
    "time": "a time",
}


def _words(types: str) -> str:
    names = [t.strip() for t in types.split("|") if t.strip() != "null"]
    return " or ".join(_TYPE_WORDS.get(n, n) for n in names)


def _key_of(msgspec_path: str) -> str:
    """`$.network.lan-access[0]` -> `network.lan-access[0]`."""
    return msgspec_path.removeprefix("$").removeprefix(".")


def _table_of(key: str) -> str:
    return re.sub(r"\[[^\]]*\]", "", key)


def find_line(text: str, name: str, table: str = "") -> int | None:
    """Best-effort line of key `name` (preferably inside [table]) or of a [name] header."""
    key = re.compile(
        r"(?m)(?:^[ \t]*|[{,][ \t]*)(?:[\w.\"'-]*\.)?[\"']?" + re.escape(name) + r"[\"']?[ \t]*="
    )
    header = re.compile(r"(?m)^[ \t]*\[\[?[ \t]*" + re.escape(name) + r"[ \t]*\]")
    start = 0
    if table:
        table_header = re.compile(
            r"(?m)^[ \t]*\[\[?[ \t]*" + re.escape(table.split(".")[0]) + r"[ \t]*\]\]?"
        )
        found = table_header.search(text)
        if found:
            start = found.end()
    for pattern in (key, header):
        match = pattern.search(text, start) or pattern.search(text)
        if match:
            return text[: match.start()].count("\n") + 1
    return None


def _doc_for(key: str) -> str | None:
    table = re.sub(r"^envs\.[^.]+", "envs.*", _table_of(key))
    docs = model.descriptions()
    while table:
        if table in docs:
            return docs[table]
        if "." not in table:
            return None
        table = table.rsplit(".", 1)[0]
    return None


def validation_error(
    error: msgspec.ValidationError, data: dict[str, Any], text: str, display: str
) -> ConfigError:
    """The `ConfigError` for a file that does not fit the model."""
    message = str(error)
    match = re.fullmatch(r"(?s)(?P<what>.*?)(?: - at `(?P<path>[^`]*)`)?", message)
    what = match.group("what") if match else message
    key = _env_key(_key_of((match.group("path") if match else None) or "$"), data)
    unknown = re.fullmatch(r"Object contains unknown field `(?P<name>[^`]*)`", what)
    if unknown:
        return _unknown_key(unknown.group("name"), key, text, display)
    missing = re.fullmatch(r"Object missing required field `(?P<name>[^`]*)`", what)
    if missing:
        name = missing.group("name")
        full_key = f"{key}.{name}" if key else name
        doc = _doc_for(full_key)
        return ConfigError(
            f"missing required key `{name}`",
            file=display,
            key=full_key,
            line=find_line(text, key.rsplit(".", 1)[-1].split("[")[0]) if key else None,
            hint=f"add `{name}`" + (f": {doc}" if doc else ""),
        )
    expected = re.fullmatch(r"Expected `(?P<want>[^`]*)`, got `(?P<got>[^`]*)`", what)
    doc = _doc_for(key)
    last = key.rsplit(".", 1)[-1].split("[")[0] if key else ""
    if expected:
        return ConfigError(
            f"expected {_words(expected.group('want'))}, got {_words(expected.group('got'))}",
            file=display,
            key=key or None,
            line=find_line(text, last) if last else None,
            hint=doc or "see docs/config.md for the expected form",
        )
    return ConfigError(
        what[:1].lower() + what[1:],
        file=display,
        key=key or None,
        line=find_line(text, last) if last else None,
        hint=doc or "see docs/config.md",
    )


def _env_key(key: str, data: dict[str, Any]) -> str:
    """msgspec writes `envs[...]` for a bad value: name the variable that does not fit."""
    if "[...]" in key and isinstance(data.get("envs"), dict):
        for name, value in data["envs"].items():
            try:
                msgspec.convert(value, model.EnvValue, strict=True)
            except msgspec.ValidationError:
                return key.replace("[...]", f".{name}", 1)
    return key


def _unknown_key(name: str, key: str, text: str, display: str) -> ConfigError:
    """An unknown key, with the closest known one or the table it belongs in."""
    table = re.sub(r"^envs\.[^.]+$", "envs", _table_of(key))
    known = model.known_keys().get(table, ())
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if not close:
        normalised = {k.replace("-", "").replace("_", "").lower(): k for k in known}
        candidate = normalised.get(name.replace("-", "").replace("_", "").lower())
        close = [candidate] if candidate else []
    # A key in the wrong table, e.g. lan-access at the top level.
    elsewhere = [t for t, keys in model.known_keys().items() if name in keys and t != table]
    where = (key if "[" in key else f"[{table}]") if table else "the top level"
    suggestion = f"; did you mean `{close[0]}`?" if close else ""
    if not close and elsewhere:
        suggestion = (
            f"; it belongs in [{elsewhere[0]}]" if elsewhere[0] else "; it belongs at the top level"
        )
    shown = name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else quote(name)
    full_key = f"{key}.{shown}" if key else shown
    return ConfigError(
        f"unknown key `{shown}` in {where} of {display}{suggestion}",
        file=display,
        key=full_key,
        line=find_line(text, name, table),
        hint="alcatraz rejects unknown keys so that a typo never switches a setting off; "
        "valid keys here: " + ", ".join(known),
    )
