"""JSON Schema of `.alca.toml`, generated from the msgspec model (never written by hand).

`schema/alca-config.schema.json` in the repository is this output; a test keeps it current.
Files written by `alca init` point editors at a copy in alcatraz's per-user directory
through a `#:schema` comment, refreshed on every `init` (`alcatraz.init.files` writes it),
so it always matches the installed version and works offline.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

SCHEMA_FILE_NAME: Final = "alca-config.schema.json"
SCHEMA_DRAFT: Final = "https://json-schema.org/draft/2020-12/schema"


def _without_null(node: Any) -> Any:
    """TOML has no null: drop the `None` that marks "not set" in the model."""
    if isinstance(node, list):
        return [_without_null(item) for item in node]
    if not isinstance(node, dict):
        return node
    cleaned = {k: _without_null(v) for k, v in node.items() if not (k == "default" and v is None)}
    members = cleaned.get("anyOf")
    if isinstance(members, list):
        members = [m for m in members if m != {"type": "null"}]
        if len(members) == 1:
            del cleaned["anyOf"]
            cleaned = {**cleaned, **members[0]}
        else:
            cleaned["anyOf"] = members
    return cleaned


def generate_schema() -> dict[str, Any]:
    """The schema as a dict, deterministic for a given model."""
    import msgspec

    from alcatraz.config.model import ConfigLayer

    schema: dict[str, Any] = msgspec.json.schema(ConfigLayer)
    ref = schema.pop("$ref", None)
    defs: dict[str, Any] = schema.get("$defs", {})
    root_name = ref.rsplit("/", 1)[-1] if ref else "ConfigLayer"
    root = defs.pop(root_name)
    document: dict[str, Any] = {
        "$schema": SCHEMA_DRAFT,
        "title": "alcatraz configuration (.alca.toml)",
        **{k: v for k, v in root.items() if k != "title"},
        "$defs": dict(sorted(defs.items())),
    }
    cleaned: dict[str, Any] = _without_null(document)
    return cleaned


def schema_text() -> str:
    return json.dumps(generate_schema(), indent=2, sort_keys=False) + "\n"


def schema_comment(home: Path) -> str:
    """The `#:schema` line for files that `alca init` writes."""
    return f"#:schema {(home / SCHEMA_FILE_NAME).as_uri()}"
