"""The pairwise merge of two layers (merge.py's table, reference §2.2), on `Layer` objects.

Example tests pin each rule; hypothesis tests check the laws the rules imply.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from alcatraz.config import model
from alcatraz.config.layer import Caps, Command, EnvVar, Layer, Mount, normalise
from alcatraz.config.merge import merge
from alcatraz.config.netgrammar import PortMapping

SCALARS = {
    "image": "image",
    "workdir": "workdir",
    "runtime": "runtime",
    "proxy": "network.proxy",
    "memory": "resources.memory",
    "cpus": "resources.cpus",
    "post_up": "hooks.post_up",
    "pre_down": "hooks.pre_down",
}
REPLACED = {"workdir_exclude": "workdir_exclude", "ports": "network.ports"}
APPENDED = {"mounts": "mounts", "lan_access": "network.lan-access"}
COMMANDS = {"up": "commands.up", "enter": "commands.enter"}
FIELDS = (*SCALARS, *REPLACED, *APPENDED, *COMMANDS, "envs", "caps")


def layer(file: str, **values: Any) -> Layer:
    """A Layer whose `origin` names `file` for every key it sets, as `normalise` does."""
    result = Layer(**values)
    origin: dict[str, tuple[str, ...]] = {}
    for name, key in {**SCALARS, **REPLACED, **COMMANDS}.items():
        if getattr(result, name) is not None:
            origin[key] = (file,)
    for name, key in APPENDED.items():
        for i in range(len(getattr(result, name))):
            origin[f"{key}[{i}]"] = (file,)
    for env in result.envs:
        origin[f"envs.{env}"] = (file,)
    if result.caps is not None:
        origin["caps"] = (file,)
    result.origin = origin
    return result


def mount(target: str, source: str = "/src") -> Mount:
    return Mount(source, target)


def port(number: int) -> PortMapping:
    return PortMapping(number, number, None, "tcp")


def canon(value: Any) -> Any:
    """A field value with every "not set" form (None, "", (), 0, empty caps/command) as None."""
    if isinstance(value, Command):
        return value if value.command else None
    if isinstance(value, Caps):
        return value if value.has_entries else None
    if isinstance(value, dict):
        return dict(value)
    return value or None


def values(result: Layer) -> dict[str, Any]:
    out = {name: canon(getattr(result, name)) for name in FIELDS}
    out["mounts"] = tuple(result.mounts)
    out["lan_access"] = tuple(result.lan_access)
    out["envs"] = dict(result.envs)
    return out


# --- scalars ---------------------------------------------------------------------------------


def test_scalar_overlay_wins_if_set() -> None:
    base = layer(
        "a", image="a", workdir="/a", runtime="docker", proxy="1.1.1.1:1", memory="1g", cpus=1.0
    )
    over = layer(
        "b", image="b", workdir="/b", runtime="podman", proxy="2.2.2.2:2", memory="2g", cpus=2.0
    )
    result = merge(base, over)
    assert (result.image, result.workdir, result.runtime) == ("b", "/b", "podman")
    assert (result.proxy, result.memory, result.cpus) == ("2.2.2.2:2", "2g", 2.0)
    for key in (
        "image",
        "workdir",
        "runtime",
        "network.proxy",
        "resources.memory",
        "resources.cpus",
    ):
        assert result.origin[key] == ("b",)


def test_scalar_empty_overlay_keeps_base() -> None:
    base = layer(
        "a", image="a", workdir="/a", runtime="docker", proxy="1.1.1.1:1", memory="1g", cpus=1.0
    )
    for over in (
        Layer(),
        layer("b", image="", workdir="", runtime="", proxy="", memory="", cpus=0.0),
    ):
        result = merge(base, over)
        assert (result.image, result.workdir, result.runtime) == ("a", "/a", "docker")
        assert (result.proxy, result.memory, result.cpus) == ("1.1.1.1:1", "1g", 1.0)
        assert result.origin["image"] == ("a",)
        assert result.origin["resources.cpus"] == ("a",)


def test_scalar_set_on_empty_base() -> None:
    result = merge(Layer(), layer("b", image="b"))
    assert result.image == "b"
    assert result.origin == {"image": ("b",)}


def test_resources_merge_per_field() -> None:
    result = merge(layer("a", memory="1g", cpus=4.0), layer("b", memory="2g"))
    assert (result.memory, result.cpus) == ("2g", 4.0)
    assert result.origin["resources.memory"] == ("b",)
    assert result.origin["resources.cpus"] == ("a",)
    result = merge(layer("a", memory="1g"), layer("b", cpus=0.5))
    assert (result.memory, result.cpus) == ("1g", 0.5)


def test_hooks_merge_per_field() -> None:
    result = merge(layer("a", post_up="a-up", pre_down="a-down"), layer("b", pre_down="b-down"))
    assert (result.post_up, result.pre_down) == ("a-up", "b-down")
    assert result.origin["hooks.post_up"] == ("a",)
    assert result.origin["hooks.pre_down"] == ("b",)
    result = merge(layer("a", post_up="a-up"), layer("b", post_up=""))
    assert result.post_up == "a-up"
    assert result.origin["hooks.post_up"] == ("a",)


# --- replaced lists --------------------------------------------------------------------------


def test_workdir_exclude_replaces_not_appends() -> None:
    result = merge(layer("a", workdir_exclude=("x", "y")), layer("b", workdir_exclude=("z",)))
    assert result.workdir_exclude == ("z",)
    assert result.origin["workdir_exclude"] == ("b",)


def test_workdir_exclude_empty_overlay_keeps_base() -> None:
    for over in (Layer(), layer("b", workdir_exclude=())):
        result = merge(layer("a", workdir_exclude=("x",)), over)
        assert result.workdir_exclude == ("x",)
        assert result.origin["workdir_exclude"] == ("a",)


def test_ports_replace_not_append() -> None:
    result = merge(layer("a", ports=(port(1), port(2))), layer("b", ports=(port(3),)))
    assert result.ports == (port(3),)
    assert result.origin["network.ports"] == ("b",)
    result = merge(layer("a", ports=(port(1),)), layer("b", ports=()))
    assert result.ports == (port(1),)
    assert result.origin["network.ports"] == ("a",)


# --- appended lists --------------------------------------------------------------------------


def test_mounts_append_without_dedup_and_renumber_origin() -> None:
    base = layer("a", mounts=(mount("/1"), mount("/2")))
    over = layer("b", mounts=(mount("/3"), mount("/1")))
    result = merge(base, over)
    assert result.mounts == (mount("/1"), mount("/2"), mount("/3"), mount("/1"))
    assert result.origin == {
        "mounts[0]": ("a",),
        "mounts[1]": ("a",),
        "mounts[2]": ("b",),
        "mounts[3]": ("b",),
    }


def test_lan_access_appends_and_renumbers_origin() -> None:
    result = merge(layer("a", lan_access=("10.0.0.1",)), layer("b", lan_access=("*", "10.0.0.1")))
    assert result.lan_access == ("10.0.0.1", "*", "10.0.0.1")
    assert result.origin == {
        "network.lan-access[0]": ("a",),
        "network.lan-access[1]": ("b",),
        "network.lan-access[2]": ("b",),
    }


def test_three_way_append_renumbering() -> None:
    result = merge(
        merge(layer("a", mounts=(mount("/a"),)), layer("b", mounts=(mount("/b1"), mount("/b2")))),
        layer("c", mounts=(mount("/c"),)),
    )
    assert [m.target for m in result.mounts] == ["/a", "/b1", "/b2", "/c"]
    assert [result.origin[f"mounts[{i}]"] for i in range(4)] == [("a",), ("b",), ("b",), ("c",)]


# --- envs ------------------------------------------------------------------------------------


def test_envs_merge_per_key() -> None:
    base = layer("a", envs={"A": EnvVar("1"), "B": EnvVar("2")})
    over = layer("b", envs={"B": EnvVar("${B}", True), "C": EnvVar("3")})
    result = merge(base, over)
    assert result.envs == {"A": EnvVar("1"), "B": EnvVar("${B}", True), "C": EnvVar("3")}
    assert result.origin == {"envs.A": ("a",), "envs.B": ("b",), "envs.C": ("b",)}


def test_envs_overlay_key_wins_even_with_empty_value() -> None:
    result = merge(layer("a", envs={"A": EnvVar("1")}), layer("b", envs={"A": EnvVar("")}))
    assert result.envs == {"A": EnvVar("")}


# --- caps ------------------------------------------------------------------------------------


def test_caps_replace_as_a_whole_if_entries() -> None:
    base = layer("a", caps=Caps(("ALL",), (*model.DEFAULT_CAPS, "NET_RAW")))
    over = layer("b", caps=Caps(("ALL",), (*model.DEFAULT_CAPS, "SYS_PTRACE")))
    result = merge(base, over)
    assert result.caps == over.caps  # NET_RAW is gone: no union
    assert result.origin["caps"] == ("b",)


def test_caps_without_entries_keep_base() -> None:
    base = layer("a", caps=Caps(("NET_RAW",), ()))
    for over in (Layer(), layer("b", caps=Caps((), ()))):
        result = merge(base, over)
        assert result.caps == Caps(("NET_RAW",), ())
        assert result.origin["caps"] == ("a",)


def test_caps_drop_only_overlay_replaces() -> None:
    result = merge(
        layer("a", caps=Caps(("ALL",), ("CHOWN",))), layer("b", caps=Caps(("MKNOD",), ()))
    )
    assert result.caps == Caps(("MKNOD",), ())


# --- commands --------------------------------------------------------------------------------


def test_command_empty_overlay_keeps_base() -> None:
    base = layer("a", up=Command("make"), enter=Command("nix develop -c"))
    for over in (Layer(), layer("b", up=Command(""), enter=Command("", append=True))):
        result = merge(base, over)
        assert result.up == Command("make")
        assert result.enter == Command("nix develop -c")
        assert result.origin["commands.up"] == ("a",)
        assert result.origin["commands.enter"] == ("a",)


def test_command_plain_overlay_replaces() -> None:
    result = merge(layer("a", up=Command("make")), layer("b", up=Command("just")))
    assert result.up == Command("just")
    assert result.origin["commands.up"] == ("b",)


def test_command_append_on_non_empty_base_joins_and_consumes_flag() -> None:
    result = merge(layer("a", up=Command("make")), layer("b", up=Command("test", append=True)))
    assert result.up == Command("make test", append=False)
    assert result.origin["commands.up"] == ("a", "b")


def test_command_append_on_append_base_uses_only_overlay_flag() -> None:
    result = merge(
        layer("a", enter=Command("x", append=True)), layer("b", enter=Command("y", append=True))
    )
    assert result.enter == Command("x y", append=False)


def test_command_append_on_empty_base_keeps_flag() -> None:
    for base in (Layer(), layer("a", up=Command(""))):
        result = merge(base, layer("b", up=Command("test", append=True)))
        assert result.up == Command("test", append=True)
        assert result.origin["commands.up"] == ("b",)


def test_command_flag_kept_is_used_by_a_later_merge() -> None:
    middle = merge(Layer(), layer("b", up=Command("b", append=True)))
    result = merge(layer("a", up=Command("a")), middle)
    assert result.up == Command("a b")


def test_command_plain_overlay_keeps_its_false_flag_over_append_base() -> None:
    result = merge(layer("a", up=Command("a", append=True)), layer("b", up=Command("b")))
    assert result.up == Command("b", append=False)


def test_commands_up_and_enter_independent() -> None:
    result = merge(
        layer("a", up=Command("u1"), enter=Command("e1")),
        layer("b", up=Command("u2", append=True)),
    )
    assert result.up == Command("u1 u2")
    assert result.enter == Command("e1")


def test_commands_merge_is_not_associative() -> None:
    """Reference §2.2 / AGD-034: A then (B append then C append) differs from ((A,B),C)."""
    a = layer("a", up=Command("a"))
    b = layer("b", up=Command("b", append=True))
    c = layer("c", up=Command("c", append=True))
    left = merge(merge(a, b), c)
    right = merge(a, merge(b, c))
    assert left.up == Command("a b c", append=False)
    assert right.up == Command("b c", append=False)  # B+C consumed the flag, so it replaces A
    assert left.origin["commands.up"] == ("a", "b", "c")
    assert right.origin["commands.up"] == ("b", "c")


# --- generic ---------------------------------------------------------------------------------


def test_merge_does_not_modify_inputs() -> None:
    base = layer("a", image="a", mounts=(mount("/a"),), envs={"A": EnvVar("1")}, up=Command("x"))
    over = layer(
        "b", image="b", mounts=(mount("/b"),), envs={"B": EnvVar("2")}, up=Command("y", True)
    )
    saved = copy.deepcopy((base, over))
    result = merge(base, over)
    assert (base, over) == saved
    result.envs["Z"] = EnvVar("z")
    result.origin["zz"] = ("z",)
    assert (base, over) == saved


def test_merge_of_two_empty_layers_is_empty() -> None:
    assert merge(Layer(), Layer()) == Layer()


def test_helper_origin_matches_normalise(tmp_path: Path) -> None:
    """The `layer()` helper above produces the origin keys `normalise` produces."""
    raw = model.ConfigLayer(
        image="a",
        workdir="/w",
        workdir_exclude=["x"],
        runtime="docker",
        commands=model.CommandsLayer(up="u", enter=model.CommandSpec(command="e", append=True)),
        mounts=["/s:/t", model.MountSpec(source="/s2", target="/t2")],
        resources=model.ResourcesLayer(memory="1g", cpus=2),
        envs={"A": "1", "B": model.EnvSpec(value="${B}", override_on_enter=True)},
        network=model.NetworkLayer(lan_access=["10.0.0.1", "*"], ports=["80"], proxy="10.0.0.2:1"),
        caps=["NET_RAW"],
        hooks=model.HooksLayer(post_up="p", pre_down="d"),
    )
    normal = normalise(raw, file="f.toml", base_dir=tmp_path, environ={})
    rebuilt = layer("f.toml", **{name: getattr(normal, name) for name in FIELDS})
    assert rebuilt == normal
    assert normal.up == Command("u")
    assert normal.enter == Command("e", append=True)
    assert normal.cpus == 2.0


# --- properties ------------------------------------------------------------------------------

_text = st.sampled_from(["", "a", "b", "c", "x y"])
_optional_text = st.none() | _text
_files = st.sampled_from(["a.toml", "b.toml", "c.toml", "d.toml"])
_command = st.none() | st.builds(Command, _text, st.booleans())
_mount = st.builds(Mount, st.sampled_from(["/s1", "/s2"]), st.sampled_from(["/t1", "/t2", "/t3"]))
_port = st.builds(port, st.integers(1, 4))
_caps = st.none() | st.builds(
    Caps,
    st.lists(st.sampled_from(["ALL", "NET_RAW"]), max_size=2).map(tuple),
    st.lists(st.sampled_from(["CHOWN", "KILL"]), max_size=2).map(tuple),
)
_envs = st.dictionaries(
    st.sampled_from(["A", "B", "C"]), st.builds(EnvVar, _text, st.booleans()), max_size=3
)


@st.composite
def layers(draw: st.DrawFn) -> Layer:
    return layer(
        draw(_files),
        image=draw(_optional_text),
        workdir=draw(_optional_text),
        workdir_exclude=draw(st.none() | st.lists(_text, max_size=2).map(tuple)),
        runtime=draw(_optional_text),
        up=draw(_command),
        enter=draw(_command),
        mounts=tuple(draw(st.lists(_mount, max_size=3))),
        memory=draw(_optional_text),
        cpus=draw(st.none() | st.sampled_from([0.0, 0.5, 2.0])),
        envs=draw(_envs),
        lan_access=tuple(draw(st.lists(_text, max_size=3))),
        ports=draw(st.none() | st.lists(_port, max_size=2).map(tuple)),
        proxy=draw(_optional_text),
        caps=draw(_caps),
        post_up=draw(_optional_text),
        pre_down=draw(_optional_text),
    )


def _set_origin(result: Layer) -> dict[str, tuple[str, ...]]:
    """`origin` restricted to keys whose value is set (what merge(Layer(), x) can keep)."""
    keep: dict[str, tuple[str, ...]] = {}
    for key, files in result.origin.items():
        name = next(
            (n for n, k in {**SCALARS, **REPLACED, **COMMANDS, "caps": "caps"}.items() if k == key),
            None,
        )
        if name is None or canon(getattr(result, name)) is not None:
            keep[key] = files
    return keep


PROPERTY = settings(max_examples=60, deadline=None)


@PROPERTY
@given(layers())
def test_empty_layer_is_an_identity_on_either_side(x: Layer) -> None:
    assert values(merge(Layer(), x)) == values(x)
    assert values(merge(x, Layer())) == values(x)
    assert merge(x, Layer()).origin == x.origin
    assert merge(Layer(), x).origin == _set_origin(x)


@PROPERTY
@given(layers(), layers())
def test_later_scalars_win(base: Layer, over: Layer) -> None:
    result = merge(base, over)
    for name, key in {**SCALARS, **REPLACED}.items():
        chosen = over if canon(getattr(over, name)) is not None else base
        assert canon(getattr(result, name)) == canon(getattr(chosen, name))
        if chosen is over:
            assert result.origin[key] == over.origin[key]
    chosen = over if canon(over.caps) is not None else base
    assert canon(result.caps) == canon(chosen.caps)


@PROPERTY
@given(layers(), layers())
def test_appended_lists_are_concatenations(base: Layer, over: Layer) -> None:
    result = merge(base, over)
    assert result.mounts == base.mounts + over.mounts
    assert result.lan_access == base.lan_access + over.lan_access
    for name, key in APPENDED.items():
        indexed = sorted(k for k in result.origin if k.startswith(key + "["))
        assert indexed == sorted(f"{key}[{i}]" for i in range(len(getattr(result, name))))
        files = [result.origin[f"{key}[{i}]"] for i in range(len(getattr(result, name)))]
        expected = [base.origin[f"{key}[{i}]"] for i in range(len(getattr(base, name)))]
        expected += [over.origin[f"{key}[{i}]"] for i in range(len(getattr(over, name)))]
        assert files == expected


@PROPERTY
@given(layers(), layers())
def test_envs_are_a_dict_union_with_overlay_priority(base: Layer, over: Layer) -> None:
    result = merge(base, over)
    assert result.envs == {**base.envs, **over.envs}
    for name in result.envs:
        source = over if name in over.envs else base
        assert result.origin[f"envs.{name}"] == source.origin[f"envs.{name}"]


@PROPERTY
@given(layers(), layers())
def test_merge_never_removes_a_set_value(base: Layer, over: Layer) -> None:
    result = merge(base, over)
    before, after = values(base), values(result)
    for name in FIELDS:
        if before[name] not in (None, (), {}):
            assert after[name] not in (None, (), {}), name
    assert set(base.envs) <= set(result.envs)
    assert result.mounts[: len(base.mounts)] == base.mounts
    assert result.lan_access[: len(base.lan_access)] == base.lan_access
    # Every key some file set still has a file behind it.
    assert set(_set_origin(base)) <= set(result.origin)


@PROPERTY
@given(layers(), layers())
def test_commands_follow_the_rule(base: Layer, over: Layer) -> None:
    result = merge(base, over)
    for name in COMMANDS:
        b, o, r = getattr(base, name), getattr(over, name), getattr(result, name)
        if o is None or not o.command:
            assert r == b
        elif o.append and b is not None and b.command:
            assert r == Command(f"{b.command} {o.command}", append=False)
        else:
            assert r == o


@PROPERTY
@given(layers(), layers(), layers())
def test_associative_apart_from_command_appends(a: Layer, b: Layer, c: Layer) -> None:
    left, right = values(merge(merge(a, b), c)), values(merge(a, merge(b, c)))
    for name in COMMANDS:
        if not any(getattr(x, name) is not None and getattr(x, name).append for x in (b, c)):
            continue
        del left[name], right[name]
    assert left == right


@PROPERTY
@given(layers(), layers())
def test_merge_is_pure(base: Layer, over: Layer) -> None:
    saved = copy.deepcopy((base, over))
    first = merge(base, over)
    assert (base, over) == saved
    assert merge(base, over) == first
