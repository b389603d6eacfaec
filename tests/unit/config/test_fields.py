"""The field table (`alcatraz.config.fields`) agrees with the model, `Layer` and `Config`.

A new key is one table entry plus its model field and typed attributes; these tests fail
when one of the four is forgotten, and pin what the table derives (merge rules, the order
`config show` prints, the keys listed as "default").
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from alcatraz.config import model
from alcatraz.config.fields import BY_KEY, FIELDS, Merge, Presence, in_model_order
from alcatraz.config.layer import Layer, normalise
from alcatraz.config.load import Config, load_config
from alcatraz.config.merge import merge
from alcatraz.config.show import origins, render_text

NOT_MERGED = {"extends", "includes"}  # they name files; the loader follows them


def test_every_model_key_has_exactly_one_field() -> None:
    keys = [f.key for f in FIELDS]
    assert len(keys) == len(set(keys))
    assert set(model.model_keys()) - NOT_MERGED == set(keys)


def test_every_field_is_an_attribute_of_layer_and_config() -> None:
    layer_attrs = {f.name for f in dataclasses.fields(Layer)}
    config_attrs = {f.name for f in dataclasses.fields(Config)}
    for field in FIELDS:
        assert field.attr in layer_attrs, field.key
        assert field.attr in config_attrs, field.key
        assert (field.shown_attr or field.attr) in config_attrs, field.key


def test_every_field_is_documented_in_the_model() -> None:
    for field in FIELDS:
        assert field.doc, f"{field.key} has no description in model.py"


def test_model_order_is_the_order_of_the_file() -> None:
    assert [f.key for f in in_model_order()] == [
        key for key in model.model_keys() if key not in NOT_MERGED
    ]
    assert model.model_keys()[:3] == ["extends", "includes", "image"]


def test_merge_rules_are_the_documented_ones() -> None:
    rules = {f.key: (f.merge, f.presence) for f in FIELDS}
    appended = {"workdir_protect", "workdir_unprotect", "mounts", "network.lan-access"}
    assert {k for k, (m, _) in rules.items() if m is Merge.APPEND} == appended
    assert {k for k, (m, _) in rules.items() if m is Merge.COMMAND} == {
        "commands.up",
        "commands.enter",
    }
    assert {k for k, (m, _) in rules.items() if m is Merge.PER_NAME} == {"envs"}
    assert rules["caps"] == (Merge.OVERRIDE, Presence.ENTRIES)
    assert rules["network.host-ca"] == (Merge.OVERRIDE, Presence.DEFINED)
    assert rules["network.ports"] == (Merge.OVERRIDE, Presence.NON_EMPTY)


def test_presence_decides_whether_an_override_counts() -> None:
    base = Layer(host_ca=True, workdir_exclude=("a",), origin={"network.host-ca": ("b",)})
    above = Layer(host_ca=False, workdir_exclude=(), origin={"network.host-ca": ("a",)})
    merged = merge(base, above)
    assert merged.host_ca is False  # false is a value
    assert merged.workdir_exclude == ("a",)  # an empty list is not
    assert merged.origin["network.host-ca"] == ("a",)


def test_normalise_records_origins_in_the_shape_of_each_rule(tmp_path: Path) -> None:
    raw = model.ConfigLayer(
        image="alpine:3.21",
        mounts=["/tmp:/data", "/opt:/opt"],
        envs={"FOO": "bar"},
        network=model.NetworkLayer(lan_access=["10.0.0.1:22"]),
    )
    layer = normalise(raw, file="f.toml", base_dir=tmp_path, environ={})
    assert set(layer.origin) == {
        "image",
        "mounts[0]",
        "mounts[1]",
        "envs.FOO",
        "network.lan-access[0]",
    }


def test_show_lists_defaults_and_prints_in_table_order(tmp_path: Path) -> None:
    (tmp_path / ".alca.toml").write_text('image = "alpine:3.21"\n', encoding="utf-8")
    config = load_config(tmp_path, environ={"HOME": str(tmp_path)}, cwd=tmp_path)
    listed = [k for k, v in origins(config).items() if v == "default" and "." not in k]
    unset = [f.key for f in FIELDS if f.default_origin and "." not in f.key and f.key != "image"]
    assert listed == unset  # the file sets only the image
    text = render_text(config)
    top = [f for f in FIELDS if not f.table and f.merge is not Merge.PER_NAME]
    positions = [text.index(f"\n{f.name} = ") for f in top if f"\n{f.name} = " in text]
    assert len(positions) == len(top) - 2  # all but the empty `mounts` and the unset `agent`
    assert positions == sorted(positions)
    assert text.index("\n[network]") < text.index("\n[envs]")
    assert BY_KEY["network.proxy"].optional and "proxy =" not in text
