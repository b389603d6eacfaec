"""Every field of `.alca.toml` (reference §2.1), its default and each accepted form.

Real files in `tmp_path`, real `load_config`; the environment is passed explicitly.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from alcatraz.config import model
from alcatraz.config.layer import Caps, Command, EnvVar, Mount, parse_memory
from alcatraz.config.load import Config, load_config
from alcatraz.config.netgrammar import AlcaToken, LanRule, PortMapping, ProxyAddress
from alcatraz.errors import ConfigError, ExitCode, NotInitializedError

DEFAULT_ADD = ("CHOWN", "DAC_OVERRIDE", "FOWNER", "KILL", "SETUID", "SETGID")
DEFAULT_ENVS = (
    "TERM",
    "COLORTERM",
    "LANG",
    "LC_ALL",
    "LC_COLLATE",
    "LC_CTYPE",
    "LC_MESSAGES",
    "LC_MONETARY",
    "LC_NUMERIC",
    "LC_TIME",
)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def load(
    root: Path, body: str = "", *, environ: dict[str, str] | None = None, image: bool = True
) -> Config:
    """Write `.alca.toml` (with an image unless told not to) and load it."""
    text = ('image = "alpine:3.21"\n' if image else "") + body
    write(root / ".alca.toml", text)
    env = {"HOME": str(root / "home")} if environ is None else environ
    return load_config(root, environ=env, cwd=root)


def load_error(
    root: Path, body: str, *, environ: dict[str, str] | None = None, image: bool = True
) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(root, body, environ=environ, image=image)
    assert info.value.exit_code == ExitCode.CONFIG
    return info.value


# --- image -----------------------------------------------------------------------------------


def test_image_is_read(tmp_path: Path) -> None:
    assert load(tmp_path).image == "alpine:3.21"


@pytest.mark.parametrize(
    "image",
    ["alpine", "alpine:3.21", "ghcr.io/org/img:tag", "registry:5000/a/b", "img@sha256:" + "a" * 64],
)
def test_image_references_accepted(tmp_path: Path, image: str) -> None:
    assert load(tmp_path, f'image = "{image}"\n', image=False).image == image


def test_image_is_required(tmp_path: Path) -> None:
    error = load_error(tmp_path, 'workdir = "/w"\n', image=False)
    assert error.key == "image"
    assert "image is required" in error.message
    assert error.file == ".alca.toml"


@pytest.mark.parametrize("image", ["", "  ", "-rm", "has space", "a\nb"])
def test_image_invalid(tmp_path: Path, image: str) -> None:
    error = load_error(tmp_path, f"image = {image!r}\n".replace("'", '"'), image=False)
    assert error.key == "image"


# --- workdir ---------------------------------------------------------------------------------


def test_workdir_default(tmp_path: Path) -> None:
    config = load(tmp_path)
    assert config.workdir == "/workspace" == model.DEFAULT_WORKDIR
    assert "workdir" not in config.origin


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("/src", "/src"),
        ("/src/", "/src"),
        ("/a//b/./c", "/a/b/c"),
        ("/a/b/../c", "/a/c"),
        ("//x", "/x"),
    ],
)
def test_workdir_normalised(tmp_path: Path, raw: str, normal: str) -> None:
    config = load(tmp_path, f'workdir = "{raw}"\n')
    assert config.workdir == normal
    assert config.origin["workdir"] == (".alca.toml",)


@pytest.mark.parametrize("raw", ["relative", "./x", "", "/", "/proc", "/sys/x", "/dev"])
def test_workdir_invalid(tmp_path: Path, raw: str) -> None:
    error = load_error(tmp_path, f'workdir = "{raw}"\n')
    assert error.key == "workdir"
    assert error.hint


# --- workdir_exclude and mount #0 ------------------------------------------------------------


def test_workdir_exclude_default_empty(tmp_path: Path) -> None:
    config = load(tmp_path)
    assert config.workdir_exclude == ()


def test_workdir_exclude_patterns_kept_in_order(tmp_path: Path) -> None:
    config = load(tmp_path, 'workdir_exclude = ["**/.env", "secrets/", "*.[ch]"]\n')
    assert config.workdir_exclude == ("**/.env", "secrets/", "*.[ch]")


@pytest.mark.parametrize("pattern", ["", " ", "!keep", " x", "x ", "*.[ch"])
def test_workdir_exclude_invalid(tmp_path: Path, pattern: str) -> None:
    error = load_error(tmp_path, f'workdir_exclude = ["ok", "{pattern}"]\n')
    assert error.key == "workdir_exclude[1]"


def test_workdir_mount_is_mount_zero(tmp_path: Path) -> None:
    config = load(
        tmp_path, 'workdir = "/src"\nworkdir_exclude = ["**/.env"]\nmounts = ["./d:/d"]\n'
    )
    assert config.workdir_mount == Mount(str(tmp_path), "/src", False, ("**/.env",))
    assert config.all_mounts[0] == config.workdir_mount
    assert config.all_mounts[1:] == config.mounts
    assert len(config.all_mounts) == 2


def test_workdir_mount_defaults(tmp_path: Path) -> None:
    config = load(tmp_path)
    assert config.all_mounts == (Mount(str(tmp_path), "/workspace", False, ()),)
    assert config.mounts == ()


# --- runtime ---------------------------------------------------------------------------------


def test_runtime_default_auto(tmp_path: Path) -> None:
    assert load(tmp_path).runtime == "auto"


@pytest.mark.parametrize("runtime", ["auto", "docker", "podman"])
def test_runtime_values(tmp_path: Path, runtime: str) -> None:
    # Unlike upstream, "podman" really means podman.
    assert load(tmp_path, f'runtime = "{runtime}"\n').runtime == runtime


@pytest.mark.parametrize(("typo", "suggestion"), [("dockr", "docker"), ("Podman", "podman")])
def test_runtime_typo_rejected_with_suggestion(tmp_path: Path, typo: str, suggestion: str) -> None:
    error = load_error(tmp_path, f'runtime = "{typo}"\n')
    assert error.key == "runtime"
    assert f'"{suggestion}"' in (error.hint or "")


# --- commands --------------------------------------------------------------------------------


def test_commands_default_none(tmp_path: Path) -> None:
    config = load(tmp_path)
    assert config.up is None
    assert config.enter is None


def test_commands_string_form(tmp_path: Path) -> None:
    config = load(tmp_path, '[commands]\nup = "make setup"\nenter = "nix develop -c"\n')
    assert config.up == Command("make setup", append=False)
    assert config.enter == Command("nix develop -c", append=False)
    assert config.origin["commands.up"] == (".alca.toml",)
    assert config.origin["commands.enter"] == (".alca.toml",)


def test_commands_table_form(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        '[commands]\nup = { command = "make", append = true }\nenter = { command = "bash -lc" }\n',
    )
    assert config.up == Command("make", append=True)
    assert config.enter == Command("bash -lc", append=False)


def test_commands_empty_string_means_none(tmp_path: Path) -> None:
    config = load(tmp_path, '[commands]\nup = ""\nenter = { command = "" }\n')
    assert config.up is None
    assert config.enter is None


@pytest.mark.parametrize(
    "body",
    [
        "[commands]\nup = 1\n",
        "[commands]\nup = ['a']\n",
        "[commands]\nenter = { cmd = 'x' }\n",
        "[commands]\nstart = 'x'\n",
    ],
)
def test_commands_wrong_shape(tmp_path: Path, body: str) -> None:
    error = load_error(tmp_path, body)
    assert error.key is not None
    assert error.key.startswith("commands")


# --- mounts ----------------------------------------------------------------------------------


def test_mount_string_forms(tmp_path: Path) -> None:
    config = load(tmp_path, 'mounts = ["./a:/a", "./b:/b:ro", "./c:/c:rw"]\n')
    assert config.mounts == (
        Mount(str(tmp_path / "a"), "/a", False, ()),
        Mount(str(tmp_path / "b"), "/b", True, ()),
        Mount(str(tmp_path / "c"), "/c", False, ()),
    )
    assert [config.origin[f"mounts[{i}]"] for i in range(3)] == [(".alca.toml",)] * 3


def test_mount_table_form(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        "mounts = [\n"
        '  { source = "/data", target = "/data" },\n'
        '  { source = "/cfg", target = "/cfg", readonly = true, exclude = ["*.key", "**/.env"] },\n'
        "]\n",
    )
    assert config.mounts == (
        Mount("/data", "/data", False, ()),
        Mount("/cfg", "/cfg", True, ("*.key", "**/.env")),
    )


def test_mount_forms_can_be_mixed(tmp_path: Path) -> None:
    config = load(tmp_path, 'mounts = ["/x:/x", { source = "/y", target = "/y" }]\n')
    assert [m.target for m in config.mounts] == ["/x", "/y"]


def test_mount_relative_source_against_declaring_file(tmp_path: Path) -> None:
    config = load(
        tmp_path, 'mounts = ["data:/data", "../up:/up", { source = "./t", target = "/t" }]\n'
    )
    assert [m.source for m in config.mounts] == [
        str(tmp_path / "data"),
        str(tmp_path.parent / "up"),
        str(tmp_path / "t"),
    ]


def test_mount_relative_source_in_extended_file_in_other_directory(tmp_path: Path) -> None:
    """Upstream bug B13: the source resolved against the project root. Fixed here."""
    write(tmp_path / "presets" / "base.toml", 'mounts = ["./cache:/cache", "../shared:/shared"]\n')
    write(tmp_path / "other" / "inc.toml", 'mounts = [{ source = "data", target = "/data" }]\n')
    config = load(tmp_path, 'extends = ["presets/base.toml"]\nincludes = ["other/inc.toml"]\n')
    assert [m.source for m in config.mounts] == [
        str(tmp_path / "presets" / "cache"),
        str(tmp_path / "shared"),
        str(tmp_path / "other" / "data"),
    ]
    assert config.origin["mounts[0]"] == (str(Path("presets") / "base.toml"),)
    assert config.origin["mounts[2]"] == (str(Path("other") / "inc.toml"),)


def test_mount_source_variables_expanded(tmp_path: Path) -> None:
    environ = {"HOME": "/home/u", "DATA": "/srv/data", "SUB": "x"}
    config = load(
        tmp_path,
        "mounts = [\n"
        '  "$DATA:/a",\n'
        '  "${DATA}/${SUB}:/b:ro",\n'
        '  { source = "$DATA/$SUB", target = "/c" },\n'
        '  "$SUB/rel:/d",\n'
        "]\n",
        environ=environ,
    )
    assert [m.source for m in config.mounts] == [
        "/srv/data",
        "/srv/data/x",
        "/srv/data/x",
        str(tmp_path / "x" / "rel"),
    ]


def test_mount_string_split_before_expansion(tmp_path: Path) -> None:
    """A `:` inside a variable's value does not break the `src:dst` split."""
    config = load(tmp_path, 'mounts = ["$P:/p:ro"]\n', environ={"P": "/odd:name"})
    assert config.mounts == (Mount("/odd:name", "/p", True, ()),)


def test_mount_target_not_expanded(tmp_path: Path) -> None:
    config = load(tmp_path, 'mounts = ["/x:/opt/$HOME"]\n', environ={"HOME": "/h"})
    assert config.mounts[0].target == "/opt/$HOME"


def test_mount_tilde_expanded_from_environ_home(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        'mounts = ["~/.cache:/cache", { source = "~", target = "/home" }]\n',
        environ={"HOME": "/home/someone"},
    )
    assert [m.source for m in config.mounts] == ["/home/someone/.cache", "/home/someone"]


def test_mount_tilde_unknown_user(tmp_path: Path) -> None:
    error = load_error(tmp_path, 'mounts = ["~no_such_user_alca_test/x:/x"]\n')
    assert error.key == "mounts[0]"
    assert "no such user" in error.message


def test_mount_undefined_variable_is_an_error(tmp_path: Path) -> None:
    error = load_error(tmp_path, 'mounts = ["/ok:/ok", "$NOPE/x:/x"]\n', environ={})
    assert error.key == "mounts[1]"
    assert "$NOPE" in error.message
    assert error.file == ".alca.toml"


def test_mount_undefined_variable_in_table_form(tmp_path: Path) -> None:
    error = load_error(tmp_path, 'mounts = [{ source = "${NOPE}", target = "/x" }]\n', environ={})
    assert error.key == "mounts[0].source"


@pytest.mark.parametrize(
    ("mount", "key"),
    [
        ('"/a"', "mounts[0]"),
        ('"/a:/b:ro:x"', "mounts[0]"),
        ('"/a:/b:rx"', "mounts[0]"),
        ('":/b"', "mounts[0]"),
        ('"/a:"', "mounts[0]"),
        ('"/a:relative"', "mounts[0]"),
        ('"/a:/proc/x"', "mounts[0]"),
        ('{ source = "", target = "/x" }', "mounts[0].source"),
        ('{ source = "/a", target = "b" }', "mounts[0].target"),
        ('{ source = "/a", target = "/b", exclude = ["!x"] }', "mounts[0].exclude[0]"),
    ],
)
def test_mount_invalid(tmp_path: Path, mount: str, key: str) -> None:
    error = load_error(tmp_path, f"mounts = [{mount}]\n")
    assert error.key == key
    assert error.hint


@pytest.mark.parametrize(
    "body", ['mounts = [{ target = "/x" }]\n', 'mounts = [{ source = "/x" }]\n']
)
def test_mount_table_missing_required_key(tmp_path: Path, body: str) -> None:
    error = load_error(tmp_path, body)
    assert "missing required key" in error.message


@pytest.mark.parametrize("target", ["/workspace", "/workspace/", "/workspace/."])
def test_mount_target_equal_to_workdir_rejected(tmp_path: Path, target: str) -> None:
    error = load_error(tmp_path, f'mounts = ["./x:{target}"]\n')
    assert "conflicts with workdir" in error.message
    assert "workdir_exclude" in (error.hint or "")


def test_mount_target_equal_to_custom_workdir_rejected(tmp_path: Path) -> None:
    error = load_error(tmp_path, 'workdir = "/src"\nmounts = ["/etc/x:/tmp", "./x:/src"]\n')
    assert error.key == "mounts[1]"


def test_mount_duplicate_target_rejected(tmp_path: Path) -> None:
    error = load_error(tmp_path, 'mounts = ["/a:/t", "/b:/t/"]\n')
    assert "used twice" in error.message
    assert error.key == "mounts[1]"


# --- resources -------------------------------------------------------------------------------


def test_resources_default_none(tmp_path: Path) -> None:
    config = load(tmp_path)
    assert config.memory is None
    assert config.cpus is None


@pytest.mark.parametrize(
    ("memory", "size"),
    [
        ("4g", 4 << 30),
        ("512m", 512 << 20),
        ("1.5g", 3 << 29),
        ("4GiB", 4 << 30),
        ("4gb", 4 << 30),
        ("4G", 4 << 30),
        ("6m", 6 << 20),
        ("4 g", 4 << 30),
        ("1t", 1 << 40),
        ("1048576k", 1 << 30),
        (str(8 << 20), 8 << 20),
    ],
)
def test_memory_sizes_accepted(tmp_path: Path, memory: str, size: int) -> None:
    config = load(tmp_path, f'[resources]\nmemory = "{memory}"\n')
    assert config.memory == memory  # passed to the engine as written
    assert parse_memory(memory) == size
    assert config.origin["resources.memory"] == (".alca.toml",)


@pytest.mark.parametrize(
    "memory", ["", "g", "4x", "-4g", "4 gigs", " 4g", "4g ", "1.5.5g", "5m", "0"]
)
def test_memory_sizes_rejected(tmp_path: Path, memory: str) -> None:
    error = load_error(tmp_path, f'[resources]\nmemory = "{memory}"\n')
    assert error.key == "resources.memory"
    assert error.hint


@pytest.mark.parametrize("memory", ["4\tg", "4\ng"])
def test_memory_whitespace_other_than_space_rejected(memory: str) -> None:
    with pytest.raises(ConfigError):
        parse_memory(memory)


def test_memory_wrong_type(tmp_path: Path) -> None:
    error = load_error(tmp_path, "[resources]\nmemory = 4\n")
    assert error.key == "resources.memory"


@pytest.mark.parametrize(
    ("cpus", "value"), [("2", 2.0), ("1.5", 1.5), ("0.25", 0.25), ("64", 64.0)]
)
def test_cpus_accepted(tmp_path: Path, cpus: str, value: float) -> None:
    config = load(tmp_path, f"[resources]\ncpus = {cpus}\n")
    assert config.cpus == value
    assert config.origin["resources.cpus"] == (".alca.toml",)


@pytest.mark.parametrize("cpus", ["0", "0.0"])
def test_cpus_zero_means_no_limit(tmp_path: Path, cpus: str) -> None:
    config = load(tmp_path, f"[resources]\ncpus = {cpus}\n")
    assert config.cpus is None
    assert "resources.cpus" not in config.origin


@pytest.mark.parametrize("cpus", ["-1", "nan", "inf", "5000", "true", '"2"'])
def test_cpus_rejected(tmp_path: Path, cpus: str) -> None:
    error = load_error(tmp_path, f"[resources]\ncpus = {cpus}\n")
    assert error.key == "resources.cpus"


# --- envs ------------------------------------------------------------------------------------


def test_envs_builtin_defaults(tmp_path: Path) -> None:
    config = load(tmp_path)
    assert tuple(config.envs) == DEFAULT_ENVS == model.DEFAULT_ENV_NAMES
    for name in DEFAULT_ENVS:
        assert config.envs[name] == EnvVar(f"${{{name}}}", override_on_enter=True)
        assert f"envs.{name}" not in config.origin


def test_envs_literal_reference_and_table(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        "[envs]\n"
        'PLAIN = "hello world"\n'
        'EMPTY = ""\n'
        'TOKEN = "${GITHUB_TOKEN}"\n'
        'DASHED = "${MY-VAR}"\n'
        'FRESH = { value = "${SSH_AUTH_SOCK}", override_on_enter = true }\n'
        'TABLE = { value = "x" }\n'
        'DOLLAR = "costs 5$"\n',
    )
    assert config.envs["PLAIN"] == EnvVar("hello world", False)
    assert config.envs["EMPTY"] == EnvVar("", False)
    assert config.envs["TOKEN"] == EnvVar("${GITHUB_TOKEN}", False)
    assert config.envs["DASHED"] == EnvVar("${MY-VAR}", False)
    assert config.envs["FRESH"] == EnvVar("${SSH_AUTH_SOCK}", True)
    assert config.envs["TABLE"] == EnvVar("x", False)
    assert config.envs["DOLLAR"] == EnvVar("costs 5$", False)
    assert config.origin["envs.FRESH"] == (".alca.toml",)
    # The defaults are still there.
    assert set(DEFAULT_ENVS) <= set(config.envs)


def test_envs_values_not_expanded_at_load(tmp_path: Path) -> None:
    config = load(tmp_path, '[envs]\nTOKEN = "${SECRET}"\n', environ={"SECRET": "s3cr3t"})
    assert config.envs["TOKEN"].value == "${SECRET}"


def test_envs_user_overrides_a_default(tmp_path: Path) -> None:
    config = load(tmp_path, '[envs]\nTERM = "xterm-256color"\nLANG = { value = "C.UTF-8" }\n')
    assert config.envs["TERM"] == EnvVar("xterm-256color", override_on_enter=False)
    assert config.envs["LANG"] == EnvVar("C.UTF-8", override_on_enter=False)
    assert config.envs["COLORTERM"] == EnvVar("${COLORTERM}", override_on_enter=True)
    assert config.origin["envs.TERM"] == (".alca.toml",)
    assert len([k for k in config.envs if k in DEFAULT_ENVS]) == len(DEFAULT_ENVS)


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ('X = "hello${NAME}"', "envs.X"),
        ('X = "$NAME"', "envs.X"),
        ('X = "${A:-b}"', "envs.X"),
        ('X = { value = "pre${A}" }', "envs.X"),
        ('"1X" = "v"', "envs.1X"),
        ('"A-B" = "v"', "envs.A-B"),
    ],
)
def test_envs_invalid(tmp_path: Path, body: str, key: str) -> None:
    error = load_error(tmp_path, f"[envs]\n{body}\n")
    assert error.key == key


def test_envs_wrong_type(tmp_path: Path) -> None:
    error = load_error(tmp_path, "[envs]\nX = 1\n")
    assert error.key == "envs.X"


def test_envs_table_needs_value(tmp_path: Path) -> None:
    error = load_error(tmp_path, "[envs]\nX = { override_on_enter = true }\n")
    assert "value" in error.message


# --- network.lan-access ----------------------------------------------------------------------


def net(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(text)


def test_lan_access_default_blocks_everything(tmp_path: Path) -> None:
    config = load(tmp_path)
    assert config.lan_access == ()
    assert config.allow_all_lan is False
    assert config.lan_rules == ()


def test_lan_access_grammar_forms(tmp_path: Path) -> None:
    rules = [
        "192.168.1.10",
        "192.168.1.0/24",
        "192.168.1.10:8080",
        "udp://10.0.0.53:53",
        "tcp://10.0.0.2",
        "*://10.0.0.3:53",
        "10.0.0.4:*",
        "10.0.0.5:8000-8100",
        "fd00::1",
        "[fd00::2]:443",
        "[fd00::/8]:*",
        "${alca:HOST_IP}:8080",
        "${alca:HOST_IP}",
    ]
    body = "[network]\nlan-access = [" + ", ".join(f'"{r}"' for r in rules) + "]\n"
    config = load(tmp_path, body)
    assert config.lan_access == tuple(rules)  # kept as written
    assert config.allow_all_lan is False
    host_ip = AlcaToken("HOST_IP")
    assert config.lan_rules == (
        LanRule(net("192.168.1.10/32"), (), None),
        LanRule(net("192.168.1.0/24"), (), None),
        LanRule(net("192.168.1.10/32"), ("tcp",), (8080, 8080)),
        LanRule(net("10.0.0.53/32"), ("udp",), (53, 53)),
        LanRule(net("10.0.0.2/32"), ("tcp",), (1, 65535)),
        LanRule(net("10.0.0.3/32"), ("tcp", "udp"), (53, 53)),
        LanRule(net("10.0.0.4/32"), (), None),
        LanRule(net("10.0.0.5/32"), ("tcp",), (8000, 8100)),
        LanRule(net("fd00::1/128"), (), None),
        LanRule(net("fd00::2/128"), ("tcp",), (443, 443)),
        LanRule(net("fd00::/8"), (), None),
        LanRule(host_ip, ("tcp",), (8080, 8080)),
        LanRule(host_ip, (), None),
    )
    assert [config.origin[f"network.lan-access[{i}]"] for i in range(len(rules))] == [
        (".alca.toml",)
    ] * len(rules)


@pytest.mark.parametrize("position", [0, 1, 2])
def test_lan_access_star_anywhere_allows_all(tmp_path: Path, position: int) -> None:
    rules = ['"10.0.0.1"', '"udp://10.0.0.2:53"']
    rules.insert(position, '"*"')
    config = load(tmp_path, f"[network]\nlan-access = [{', '.join(rules)}]\n")
    assert config.allow_all_lan is True
    # The other rules are still parsed and kept.
    assert len(config.lan_rules) == 2


def test_lan_access_duplicates_dropped_from_rules(tmp_path: Path) -> None:
    config = load(tmp_path, '[network]\nlan-access = ["10.0.0.1", "10.0.0.1"]\n')
    assert config.lan_access == ("10.0.0.1", "10.0.0.1")
    assert len(config.lan_rules) == 1


@pytest.mark.parametrize(
    "rule",
    [
        "",
        "printer.local",
        "10.0.0.1/8",
        "10.0.0.1:0",
        "10.0.0.1:70000",
        "[fd00::1",
        "[fd00::1]x",
        "${HOME}",
        "${alca:NOPE}:80",
        "TCP://10.0.0.1",
        "ftp://10.0.0.1",
        "10.0.0.1 ",
        "010.0.0.1",
    ],
)
def test_lan_access_invalid_rules_fail_at_load(tmp_path: Path, rule: str) -> None:
    error = load_error(tmp_path, f'[network]\nlan-access = ["10.0.0.9", "{rule}"]\n')
    assert error.key == "network.lan-access[1]"
    assert error.hint


def test_lan_access_must_be_a_list(tmp_path: Path) -> None:
    error = load_error(tmp_path, '[network]\nlan-access = "*"\n')
    assert error.key == "network.lan-access"


# --- network.ports ---------------------------------------------------------------------------


def test_ports_default_empty(tmp_path: Path) -> None:
    assert load(tmp_path).ports == ()


def test_ports_string_and_table_forms_mixed(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        "[network]\nports = [\n"
        '  "8080:80",\n'
        '  "9000",\n'
        '  "127.0.0.1:5353:53/udp",\n'
        '  "[::1]:8443:443/tcp",\n'
        '  { port = 53, protocol = "udp" },\n'
        '  { port = 80, hostPort = 8081, hostIp = "127.0.0.1" },\n'
        '  { port = 22, hostIp = "::1" },\n'
        "]\n",
    )
    v4 = ipaddress.IPv4Address("127.0.0.1")
    v6 = ipaddress.IPv6Address("::1")
    assert config.ports == (
        PortMapping(80, 8080, None, "tcp"),
        PortMapping(9000, 9000, None, "tcp"),
        PortMapping(53, 5353, v4, "udp"),
        PortMapping(443, 8443, v6, "tcp"),
        PortMapping(53, 53, None, "udp"),
        PortMapping(80, 8081, v4, "tcp"),
        PortMapping(22, 22, v6, "tcp"),
    )
    assert [p.docker_arg() for p in config.ports] == [
        "8080:80",
        "9000:9000",
        "127.0.0.1:5353:53/udp",
        "[::1]:8443:443",
        "53:53/udp",
        "127.0.0.1:8081:80",
        "[::1]:22:22",
    ]
    assert config.origin["network.ports"] == (".alca.toml",)


@pytest.mark.parametrize(
    "port",
    [
        '"0"',
        '"70000:80"',
        '"1:2:3:4"',
        '"8080:80/sctp"',
        '"host:8080:80"',
        "{ port = 0 }",
        '{ port = 80, protocol = "sctp" }',
        '{ port = 80, hostIp = "localhost" }',
        "{ hostPort = 80 }",
        "80",
    ],
)
def test_ports_invalid(tmp_path: Path, port: str) -> None:
    error = load_error(tmp_path, f"[network]\nports = [{port}]\n")
    assert error.key is not None
    assert error.key.startswith("network.ports[0]")


# --- network.proxy ---------------------------------------------------------------------------


def test_proxy_default_none(tmp_path: Path) -> None:
    config = load(tmp_path)
    assert config.proxy is None
    assert config.proxy_text is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("192.168.1.2:1080", ProxyAddress(ipaddress.IPv4Address("192.168.1.2"), 1080)),
        ("[fd00::2]:3128", ProxyAddress(ipaddress.IPv6Address("fd00::2"), 3128)),
        ("${alca:HOST_IP}:8080", ProxyAddress(AlcaToken("HOST_IP"), 8080)),
    ],
)
def test_proxy_forms(tmp_path: Path, text: str, expected: ProxyAddress) -> None:
    config = load(tmp_path, f'[network]\nproxy = "{text}"\n')
    assert config.proxy == expected
    assert config.proxy_text == text
    assert config.origin["network.proxy"] == (".alca.toml",)


@pytest.mark.parametrize(
    "text",
    [
        "proxy.local:8080",
        "192.168.1.2",
        "192.168.1.2:0",
        "fd00::2:80",
        "0.0.0.0:80",
        "${PROXY}:80",
        "",
    ],
)
def test_proxy_invalid(tmp_path: Path, text: str) -> None:
    error = load_error(tmp_path, f'[network]\nproxy = "{text}"\n')
    assert error.key == "network.proxy"
    assert error.hint


def test_network_unknown_key_rejected(tmp_path: Path) -> None:
    error = load_error(tmp_path, "[network]\nlan_access = []\n")
    assert error.key == "network.lan_access"
    assert "lan-access" in error.message


# --- caps ------------------------------------------------------------------------------------


def test_caps_absent_drops_all_adds_six_defaults(tmp_path: Path) -> None:
    config = load(tmp_path)
    assert config.caps == Caps(drop=("ALL",), add=DEFAULT_ADD)
    assert DEFAULT_ADD == model.DEFAULT_CAPS
    assert "caps" not in config.origin


def test_caps_empty_array_is_the_defaults(tmp_path: Path) -> None:
    assert load(tmp_path, "caps = []\n").caps == Caps(drop=("ALL",), add=DEFAULT_ADD)


def test_caps_array_is_additive_normalised_and_deduplicated(tmp_path: Path) -> None:
    config = load(
        tmp_path, 'caps = ["net_raw", "CAP_SYS_PTRACE", "chown", "NET_RAW", "cap_kill"]\n'
    )
    assert config.caps == Caps(drop=("ALL",), add=(*DEFAULT_ADD, "NET_RAW", "SYS_PTRACE"))
    assert config.origin["caps"] == (".alca.toml",)


def test_caps_table_is_verbatim(tmp_path: Path) -> None:
    config = load(tmp_path, 'caps = { drop = ["all"], add = ["cap_net_bind_service", "CHOWN"] }\n')
    assert config.caps == Caps(drop=("ALL",), add=("NET_BIND_SERVICE", "CHOWN"))


def test_caps_table_with_only_drop(tmp_path: Path) -> None:
    """Keeps the engine's own defaults minus those dropped: no implicit ALL, no additions."""
    config = load(tmp_path, '[caps]\ndrop = ["NET_RAW", "MKNOD"]\n')
    assert config.caps == Caps(drop=("NET_RAW", "MKNOD"), add=())


def test_caps_table_add_all_is_allowed(tmp_path: Path) -> None:
    assert load(tmp_path, 'caps = { add = ["ALL"] }\n').caps == Caps(drop=(), add=("ALL",))


def test_caps_empty_table_means_defaults(tmp_path: Path) -> None:
    assert load(tmp_path, "caps = {}\n").caps == Caps(drop=("ALL",), add=DEFAULT_ADD)


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ('caps = ["NET_RAWW"]', "caps[0]"),
        ('caps = ["chown", ""]', "caps[1]"),
        ('caps = ["ALL"]', "caps"),
        ('caps = { add = ["SYS_ADMN"] }', "caps.add[0]"),
        ('caps = { drop = ["x"] }', "caps.drop[0]"),
        ('caps = "NET_RAW"', "caps"),
        ("caps = [1]", "caps[0]"),
        ('caps = { keep = ["x"] }', "caps.keep"),
    ],
)
def test_caps_invalid(tmp_path: Path, body: str, key: str) -> None:
    error = load_error(tmp_path, body + "\n")
    assert error.key == key


def test_caps_typo_suggests_name(tmp_path: Path) -> None:
    error = load_error(tmp_path, 'caps = ["NET_RAWW"]\n')
    assert "NET_RAW" in (error.hint or "")


# --- hooks -----------------------------------------------------------------------------------


def test_hooks_default_empty(tmp_path: Path) -> None:
    config = load(tmp_path)
    assert config.post_up == ""
    assert config.pre_down == ""


def test_hooks_values(tmp_path: Path) -> None:
    config = load(tmp_path, '[hooks]\npost_up = "./scripts/ready.sh"\npre_down = "echo bye"\n')
    assert config.post_up == "./scripts/ready.sh"
    assert config.pre_down == "echo bye"
    assert config.origin["hooks.post_up"] == (".alca.toml",)
    assert config.origin["hooks.pre_down"] == (".alca.toml",)


def test_hooks_unknown_key(tmp_path: Path) -> None:
    error = load_error(tmp_path, '[hooks]\npost_down = "x"\n')
    assert error.key == "hooks.post_down"


# --- extends / includes (shape only; the graph is in test_config_layering) ----------------------


def test_extends_and_includes_default_empty(tmp_path: Path) -> None:
    config = load(tmp_path)
    assert config.files == ((tmp_path / ".alca.toml").resolve(),)
    assert config.config_file == tmp_path / ".alca.toml"
    assert config.project_root == tmp_path


def test_extends_and_includes_take_part(tmp_path: Path) -> None:
    write(tmp_path / "base.toml", 'image = "debian"\n')
    write(tmp_path / "local.toml", '[envs]\nX = "1"\n')
    config = load(tmp_path, 'extends = ["base.toml"]\nincludes = ["local.toml"]\n')
    assert config.image == "alpine:3.21"
    assert config.envs["X"] == EnvVar("1")
    assert set(config.files) == {
        (tmp_path / n).resolve() for n in (".alca.toml", "base.toml", "local.toml")
    }


@pytest.mark.parametrize("body", ['extends = "base.toml"\n', "includes = [1]\n"])
def test_extends_includes_wrong_type(tmp_path: Path, body: str) -> None:
    error = load_error(tmp_path, body)
    assert error.key is not None
    assert error.key.startswith(("extends", "includes"))


# --- whole file ------------------------------------------------------------------------------


def test_every_field_at_once(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        'workdir = "/src"\n'
        'workdir_exclude = ["**/.env"]\n'
        'runtime = "podman"\n'
        'mounts = ["~/.cache:/cache:ro"]\n'
        'caps = ["NET_RAW"]\n'
        '[commands]\nup = "make"\nenter = "sh -c"\n'
        '[resources]\nmemory = "2g"\ncpus = 1.5\n'
        '[envs]\nA = "b"\n'
        '[network]\nlan-access = ["10.0.0.1"]\nports = ["80"]\nproxy = "10.0.0.2:3128"\n'
        '[hooks]\npost_up = "a"\npre_down = "b"\n',
        environ={"HOME": "/home/u"},
    )
    assert (config.workdir, config.runtime, config.memory, config.cpus) == (
        "/src",
        "podman",
        "2g",
        1.5,
    )
    assert config.workdir_exclude == ("**/.env",)
    assert config.mounts == (Mount("/home/u/.cache", "/cache", True, ()),)
    assert config.caps.add[-1] == "NET_RAW"
    assert config.up == Command("make")
    assert config.enter == Command("sh -c")
    assert config.envs["A"] == EnvVar("b")
    assert config.lan_access == ("10.0.0.1",)
    assert config.ports == (PortMapping(80, 80, None, "tcp"),)
    assert config.proxy_text == "10.0.0.2:3128"
    assert (config.post_up, config.pre_down) == ("a", "b")
    expected_keys = {
        "image",
        "workdir",
        "workdir_exclude",
        "runtime",
        "mounts[0]",
        "caps",
        "commands.up",
        "commands.enter",
        "resources.memory",
        "resources.cpus",
        "envs.A",
        "network.lan-access[0]",
        "network.ports",
        "network.proxy",
        "hooks.post_up",
        "hooks.pre_down",
    }
    assert set(config.origin) == expected_keys
    assert all(files == (".alca.toml",) for files in config.origin.values())


def test_unknown_top_level_key_rejected_with_suggestion(tmp_path: Path) -> None:
    error = load_error(tmp_path, 'imag = "x"\n')
    assert error.key == "imag"
    assert "`image`" in error.message
    assert error.line == 2


def test_key_in_wrong_table_points_to_the_right_one(tmp_path: Path) -> None:
    error = load_error(tmp_path, 'memory = "4g"\n')
    assert "[resources]" in error.message


def test_no_config_file_is_not_initialized(tmp_path: Path) -> None:
    with pytest.raises(NotInitializedError) as info:
        load_config(tmp_path, environ={}, cwd=tmp_path)
    assert info.value.exit_code == ExitCode.NOT_INITIALIZED
    assert "run 'alca init' first" in info.value.message


def test_invalid_toml_reports_line(tmp_path: Path) -> None:
    write(tmp_path / ".alca.toml", 'image = "x"\nworkdir = \n')
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, environ={}, cwd=tmp_path)
    assert info.value.line == 2
    assert "invalid TOML" in info.value.message


def test_loading_writes_nothing(tmp_path: Path) -> None:
    from tests.conftest import tree_snapshot

    write(tmp_path / "base.toml", 'mounts = ["./x:/x"]\n')
    write(tmp_path / ".alca.toml", 'image = "a"\nextends = ["base.toml"]\n')
    before = tree_snapshot(tmp_path)
    load_config(tmp_path, environ={}, cwd=tmp_path)
    assert tree_snapshot(tmp_path) == before
