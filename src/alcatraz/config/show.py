"""Render the effective configuration, each value with the file it came from.

Pure: `alca config show` prints what these return. What each key looks like, and in which
order the text lists it, is the field table's (`alcatraz.config.fields`).
"""

from __future__ import annotations

import json
from typing import Any

from alcatraz.config.fields import FIELDS, Field, Merge, in_model_order
from alcatraz.config.load import Config

DEFAULT = "default"


def _shown(config: Config, field: Field) -> Any:
    return field.shown(getattr(config, field.shown_attr or field.attr))


def document(config: Config) -> dict[str, Any]:
    """The effective configuration in `.alca.toml` shape (JSON-friendly)."""
    doc: dict[str, Any] = {}
    for field in in_model_order():
        value = _shown(config, field)
        table = doc.setdefault(field.table, {}) if field.table else doc
        if value or not field.optional or (field.merge is Merge.UNION and value is not None):
            table[field.name] = value
    return doc


def origins(config: Config) -> dict[str, str]:
    """Key path -> where its value came from ("default" when no file set it)."""
    result: dict[str, str] = {}
    for field in FIELDS:
        if field.merge is Merge.PER_NAME:
            result.update({f"{field.key}.{name}": DEFAULT for name in getattr(config, field.attr)})
        elif field.default_origin:
            result[field.key] = DEFAULT
    result.update({key: ", ".join(files) for key, files in config.origin.items()})
    return result


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(type(value))


def _key(name: str) -> str:
    bare = name.replace("_", "").replace("-", "").isalnum() and name.isascii()
    return name if bare else json.dumps(name)


def _field_lines(config: Config, field: Field) -> list[str]:
    """The lines of one key, each value followed by the file it came from."""

    def source(key: str) -> str:
        files = config.origin.get(key)
        return ", ".join(files) if files else DEFAULT

    value = _shown(config, field)
    lines = [f"# {field.note}"] if field.note else []
    if field.merge is Merge.PER_NAME:
        for name, item in value.items():
            lines.append(f"{_key(name)} = {_toml_value(item)}  # {source(f'{field.key}.{name}')}")
    elif field.merge is Merge.UNION and value is None:
        if field.when_absent:
            lines.append(f"# {field.when_absent}")
    elif field.merge is Merge.UNION and not value:
        lines.append(f"{_key(field.name)} = []  # {source(field.key)}")
    elif field.merge is Merge.APPEND and not value:
        if field.when_empty:
            lines.append(f"{_key(field.name)} = []  # {field.when_empty}")
    elif field.merge.appends:
        lines.append(f"{_key(field.name)} = [")
        for i, item in enumerate(value):
            lines.append(f"  {_toml_value(item)},  # {source(f'{field.key}[{i}]')}")
        lines.append("]")
    elif value or not field.optional:
        lines.append(f"{_key(field.name)} = {_toml_value(value)}  # {source(field.key)}")
    return lines


def render_text(config: Config) -> str:
    """TOML text of the effective config with `# from <file>` comments."""
    lines = [
        f"# Effective configuration of {config.project_root}",
        "# Files, in load order: " + ", ".join(str(f) for f in config.files),
        "",
    ]
    tables: dict[str, list[str]] = {}
    for field in FIELDS:
        table = field.key if field.merge is Merge.PER_NAME else field.table
        if table:
            tables.setdefault(table, []).extend(_field_lines(config, field))
        else:
            lines.extend(_field_lines(config, field))
    for table, body in tables.items():
        if body:
            lines += ["", f"[{table}]", *body]
    return "\n".join(lines) + "\n"
