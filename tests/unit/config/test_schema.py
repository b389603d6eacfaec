"""The JSON Schema of `.alca.toml`: committed copy current, strict, documented, and agreeing
with the loader on example documents (checked with a tiny structural validator, since no
JSON Schema package is a dependency).
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from alcatraz.config import model
from alcatraz.config.load import load_config
from alcatraz.config.schema import SCHEMA_DRAFT, generate_schema, schema_text
from alcatraz.errors import ConfigError

REPO = Path(__file__).resolve().parents[3]
COMMITTED = REPO / "schema" / "alca-config.schema.json"


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return json.loads(schema_text())


# --- a tiny validator: the keywords the generated schema uses ------------------------------------

_TYPES = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
}


def _type_ok(value: Any, name: str) -> bool:
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if name == "null":
        return value is None
    return isinstance(value, _TYPES[name])


def errors(node: dict[str, Any], value: Any, root: dict[str, Any], path: str = "$") -> list[str]:
    """Structural JSON Schema check: $ref, type, enum, anyOf, properties, required,
    additionalProperties, items. Returns one message per problem."""
    handled = {
        "$ref", "type", "enum", "anyOf", "properties", "required", "additionalProperties",
        "items", "description", "title", "default", "$schema", "$defs",
    }  # fmt: skip
    unknown = set(node) - handled
    assert not unknown, f"validator does not know keywords {unknown} at {path}"
    found: list[str] = []
    if "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/$defs/"), ref
        found += errors(root["$defs"][ref.rsplit("/", 1)[-1]], value, root, path)
    if "type" in node:
        names = node["type"] if isinstance(node["type"], list) else [node["type"]]
        if not any(_type_ok(value, n) for n in names):
            return [f"{path}: expected {node['type']}, got {type(value).__name__}"]
    if "enum" in node and value not in node["enum"]:
        found.append(f"{path}: {value!r} not in {node['enum']}")
    if "anyOf" in node and all(errors(member, value, root, path) for member in node["anyOf"]):
        found.append(f"{path}: matches none of anyOf")
    if isinstance(value, dict):
        properties = node.get("properties", {})
        for name in node.get("required", []):
            if name not in value:
                found.append(f"{path}: missing required {name!r}")
        extra = node.get("additionalProperties", True)
        for name, item in value.items():
            if name in properties:
                found += errors(properties[name], item, root, f"{path}.{name}")
            elif extra is False:
                found.append(f"{path}: unknown property {name!r}")
            elif isinstance(extra, dict):
                found += errors(extra, item, root, f"{path}.{name}")
    if isinstance(value, list) and "items" in node:
        for i, item in enumerate(value):
            found += errors(node["items"], item, root, f"{path}[{i}]")
    return found


def validate(schema: dict[str, Any], toml_text: str) -> list[str]:
    return errors(schema, tomllib.loads(toml_text), schema)


# --- the committed file ----------------------------------------------------------------------


def test_committed_schema_is_current() -> None:
    if not COMMITTED.is_file():
        pytest.fail(
            f"{COMMITTED.relative_to(REPO)} does not exist: "
            "run `alca config schema > schema/alca-config.schema.json` and commit it"
        )
    if COMMITTED.read_text(encoding="utf-8") != schema_text():
        pytest.fail(
            f"{COMMITTED.relative_to(REPO)} is out of date with the model: "
            "run `alca config schema > schema/alca-config.schema.json` and commit it"
        )


# --- shape -----------------------------------------------------------------------------------


def test_schema_text_is_deterministic_json(schema: dict[str, Any]) -> None:
    text = schema_text()
    assert text == schema_text()
    assert text.endswith("}\n")
    assert json.loads(text) == generate_schema()


def test_schema_header(schema: dict[str, Any]) -> None:
    assert schema["$schema"] == SCHEMA_DRAFT == "https://json-schema.org/draft/2020-12/schema"
    assert schema["type"] == "object"
    assert schema["title"]
    assert schema["description"]
    assert "$ref" not in schema  # the root is inlined, so editors see the properties directly


def test_schema_has_no_null(schema: dict[str, Any]) -> None:
    """TOML has no null: "not set" must not leak into the schema."""
    text = json.dumps(schema)
    assert '"null"' not in text
    assert '"default": null' not in text


def test_root_properties_are_the_model_fields(schema: dict[str, Any]) -> None:
    assert list(schema["properties"]) == list(model.known_keys()[""])
    assert set(schema["properties"]) == {
        "extends", "includes", "image", "agent", "workdir", "workdir_exclude", "workdir_protect",
        "workdir_unprotect", "runtime", "commands", "mounts", "resources", "envs", "network",
        "caps", "hooks",
    }  # fmt: skip


def test_every_table_matches_known_keys(schema: dict[str, Any]) -> None:
    defs = schema["$defs"]
    names = {
        "commands": "CommandsLayer",
        "resources": "ResourcesLayer",
        "network": "NetworkLayer",
        "hooks": "HooksLayer",
        "caps": "CapsSpec",
        "mounts": "MountSpec",
        "envs": "EnvSpec",
        "network.ports": "PortSpec",
        "commands.up": "CommandSpec",
    }
    known = model.known_keys()
    for table, definition in names.items():
        assert list(defs[definition]["properties"]) == list(known[table]), table


def test_unknown_keys_rejected_everywhere(schema: dict[str, Any]) -> None:
    assert schema["additionalProperties"] is False
    assert schema["$defs"]["NetworkLayer"]["additionalProperties"] is False
    for name, definition in schema["$defs"].items():
        assert definition["additionalProperties"] is False, name


def test_runtime_enum(schema: dict[str, Any]) -> None:
    assert schema["properties"]["runtime"]["enum"] == ["auto", "docker", "podman"]


def test_network_uses_toml_key_names(schema: dict[str, Any]) -> None:
    assert "lan-access" in schema["$defs"]["NetworkLayer"]["properties"]
    assert {"hostPort", "hostIp"} <= set(schema["$defs"]["PortSpec"]["properties"])


def _properties(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = [(f"root.{k}", v) for k, v in schema["properties"].items()]
    for name, definition in schema["$defs"].items():
        found += [(f"{name}.{k}", v) for k, v in definition.get("properties", {}).items()]
    return found


def test_every_property_has_a_description(schema: dict[str, Any]) -> None:
    """Directly, or (for a table) through the definition its `$ref` points to."""
    missing = []
    for where, node in _properties(schema):
        description = node.get("description")
        if not description and "$ref" in node:
            description = schema["$defs"][node["$ref"].rsplit("/", 1)[-1]].get("description")
        if not description or len(description) < 10:
            missing.append(where)
    assert not missing, f"properties without a description: {missing}"
    for name, definition in schema["$defs"].items():
        assert definition.get("description"), name


# --- example documents: schema and loader agree ----------------------------------------------

VALID = {
    "minimal": 'image = "alpine:3.21"\n',
    "template": (
        'image = "nixos/nix"\n'
        'includes = ["./.alca.*.toml"]\n'
        'workdir = "/workspace"\n'
        "[commands]\n"
        'up = "nix-channel --update"\n'
        'enter = { command = "nix develop -c", append = false }\n'
        "[network]\n"
        "lan-access = []\n"
    ),
    "everything": (
        'image = "python:3.13"\n'
        "extends = []\n"
        'workdir = "/src"\n'
        'workdir_exclude = ["**/.env"]\n'
        'runtime = "podman"\n'
        'mounts = ["/data:/data:ro",\n'
        '  { source = "/c", target = "/c", readonly = true, exclude = ["x"] }]\n'
        'caps = ["NET_RAW"]\n'
        "[resources]\n"
        'memory = "4g"\n'
        "cpus = 1.5\n"
        "[envs]\n"
        'A = "1"\n'
        'B = { value = "${B}", override_on_enter = true }\n'
        "[network]\n"
        'lan-access = ["*"]\n'
        'ports = ["8080:80",\n'
        '  { port = 53, hostPort = 5353, hostIp = "127.0.0.1", protocol = "udp" }]\n'
        'proxy = "${alca:HOST_IP}:3128"\n'
        "[hooks]\n"
        'post_up = "echo up"\n'
        'pre_down = "echo down"\n'
    ),
    "caps table": 'image = "a"\n[caps]\ndrop = ["ALL"]\nadd = ["CHOWN"]\n',
    "integer cpus": 'image = "a"\n[resources]\ncpus = 2\n',
}

INVALID = {
    "unknown root key": 'image = "a"\nimagee = "b"\n',
    "unknown network key": 'image = "a"\n[network]\nlan_access = []\n',
    "unknown nested key": 'image = "a"\n[hooks]\npost_down = "x"\n',
    "runtime typo": 'image = "a"\nruntime = "dockr"\n',
    "mount table without target": 'image = "a"\nmounts = [{ source = "/x" }]\n',
    "mount number": 'image = "a"\nmounts = [1]\n',
    "cpus string": 'image = "a"\n[resources]\ncpus = "2"\n',
    "env number": 'image = "a"\n[envs]\nA = 1\n',
    "env table without value": 'image = "a"\n[envs]\nA = { override_on_enter = true }\n',
    "port protocol": 'image = "a"\n[network]\nports = [{ port = 1, protocol = "sctp" }]\n',
    "caps string": 'image = "a"\ncaps = "NET_RAW"\n',
    "commands list": 'image = "a"\n[commands]\nup = ["make"]\n',
    "extends string": 'image = "a"\nextends = "b.toml"\n',
}


@pytest.mark.parametrize("name", list(VALID))
def test_valid_examples(schema: dict[str, Any], tmp_path: Path, name: str) -> None:
    assert validate(schema, VALID[name]) == []
    (tmp_path / ".alca.toml").write_text(VALID[name], encoding="utf-8")
    load_config(tmp_path, environ={"B": "x"}, cwd=tmp_path)  # the loader accepts it too


@pytest.mark.parametrize("name", list(INVALID))
def test_invalid_examples(schema: dict[str, Any], tmp_path: Path, name: str) -> None:
    assert validate(schema, INVALID[name]), "the schema should reject this"
    (tmp_path / ".alca.toml").write_text(INVALID[name], encoding="utf-8")
    with pytest.raises(ConfigError):
        load_config(tmp_path, environ={}, cwd=tmp_path)


def test_validator_reports_where(schema: dict[str, Any]) -> None:
    problems = validate(schema, INVALID["unknown network key"])
    assert problems == ["$.network: unknown property 'lan_access'"]
