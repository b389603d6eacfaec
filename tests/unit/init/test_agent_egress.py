"""Every agent preset ships the `[network] egress` list its agent and its installs need, and
docs/agents.md lists each one (issue 15)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from alcatraz.config.netgrammar import parse_egress_rule, render_egress_rule
from alcatraz.errors import AlcaError
from alcatraz.init import agents, templates
from tests.fakes import project_app

DOCS = Path(__file__).resolve().parents[3] / "docs" / "agents.md"

#: What each preset's agent needs, beyond the template's own set-up (AGENT_EGRESS).
PROMISED: dict[str, tuple[str, ...]] = {
    "claude": (
        "api.anthropic.com",
        "claude.ai",
        "platform.claude.com",
        "statsig.anthropic.com",
        "sentry.io",
    ),
    "codex": ("api.openai.com", "chatgpt.com", "auth.openai.com"),
    "gemini": (
        "generativelanguage.googleapis.com",
        "cloudcode-pa.googleapis.com",
        "oauth2.googleapis.com",
    ),
    "aider": (
        "pypi.org",
        "files.pythonhosted.org",
        "api.openai.com",
        "api.anthropic.com",
        "generativelanguage.googleapis.com",
        "api.deepseek.com",
        "openrouter.ai",
    ),
    "opencode": (
        "models.dev",
        "api.anthropic.com",
        "api.openai.com",
        "generativelanguage.googleapis.com",
        "openrouter.ai",
    ),
}


def test_every_preset_has_an_egress_list() -> None:
    assert sorted(PROMISED) == agents.preset_names()


@pytest.mark.parametrize("name", sorted(PROMISED))
def test_the_preset_egress_is_the_template_set_up_then_the_agent(name: str) -> None:
    preset = agents.load_preset(name)
    assert preset.egress == PROMISED[name]
    entries = agents.egress_for(preset)
    assert entries == tuple(dict.fromkeys((*templates.AGENT_EGRESS, *PROMISED[name])))
    for entry in entries:
        assert render_egress_rule(parse_egress_rule(entry)) == entry


@pytest.mark.parametrize("name", sorted(PROMISED))
def test_docs_list_every_entry_of_every_preset(name: str) -> None:
    text = DOCS.read_text()
    row = re.search(rf"^\| `{name}` \| (.*)$", text.split("## Egress: what each preset")[1], re.M)
    assert row is not None, f"docs/agents.md has no egress row for {name}"
    for entry in PROMISED[name]:
        assert f"`{entry}`" in row.group(1), f"{entry} of {name} is not in its row"
    for entry in templates.AGENT_EGRESS:
        assert f"`{entry}`" in text


@pytest.mark.parametrize("name", sorted(PROMISED))
def test_the_written_config_holds_the_egress_list(tmp_path: Path, name: str) -> None:
    """Init writes the preset's egress list, and how to add to it."""
    app = project_app(tmp_path)
    template, _ = agents.template_for(agents.load_preset(name), app.environ)
    text = templates.render(template, schema_line="#:schema x")
    data = tomllib.loads(text)
    assert data["network"]["egress"] == list(agents.egress_for(agents.load_preset(name)))
    assert "alca net allow NAME" in text


@pytest.mark.parametrize(
    ("egress", "fragment"),
    [
        ('["API.example.com"]', "upper-case letters"),
        ('["api.example.com:0443"]', "leading zeros are not allowed"),
        ('"api.example.com"', "egress must be a list of strings"),
    ],
)
def test_a_preset_with_a_bad_egress_entry_is_rejected(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, egress: str, fragment: str
) -> None:
    folder = tmp_path / "presets"
    folder.mkdir()
    (folder / "bad.toml").write_text(
        f'label = "x"\ncommand = "x"\ninstall = "x"\nunrestricted = "x"\negress = {egress}\n'
    )
    monkeypatch.setattr(agents, "_files", lambda: {"bad": folder / "bad.toml"})
    with pytest.raises(AlcaError) as caught:
        agents.load_preset("bad")
    assert fragment in caught.value.message
