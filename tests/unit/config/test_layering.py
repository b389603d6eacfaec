"""The file graph: `extends` and `includes` resolved by `load_config` (reference §2.2).

Priority: extends (right to left, so the first entry wins) < self < includes (left to
right, so the last wins); each referenced file has its own references resolved first.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from alcatraz.config.layer import Command, Mount
from alcatraz.config.load import MAX_DEPTH, Config, load_config
from alcatraz.errors import ConfigError


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def marker(name: str, extra: str = "") -> str:
    """A file body that says who it is: its own env var, a shared one, and a mount."""
    safe = name.replace(".", "_").replace("/", "_").replace("-", "_").upper()
    return (
        f'mounts = ["/src/{safe}:/m/{safe}"]\n'
        f"{extra}"
        "[network]\n"
        f'lan-access = ["10.0.0.{len(safe)}"]\n'
        "[envs]\n"
        f'WHO = "{name}"\n'
        f'SEEN_{safe} = "1"\n'
    )


def load(root: Path, environ: dict[str, str] | None = None) -> Config:
    return load_config(root, environ=environ if environ is not None else {}, cwd=root)


def load_error(root: Path, environ: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(root, environ)
    return info.value


def mount_order(config: Config) -> list[str]:
    return [m.target.removeprefix("/m/") for m in config.mounts]


# --- priority --------------------------------------------------------------------------------


def test_extends_first_entry_wins(tmp_path: Path) -> None:
    write(tmp_path / "b.toml", marker("b", 'image = "b"\nworkdir = "/b"\n'))
    write(tmp_path / "c.toml", marker("c", 'image = "c"\nworkdir = "/c"\nruntime = "docker"\n'))
    write(tmp_path / ".alca.toml", 'extends = ["b.toml", "c.toml"]\n')
    config = load(tmp_path)
    assert config.image == "b"
    assert config.workdir == "/b"
    assert config.runtime == "docker"  # only c sets it
    assert config.envs["WHO"].value == "b"
    assert mount_order(config) == ["C", "B"]  # folded right to left
    assert config.origin["image"] == ("b.toml",)
    assert config.origin["runtime"] == ("c.toml",)


def test_self_beats_every_extends(tmp_path: Path) -> None:
    write(tmp_path / "b.toml", marker("b", 'image = "b"\n'))
    write(tmp_path / ".alca.toml", marker("self", 'image = "self"\nextends = ["b.toml"]\n'))
    config = load(tmp_path)
    assert config.image == "self"
    assert config.envs["WHO"].value == "self"
    assert mount_order(config) == ["B", "SELF"]
    assert config.origin["envs.WHO"] == (".alca.toml",)
    assert config.origin["envs.SEEN_B"] == ("b.toml",)


def test_includes_last_entry_wins_and_beat_self(tmp_path: Path) -> None:
    write(tmp_path / "d.toml", marker("d", 'image = "d"\nworkdir = "/d"\n'))
    write(tmp_path / "e.toml", marker("e", 'image = "e"\n'))
    write(
        tmp_path / ".alca.toml", marker("self", 'image = "self"\nincludes = ["d.toml", "e.toml"]\n')
    )
    config = load(tmp_path)
    assert config.image == "e"
    assert config.workdir == "/d"
    assert config.envs["WHO"].value == "e"
    assert mount_order(config) == ["SELF", "D", "E"]
    assert config.origin["image"] == ("e.toml",)
    assert config.origin["workdir"] == ("d.toml",)


def test_overall_priority_extends_self_includes(tmp_path: Path) -> None:
    write(
        tmp_path / "x1.toml",
        marker("x1", 'image = "x1"\n[hooks]\npost_up = "x1"\npre_down = "x1"\n'),
    )
    write(tmp_path / "x2.toml", marker("x2", '[resources]\nmemory = "1g"\ncpus = 1\n'))
    write(tmp_path / "i1.toml", marker("i1", "[resources]\ncpus = 3\n"))
    write(tmp_path / "i2.toml", marker("i2", '[hooks]\npre_down = "i2"\n'))
    write(
        tmp_path / ".alca.toml",
        'extends = ["x1.toml", "x2.toml"]\nincludes = ["i1.toml", "i2.toml"]\n'
        + marker("self", '[resources]\nmemory = "2g"\ncpus = 2\n'),
    )
    config = load(tmp_path)
    assert config.image == "x1"
    assert config.memory == "2g"
    assert config.cpus == 3.0
    assert (config.post_up, config.pre_down) == ("x1", "i2")
    assert config.envs["WHO"].value == "i2"
    assert mount_order(config) == ["X2", "X1", "SELF", "I1", "I2"]
    assert [config.origin[f"mounts[{i}]"] for i in range(5)] == [
        ("x2.toml",),
        ("x1.toml",),
        (".alca.toml",),
        ("i1.toml",),
        ("i2.toml",),
    ]
    assert [config.origin[f"network.lan-access[{i}]"] for i in range(5)] == [
        ("x2.toml",),
        ("x1.toml",),
        (".alca.toml",),
        ("i1.toml",),
        ("i2.toml",),
    ]
    for name in ("x1", "x2", "self", "i1", "i2"):
        safe = name.upper() if name == "self" else f"{name.upper()}"
        assert f"SEEN_{safe}" in config.envs


def test_nested_references_resolved_depth_first(tmp_path: Path) -> None:
    """A extends B (B extends C, includes D); A includes E (E extends F)."""
    write(tmp_path / "c.toml", marker("c", 'image = "c"\nworkdir = "/c"\n'))
    write(tmp_path / "d.toml", marker("d"))
    write(
        tmp_path / "b.toml",
        marker("b", 'extends = ["c.toml"]\nincludes = ["d.toml"]\nimage = "b"\n'),
    )
    write(tmp_path / "f.toml", marker("f", 'workdir = "/f"\n'))
    write(tmp_path / "e.toml", marker("e", 'extends = ["f.toml"]\n'))
    write(
        tmp_path / ".alca.toml",
        'extends = ["b.toml"]\nincludes = ["e.toml"]\nworkdir = "/a"\n' + marker("a"),
    )
    config = load(tmp_path)
    assert mount_order(config) == ["C", "B", "D", "A", "F", "E"]
    assert config.image == "b"
    # F sits below E, but E as a whole is included above A: F's workdir beats A's.
    assert config.workdir == "/f"
    assert config.origin["workdir"] == ("f.toml",)
    assert config.envs["WHO"].value == "e"


def test_nested_relative_paths_use_each_files_directory(tmp_path: Path) -> None:
    write(
        tmp_path / "presets" / "lang" / "python.toml",
        'image = "python:3.13"\nmounts = ["./cache:/pc"]\n',
    )
    write(
        tmp_path / "presets" / "base.toml",
        'extends = ["lang/python.toml"]\nmounts = ["cache:/bc"]\n',
    )
    write(tmp_path / ".alca.toml", 'extends = ["./presets/base.toml"]\n')
    config = load(tmp_path)
    assert config.image == "python:3.13"
    assert config.mounts == (
        Mount(str(tmp_path / "presets" / "lang" / "cache"), "/pc"),
        Mount(str(tmp_path / "presets" / "cache"), "/bc"),
    )
    assert config.origin["image"] == (str(Path("presets", "lang", "python.toml")),)


def test_commands_append_across_files(tmp_path: Path) -> None:
    write(tmp_path / "base.toml", '[commands]\nup = "apt-get update"\nenter = "nix develop -c"\n')
    write(tmp_path / "local.toml", '[commands]\nup = { command = "&& make", append = true }\n')
    write(
        tmp_path / ".alca.toml",
        'image = "a"\nextends = ["base.toml"]\nincludes = ["local.toml"]\n'
        '[commands]\nup = { command = "&& pip install -e .", append = true }\n',
    )
    config = load(tmp_path)
    assert config.up == Command("apt-get update && pip install -e . && make")
    assert config.enter == Command("nix develop -c")
    assert config.origin["commands.up"] == ("base.toml", ".alca.toml", "local.toml")


def test_append_chain_through_nested_include_is_not_flat(tmp_path: Path) -> None:
    """Depth-first merging is not associative for `append` (upstream AGD-034 behaviour)."""
    write(tmp_path / "c.toml", '[commands]\nup = { command = "c", append = true }\n')
    write(
        tmp_path / "b.toml",
        'includes = ["c.toml"]\n[commands]\nup = { command = "b", append = true }\n',
    )
    write(tmp_path / ".alca.toml", 'image = "a"\nincludes = ["b.toml"]\n[commands]\nup = "a"\n')
    assert load(tmp_path).up == Command("b c")
    write(tmp_path / "b.toml", '[commands]\nup = { command = "b", append = true }\n')
    write(
        tmp_path / ".alca.toml",
        'image = "a"\nincludes = ["b.toml", "c.toml"]\n[commands]\nup = "a"\n',
    )
    assert load(tmp_path).up == Command("a b c")


def test_workdir_exclude_and_ports_replaced_by_include(tmp_path: Path) -> None:
    write(tmp_path / "local.toml", 'workdir_exclude = ["secret/"]\n[network]\nports = ["9000"]\n')
    write(tmp_path / "empty.toml", "workdir_exclude = []\n[network]\nports = []\n")
    write(
        tmp_path / ".alca.toml",
        'image = "a"\nworkdir_exclude = ["**/.env", "*.pem"]\n'
        'includes = ["local.toml", "empty.toml"]\n'
        '[network]\nports = ["80", "443"]\n',
    )
    config = load(tmp_path)
    assert config.workdir_exclude == ("secret/",)
    assert [p.container_port for p in config.ports] == [9000]
    assert config.origin["workdir_exclude"] == ("local.toml",)
    assert config.workdir_mount.exclude == ("secret/",)


def test_caps_from_an_include_replace_the_base(tmp_path: Path) -> None:
    write(tmp_path / "local.toml", 'caps = ["SYS_PTRACE"]\n')
    write(tmp_path / ".alca.toml", 'image = "a"\ncaps = ["NET_RAW"]\nincludes = ["local.toml"]\n')
    config = load(tmp_path)
    assert "SYS_PTRACE" in config.caps.add
    assert "NET_RAW" not in config.caps.add


def test_image_may_come_from_any_layer_but_is_required(tmp_path: Path) -> None:
    write(tmp_path / "base.toml", '[envs]\nA = "1"\n')
    write(tmp_path / ".alca.toml", 'extends = ["base.toml"]\n')
    error = load_error(tmp_path)
    assert error.key == "image"
    assert error.file == ".alca.toml"


def test_mount_conflict_found_after_merge_names_declaring_file(tmp_path: Path) -> None:
    write(tmp_path / "base.toml", 'mounts = ["./src:/src"]\n')
    write(tmp_path / ".alca.toml", 'image = "a"\nworkdir = "/src"\nextends = ["base.toml"]\n')
    error = load_error(tmp_path)
    assert "conflicts with workdir" in error.message
    assert error.file == "base.toml"


# --- paths -----------------------------------------------------------------------------------


def test_template_shape_local_override(tmp_path: Path) -> None:
    """Upstream's template: includes = ["./.alca.*.toml"] for untracked local overrides."""
    write(
        tmp_path / ".alca.toml",
        'image = "nixos/nix"\nincludes = ["./.alca.*.toml"]\n'
        'mounts = ["~/.gitconfig:/root/.gitconfig:ro"]\n',
    )
    environ = {"HOME": "/home/u"}
    config = load(tmp_path, environ)  # no local file: the glob matches nothing
    assert config.image == "nixos/nix"
    assert config.files == ((tmp_path / ".alca.toml").resolve(),)
    write(tmp_path / ".alca.local.toml", 'image = "alpine:3.21"\nmounts = ["./notes:/notes"]\n')
    config = load(tmp_path, environ)
    assert config.image == "alpine:3.21"
    assert config.mounts == (
        Mount("/home/u/.gitconfig", "/root/.gitconfig", True),
        Mount(str(tmp_path / "notes"), "/notes"),
    )
    assert config.origin["image"] == (".alca.local.toml",)
    assert config.files == (
        (tmp_path / ".alca.toml").resolve(),
        (tmp_path / ".alca.local.toml").resolve(),
    )


def test_glob_matches_sorted(tmp_path: Path) -> None:
    for name in ("b", "c", "a"):
        write(tmp_path / ".alca.local" / f"{name}.toml", marker(name, f'image = "{name}"\n'))
    write(tmp_path / ".alca.local" / "notes.txt", "not toml")
    write(tmp_path / ".alca.toml", 'includes = [".alca.local/*.toml"]\n')
    config = load(tmp_path)
    assert config.image == "c"  # last in sorted order
    assert mount_order(config) == ["A", "B", "C"]


def test_glob_dotfiles_matched(tmp_path: Path) -> None:
    write(tmp_path / ".alca.a.toml", marker("a", 'image = "a"\n'))
    write(tmp_path / ".alca.z.toml", marker("z"))
    write(tmp_path / ".alca.toml", 'extends = ["./.alca.*.toml"]\n')
    config = load(tmp_path)
    assert config.image == "a"
    assert mount_order(config) == ["Z", "A"]  # extends: first wins, so folded z then a


@pytest.mark.parametrize("pattern", ["presets/?.toml", "presets/[ab].toml"])
def test_other_glob_characters(tmp_path: Path, pattern: str) -> None:
    write(tmp_path / "presets" / "a.toml", 'image = "a"\n')
    write(tmp_path / "presets" / "b.toml", 'image = "b"\n')
    write(tmp_path / "presets" / "long.toml", 'image = "long"\n')
    write(tmp_path / ".alca.toml", f'includes = ["{pattern}"]\n')
    assert load(tmp_path).image == "b"


def test_empty_glob_is_fine(tmp_path: Path) -> None:
    write(
        tmp_path / ".alca.toml",
        'image = "a"\nextends = ["nothing/*.toml"]\nincludes = ["./.alca.*.toml"]\n',
    )
    config = load(tmp_path)
    assert config.image == "a"
    assert len(config.files) == 1


@pytest.mark.parametrize("key", ["extends", "includes"])
def test_literal_path_must_exist(tmp_path: Path, key: str) -> None:
    write(tmp_path / "presets" / "base.toml", f'{key} = ["ok.toml", "missing.toml"]\n')
    write(tmp_path / "presets" / "ok.toml", "")
    write(tmp_path / ".alca.toml", 'image = "a"\nextends = ["presets/base.toml"]\n')
    error = load_error(tmp_path)
    assert error.file == str(Path("presets", "base.toml"))
    assert error.key == f"{key}[1]"
    assert '"missing.toml" does not exist' in error.message
    assert str(tmp_path / "presets" / "missing.toml") in error.message


def test_variables_in_paths(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    write(shared / "one.toml", 'image = "one"\n')
    write(shared / "two.toml", '[envs]\nTWO = "2"\n')
    write(tmp_path / "home" / "alca" / "mine.toml", '[envs]\nMINE = "1"\n')
    write(
        tmp_path / "proj" / ".alca.toml",
        'extends = ["$SHARED/one.toml", "${SHARED}/t*.toml", "~/alca/mine.toml"]\n',
    )
    config = load(tmp_path / "proj", {"SHARED": str(shared), "HOME": str(tmp_path / "home")})
    assert config.image == "one"
    assert config.envs["TWO"].value == "2"
    assert config.envs["MINE"].value == "1"
    assert len(config.files) == 4


def test_undefined_variable_in_path_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / ".alca.toml", 'image = "a"\nincludes = ["./x.toml", "$NOPE/y.toml"]\n')
    write(tmp_path / "x.toml", "")
    error = load_error(tmp_path, {})
    assert error.key == "includes[1]"
    assert "$NOPE" in error.message
    assert error.file == ".alca.toml"


def test_absolute_paths(tmp_path: Path) -> None:
    elsewhere = write(tmp_path / "elsewhere" / "base.toml", 'image = "abs"\nmounts = ["./d:/d"]\n')
    write(tmp_path / "proj" / ".alca.toml", f'extends = ["{elsewhere}"]\n')
    config = load(tmp_path / "proj")
    assert config.image == "abs"
    assert config.mounts[0].source == str(tmp_path / "elsewhere" / "d")
    assert config.origin["image"] == (str(elsewhere),)  # outside cwd: shown absolute


def test_files_lists_every_file_that_took_part(tmp_path: Path) -> None:
    write(tmp_path / "p" / "a.toml", 'includes = ["b.toml"]\n')
    write(tmp_path / "p" / "b.toml", "")
    write(tmp_path / "c.toml", "")
    write(tmp_path / ".alca.d" / "x.toml", "")
    write(tmp_path / ".alca.d" / "y.toml", "")
    write(
        tmp_path / ".alca.toml",
        'image = "a"\nextends = ["p/a.toml"]\n'
        'includes = ["c.toml", ".alca.d/*.toml", "none/*.toml"]\n',
    )
    config = load(tmp_path)
    expected = {
        (tmp_path / n).resolve()
        for n in (
            ".alca.toml",
            "p/a.toml",
            "p/b.toml",
            "c.toml",
            ".alca.d/x.toml",
            ".alca.d/y.toml",
        )
    }
    assert set(config.files) == expected
    assert len(config.files) == len(expected)
    assert config.files[0] == (tmp_path / ".alca.toml").resolve()
    assert all(f.is_absolute() for f in config.files)


def test_error_in_a_referenced_file_names_that_file(tmp_path: Path) -> None:
    write(tmp_path / "presets" / "bad.toml", '[network]\nlan-access = ["printer.local"]\n')
    write(tmp_path / ".alca.toml", 'image = "a"\nincludes = ["presets/bad.toml"]\n')
    error = load_error(tmp_path)
    assert error.file == str(Path("presets", "bad.toml"))
    assert error.key == "network.lan-access[0]"


def test_referenced_directory_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "presets").mkdir()
    write(tmp_path / ".alca.toml", 'image = "a"\nextends = ["presets"]\n')
    error = load_error(tmp_path)
    assert "directory" in error.message


def test_empty_reference_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / ".alca.toml", 'image = "a"\nextends = [""]\n')
    assert load_error(tmp_path).key == "extends[0]"


def test_glob_in_directory_whose_name_has_brackets(tmp_path: Path) -> None:
    root = tmp_path / "proj[1]"
    write(root / ".alca.toml", 'image = "base"\nincludes = ["./.alca.*.toml"]\n')
    write(root / ".alca.local.toml", 'image = "local"\n')
    assert load(root).image == "local"


# --- cycles and limits -----------------------------------------------------------------------


def test_self_reference_is_circular(tmp_path: Path) -> None:
    write(tmp_path / ".alca.toml", 'image = "a"\nincludes = ["./.alca.toml"]\n')
    error = load_error(tmp_path)
    assert "circular reference detected: .alca.toml -> .alca.toml" in error.message


def test_circular_reference_message_names_the_chain(tmp_path: Path) -> None:
    write(tmp_path / ".alca.toml", 'image = "a"\nextends = ["b.toml"]\n')
    write(tmp_path / "b.toml", 'includes = ["sub/c.toml"]\n')
    write(tmp_path / "sub" / "c.toml", 'extends = ["../b.toml"]\n')
    error = load_error(tmp_path)
    chain = f".alca.toml -> b.toml -> {Path('sub', 'c.toml')} -> b.toml"
    assert f"circular reference detected: {chain}" in error.message
    assert error.file == str(Path("sub", "c.toml"))
    assert error.hint


def test_cycle_through_glob_is_found(tmp_path: Path) -> None:
    write(tmp_path / ".alca.toml", 'image = "a"\nincludes = ["*.toml"]\n')  # matches itself
    assert "circular reference" in load_error(tmp_path).message


def test_shared_file_reached_twice_is_not_a_cycle(tmp_path: Path) -> None:
    write(tmp_path / "common.toml", '[envs]\nCOMMON = "1"\n')
    write(tmp_path / "b.toml", 'extends = ["common.toml"]\n')
    write(tmp_path / "c.toml", 'extends = ["common.toml"]\n')
    write(tmp_path / ".alca.toml", 'image = "a"\nextends = ["b.toml", "c.toml"]\n')
    config = load(tmp_path)
    assert config.envs["COMMON"].value == "1"
    assert set(config.files) == {
        (tmp_path / n).resolve() for n in (".alca.toml", "b.toml", "c.toml", "common.toml")
    }


def test_depth_limit(tmp_path: Path) -> None:
    for i in range(MAX_DEPTH + 1):
        write(tmp_path / f"l{i}.toml", f'extends = ["l{i + 1}.toml"]\n')
    write(tmp_path / f"l{MAX_DEPTH + 1}.toml", "")
    write(tmp_path / ".alca.toml", 'image = "a"\nextends = ["l0.toml"]\n')
    error = load_error(tmp_path)
    assert f"more than {MAX_DEPTH} levels" in error.message


def test_display_paths_relative_to_cwd(tmp_path: Path) -> None:
    write(tmp_path / "presets" / "base.toml", 'image = "b"\n')
    write(tmp_path / ".alca.toml", 'extends = ["presets/base.toml"]\n')
    inside = load_config(tmp_path, environ={}, cwd=tmp_path)
    assert inside.origin["image"] == (str(Path("presets", "base.toml")),)
    elsewhere = load_config(tmp_path, environ={}, cwd=tmp_path / "presets")
    assert elsewhere.origin["image"] == ("base.toml",)
    outside = load_config(tmp_path, environ={}, cwd=tmp_path.parent / "nowhere")
    assert outside.origin["image"] == (str(tmp_path / "presets" / "base.toml"),)
