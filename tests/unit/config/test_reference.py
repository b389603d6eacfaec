"""docs/config-reference.md: generated from the JSON Schema, committed, and kept current."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from alcatraz.config.reference import REFERENCE_PATH, reference_text, render_reference
from alcatraz.config.schema import generate_schema

REPO = Path(__file__).resolve().parents[3]
COMMITTED = REPO / REFERENCE_PATH
FIX = "run `python scripts/gen-config-reference.py` and commit docs/config-reference.md"


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return generate_schema()


@pytest.fixture(scope="module")
def page() -> str:
    return reference_text()


def test_committed_reference_is_current(page: str) -> None:
    if not COMMITTED.is_file():
        pytest.fail(f"{REFERENCE_PATH} does not exist: {FIX}")
    if COMMITTED.read_text(encoding="utf-8") != page:
        pytest.fail(f"{REFERENCE_PATH} is out of date with the schema: {FIX}")


def test_generation_is_deterministic(page: str) -> None:
    assert reference_text() == page
    assert page.endswith("\n") and not page.endswith("\n\n")


def _rows(page: str) -> dict[str, list[list[str]]]:
    """Table rows (cells) under each `## ` heading."""
    found: dict[str, list[list[str]]] = {}
    heading = ""
    for line in page.splitlines():
        if line.startswith("## "):
            heading = line[3:]
            found[heading] = []
        elif line.startswith("| ") and heading and not line.startswith("| Key "):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            found[heading].append(cells)
    return found


def test_every_top_level_key_appears(schema: dict[str, Any], page: str) -> None:
    top = _rows(page)["Top-level keys"]
    assert [row[0] for row in top] == [f"`{key}`" for key in schema["properties"]]
    assert {"`image`", "`network`", "`hooks`", "`envs`"} <= {row[0] for row in top}


def test_every_nested_key_appears_with_type_and_description(
    schema: dict[str, Any], page: str
) -> None:
    rows = _rows(page)
    keys_on_page = {row[0] for table in rows.values() for row in table}
    for name, definition in schema["$defs"].items():
        for key in definition.get("properties", {}):
            assert f"`{key}`" in keys_on_page, f"{name}.{key} is missing"
    for heading, table in rows.items():
        for row in table:
            assert len(row) == 4, (heading, row)
            key, kind, default, description = row
            assert kind and default and description, (heading, row)


def test_nested_tables_have_sections_named_as_in_toml(page: str) -> None:
    headings = list(_rows(page))
    for expected in (
        "`[commands]`",
        "`[commands.up]`, `[commands.enter]`",
        "`[[mounts]]`",
        "`[resources]`",
        "`[envs.<NAME>]`",
        "`[network]`",
        "`[[network.ports]]`",
        "`[caps]`",
        "`[hooks]`",
    ):
        assert expected in headings


def test_links_point_at_existing_sections(page: str) -> None:
    def slug(heading: str) -> str:
        return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")

    anchors = {slug(h) for h in _rows(page)}
    for target in re.findall(r"\]\(#([^)]+)\)", page):
        assert target in anchors, target
    for target in re.findall(r"\]\(([^)#]+)\)", page):
        assert (COMMITTED.parent / target).exists(), target


def test_defaults_enums_and_required_keys_are_shown(page: str) -> None:
    rows = {(h, r[0]): r for h, table in _rows(page).items() for r in table}
    assert rows[("`[[network.ports]]`", "`protocol`")][1] == 'one of `"tcp"`, `"udp"`'
    assert rows[("`[[network.ports]]`", "`protocol`")][2] == '`"tcp"`'
    assert rows[("`[[network.ports]]`", "`port`")][2] == "**required**"
    assert rows[("`[[mounts]]`", "`readonly`")][2] == "`false`"
    assert rows[("`[[mounts]]`", "`exclude`")][2] == "`[]`"
    assert rows[("Top-level keys", "`runtime`")][1] == 'one of `"auto"`, `"docker"`, `"podman"`'


def test_markdown_in_descriptions_is_escaped(page: str) -> None:
    """`*`, `_`, brackets and `|` from the schema must not become emphasis, links or extra
    table columns (rendered with markdown-it, which rich already depends on)."""
    from markdown_it import MarkdownIt

    rows = {(h, r[0]): r for h, table in _rows(page).items() for r in table}
    lan = rows[("`[network]`", "`lan-access`")][3]
    assert "\\[tcp://\\|udp://\\|\\*://\\]" in lan
    html = MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(page)
    assert "<em>" not in html and "<del>" not in html
    assert re.findall(r"<strong>(.*?)</strong>", html) == ["required"] * 4
    for row in re.findall(r"<tr>(.*?)</tr>", html, re.S):
        assert len(re.findall(r"<t[dh][ >]", row)) == 4, row
    assert "[tcp://|udp://|*://]ADDR[:PORT|:*]" in html


def test_examples_are_rendered_when_the_schema_has_them() -> None:
    schema = {
        "title": "t",
        "type": "object",
        "properties": {
            "image": {"type": "string", "description": "The image.", "examples": ["alpine:3.21"]},
            "sub": {"$ref": "#/$defs/Sub"},
        },
        "$defs": {
            "Sub": {
                "description": "A table.",
                "type": "object",
                "properties": {"n": {"type": "integer", "default": 2, "description": "N."}},
            },
        },
    }
    text = render_reference(schema)
    assert '| `image` | string | — | The image. Examples: `"alpine:3.21"` |' in text
    assert "## `[sub]`" in text
    assert "| `n` | integer | `2` | N. |" in text


def test_script_check_mode_agrees(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen-config-reference.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    stale = tmp_path / REFERENCE_PATH
    stale.parent.mkdir(parents=True)
    stale.write_text("old\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "alcatraz.config.reference", "--root", str(tmp_path), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "out of date" in done.stderr


def test_generator_is_not_on_the_command_paths() -> None:
    """Only the script and this test import the generator."""
    for path in (REPO / "src" / "alcatraz").rglob("*.py"):
        if path.name == "reference.py":
            continue
        assert "config.reference" not in path.read_text(encoding="utf-8"), path
