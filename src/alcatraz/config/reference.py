"""`docs/config-reference.md`, rendered from the JSON Schema of `.alca.toml`.

The schema is itself generated from the msgspec model (`alcatraz.config.schema`), so the
model's docstrings and field descriptions are the single source: a key added to the model
shows up in the schema, then here. The closing section, how each key combines across
files, comes from the field table (`alcatraz.config.fields`).
`tests/unit/config/test_reference.py` keeps the committed page current; regenerate it
with `python scripts/gen-config-reference.py` (or `python -m alcatraz.config.reference`).

Only that script and the test import this module: nothing on the `alca` command paths does.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

#: Where the page lives, relative to the repository root.
REFERENCE_PATH: Final = Path("docs") / "config-reference.md"

_REF_PREFIX: Final = "#/$defs/"
_NOT_SET: Final = "—"


@dataclass
class _Table:
    """One table of the schema (a `$defs` entry) and every place it can be written."""

    name: str
    paths: list[str] = field(default_factory=list)


def _ref_name(node: Mapping[str, Any]) -> str | None:
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith(_REF_PREFIX):
        return ref[len(_REF_PREFIX) :]
    return None


def _header(path: str) -> str:
    """The TOML header that opens the table at `path` (`mounts[]` → `[[mounts]]`)."""
    if path.endswith("[]"):
        return f"[[{path[:-2]}]]"
    return f"[{path}]"


def _heading(table: _Table) -> str:
    return ", ".join(f"`{_header(p)}`" for p in table.paths)


def _slug(heading: str) -> str:
    """The anchor GitHub (and most Markdown renderers) derive from a heading's text."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


_CODE_SPAN: Final = re.compile(r"(`+)(.+?)\1")
_MARKUP: Final = re.compile(r"([\\*_\[\]<>~|])")


def _prose(text: str) -> str:
    """Schema text as Markdown: one line; outside code spans, characters that Markdown
    would read as markup (`*`, `_`, brackets, ...) are escaped; pipes are escaped everywhere,
    so the text is also safe inside a table cell."""
    text = " ".join(text.split())
    out: list[str] = []
    last = 0
    for match in _CODE_SPAN.finditer(text):
        out.append(_MARKUP.sub(r"\\\1", text[last : match.start()]))
        out.append(match.group(0).replace("|", "\\|"))
        last = match.end()
    out.append(_MARKUP.sub(r"\\\1", text[last:]))
    return "".join(out)


def _cell(text: str) -> str:
    """Generated Markdown (already escaped) safe inside a table cell: one line, pipes
    inside code spans escaped."""
    return " ".join(text.split())


def _toml_value(value: Any) -> str:
    """A schema value (default, example, enum member) written as TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        items = ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + items + " }" if items else "{}"
    return str(value)


def _code(text: str) -> str:
    """Inline code, with a fence long enough for any backticks inside."""
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


class _Renderer:
    def __init__(self, schema: Mapping[str, Any]) -> None:
        self.schema = schema
        self.defs: Mapping[str, Any] = schema.get("$defs", {})
        self.tables: dict[str, _Table] = {}
        self._discover(schema, "")

    # -- discovery: which table can be written where, in the order a reader meets them ----

    def _discover(self, node: Mapping[str, Any], path: str) -> None:
        for key, child in node.get("properties", {}).items():
            self._discover_value(child, f"{path}.{key}" if path else key)

    def _discover_value(self, node: Mapping[str, Any], path: str) -> None:
        name = _ref_name(node)
        if name is not None:
            table = self.tables.get(name)
            first = table is None
            if table is None:
                table = self.tables[name] = _Table(name)
            if path not in table.paths:
                table.paths.append(path)
            if first:
                self._discover(self.defs[name], path)
            return
        for member in node.get("anyOf", ()):
            self._discover_value(member, path)
        items = node.get("items")
        if isinstance(items, Mapping):
            self._discover_value(items, f"{path}[]")
        extra = node.get("additionalProperties")
        if isinstance(extra, Mapping):
            self._discover_value(extra, f"{path}.<NAME>")

    # -- one value's type, default and description ---------------------------------------

    def _link(self, name: str) -> str:
        table = self.tables.get(name)
        if table is None:
            return "table"
        return f"table ([{_heading(table)}](#{_slug(_heading(table))}))"

    def type_of(self, node: Mapping[str, Any]) -> str:
        name = _ref_name(node)
        if name is not None:
            return self._link(name)
        if "enum" in node:
            return "one of " + ", ".join(_code(_toml_value(v)) for v in node["enum"])
        if "anyOf" in node:
            return " or ".join(self.type_of(member) for member in node["anyOf"])
        kind = node.get("type")
        if isinstance(kind, list):
            return " or ".join(str(k) for k in kind)
        if kind == "array":
            items = node.get("items")
            return "array of " + (self.type_of(items) if isinstance(items, Mapping) else "values")
        if kind == "object":
            extra = node.get("additionalProperties")
            if isinstance(extra, Mapping):
                return "table of names to " + self.type_of(extra)
            return "table"
        return str(kind) if kind else "any value"

    def description_of(self, node: Mapping[str, Any]) -> str:
        parts: list[str] = []
        text = node.get("description")
        name = _ref_name(node)
        if not text and name is not None:
            text = self.defs.get(name, {}).get("description")
        if text:
            parts.append(_prose(text))
        items = node.get("items")
        if isinstance(items, Mapping) and items.get("description"):
            parts.append("Each item: " + _prose(items["description"]))
        extra = node.get("additionalProperties")
        if isinstance(extra, Mapping) and extra.get("description"):
            parts.append("Each value: " + _prose(extra["description"]))
        examples = node.get("examples")
        if isinstance(examples, list) and examples:
            parts.append("Examples: " + ", ".join(_code(_toml_value(e)) for e in examples))
        return " ".join(parts)

    def default_of(self, node: Mapping[str, Any], required: bool) -> str:
        if required:
            return "**required**"
        if "default" in node:
            return _code(_toml_value(node["default"]))
        return _NOT_SET

    def key_table(self, node: Mapping[str, Any], key_prefix: str = "") -> list[str]:
        required = set(node.get("required", ()))
        rows = ["| Key | Type | Default | Description |", "|---|---|---|---|"]
        for key, child in node.get("properties", {}).items():
            rows.append(
                "| "
                + " | ".join(
                    (
                        _code(key_prefix + key),
                        _cell(self.type_of(child)),
                        _cell(self.default_of(child, key in required)),
                        _cell(self.description_of(child)),
                    )
                )
                + " |"
            )
        return rows

    # -- the page ----------------------------------------------------------------------------

    def render(self) -> str:
        lines = [
            "# Configuration key reference",
            "",
            "<!-- Generated by scripts/gen-config-reference.py from the JSON Schema;"
            " do not edit by hand. -->",
            "",
        ]
        description = self.schema.get("description")
        if description:
            lines += [_prose(description), ""]
        lines += [
            "Every key, generated from the JSON Schema"
            " ([schema/alca-config.schema.json](../schema/alca-config.schema.json), also printed"
            " by `alca config schema`). How the values are used (the `network.lan-access`"
            " grammar, merging of `extends` and `includes`, errors and exit codes) is explained"
            " in [config.md](config.md).",
            "",
            f"Default {_NOT_SET} means the key is not set unless a file sets it; the description"
            " says what happens then. Unknown keys are errors, in every table.",
            "",
        ]
        lines += ["## Top-level keys", "", *self.key_table(self.schema), ""]
        for table in self.tables.values():
            definition = self.defs[table.name]
            heading = _heading(table)
            lines += [f"## {heading}", ""]
            if definition.get("description"):
                lines += [_prose(definition["description"]), ""]
            if any(path.endswith("[]") for path in table.paths):
                lines += [_written_as(table.paths), ""]
            lines += [*self.key_table(definition), ""]
        unreachable = [name for name in self.defs if name not in self.tables]
        for name in unreachable:  # not referenced from the root: still documented
            definition = self.defs[name]
            lines += [f"## {name}", ""]
            if definition.get("description"):
                lines += [_prose(definition["description"]), ""]
            lines += [*self.key_table(definition), ""]
        return "\n".join(lines).rstrip("\n") + "\n"


def _written_as(paths: Sequence[str]) -> str:
    """Where this table is used, e.g. "Applies to: `commands.up`, `commands.enter`."."""
    forms = [
        f"each item of {_code(p[:-2])} written as a table" if p.endswith("[]") else _code(p)
        for p in paths
    ]
    return "Applies to: " + ", ".join(forms) + "."


def render_reference(schema: Mapping[str, Any]) -> str:
    """The Markdown page for `schema` (a JSON Schema shaped like `generate_schema()`'s)."""
    return _Renderer(schema).render()


def merge_section() -> str:
    """How each key combines across files, from the field table (`alcatraz.config.fields`)."""
    from alcatraz.config.fields import FIELDS

    lines = [
        "## How files combine",
        "",
        "A file's `extends` are merged below it and its `includes` above it (see"
        " [config.md](config.md)). Going up that order, each key combines with the value"
        " below it as follows; `extends` and `includes` themselves are not merged.",
        "",
    ]
    lines += [f"- {_code(f.key)}: {_prose(f.rule)}." for f in FIELDS]
    return "\n".join(lines) + "\n"


def reference_text() -> str:
    """The page for the current model and field table."""
    from alcatraz.config.schema import generate_schema

    return render_reference(generate_schema()) + "\n" + merge_section()


def main(argv: Sequence[str] | None = None) -> int:
    """Write the page (default), print it (`--stdout`), or check it is current (`--check`)."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="gen-config-reference", description="Generate docs/config-reference.md"
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=Path(__file__).resolve().parents[3],
        help="repository root (default: the checkout this module is in)",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="exit 1 if the page is out of date")
    mode.add_argument("--stdout", action="store_true", help="print the page instead")
    args = parser.parse_args(argv)
    text = reference_text()
    target = args.root / REFERENCE_PATH
    if args.stdout:
        sys.stdout.write(text)
        return 0
    if args.check:
        current = target.read_text(encoding="utf-8") if target.is_file() else None
        if current != text:
            sys.stderr.write(f"{target} is out of date: run scripts/gen-config-reference.py\n")
            return 1
        return 0
    target.write_text(text, encoding="utf-8")
    sys.stdout.write(f"wrote {target}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
