"""`[network] egress` and `[network] dns` through the whole loader: normalise, merge,
finalise, the cross-key refusals and `config show` (issue 15, decision 0014)."""

from __future__ import annotations

from ipaddress import IPv4Network
from pathlib import Path

import pytest

from alcatraz.config.fields import BY_KEY, Merge
from alcatraz.config.load import Config, load_config
from alcatraz.config.netgrammar import EgressRule
from alcatraz.config.show import document, origins, render_text
from alcatraz.errors import ConfigError, ExitCode

IMAGE = 'image = "alpine:3.21"\n'


def load(root: Path, files: dict[str, str]) -> Config:
    for name, text in files.items():
        (root / name).write_text(text, encoding="utf-8")
    return load_config(root, environ={"HOME": str(root / "home")}, cwd=root)


def load_error(root: Path, files: dict[str, str]) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load(root, files)
    assert caught.value.exit_code == ExitCode.CONFIG
    return caught.value


def test_absent_everywhere_is_none_and_left_out_of_the_document(tmp_path: Path) -> None:
    config = load(tmp_path, {".alca.toml": IMAGE})
    assert config.egress is None
    assert config.dns == ()
    network = document(config)["network"]
    assert "egress" not in network and "dns" not in network  # existing approvals still hold
    assert "# egress is not set: the sandbox may reach any internet address" in render_text(config)


def test_an_empty_list_is_present_and_means_no_internet(tmp_path: Path) -> None:
    config = load(tmp_path, {".alca.toml": IMAGE + "[network]\negress = []\n"})
    assert config.egress == ()
    assert document(config)["network"]["egress"] == []
    assert origins(config)["network.egress"] == ".alca.toml"
    assert "egress = []  # .alca.toml" in render_text(config)


def test_entries_are_parsed_into_rules(tmp_path: Path) -> None:
    body = '[network]\negress = ["example.com", "203.0.113.0/24:443", "example.com"]\n'
    config = load(tmp_path, {".alca.toml": IMAGE + body})
    assert config.egress == (
        EgressRule("example.com", False, None, (), None),
        EgressRule(None, False, IPv4Network("203.0.113.0/24"), ("tcp", "udp"), (443, 443)),
    )
    assert config.egress_text == ("example.com", "203.0.113.0/24:443", "example.com")


def test_lists_union_across_files_and_an_empty_list_keeps_it_present(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        {
            ".alca.toml": IMAGE
            + 'extends = ["base.toml"]\nincludes = ["top.toml"]\n'
            + '[network]\negress = ["b.example"]\n',
            "base.toml": '[network]\negress = ["a.example"]\n',
            "top.toml": "[network]\negress = []\n",
        },
    )
    assert config.egress is not None
    assert [r.name for r in config.egress] == ["a.example", "b.example"]
    shown = origins(config)
    assert shown["network.egress[0]"] == "base.toml"
    assert shown["network.egress[1]"] == ".alca.toml"
    assert shown["network.egress"] == "base.toml, .alca.toml, top.toml"


def test_an_empty_list_in_a_lower_file_is_present(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        {
            ".alca.toml": IMAGE + 'extends = ["base.toml"]\n',
            "base.toml": "[network]\negress = []\n",
        },
    )
    assert config.egress == ()


def test_dns_is_canonical_deduplicated_and_the_top_file_wins(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        {
            ".alca.toml": IMAGE
            + 'extends = ["base.toml"]\n[network]\n'
            + 'dns = ["198.51.100.53:53", "[2001:db8::53]:5353", "198.51.100.53"]\n',
            "base.toml": '[network]\ndns = ["192.0.2.1"]\n',
        },
    )
    assert config.dns == ("198.51.100.53", "[2001:db8::53]:5353")
    assert document(config)["network"]["dns"] == ["198.51.100.53", "[2001:db8::53]:5353"]


def test_an_empty_dns_list_keeps_the_one_below(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        {
            ".alca.toml": IMAGE + 'extends = ["base.toml"]\n[network]\ndns = []\n',
            "base.toml": '[network]\ndns = ["198.51.100.53"]\n',
        },
    )
    assert config.dns == ("198.51.100.53",)


def test_the_merge_rules_are_declared_in_the_table() -> None:
    assert BY_KEY["network.egress"].merge is Merge.UNION
    assert BY_KEY["network.dns"].merge is Merge.OVERRIDE
    assert "`[]` in any file" in BY_KEY["network.egress"].rule


def test_egress_with_a_proxy_is_refused_naming_both_files(tmp_path: Path) -> None:
    error = load_error(
        tmp_path,
        {
            ".alca.toml": IMAGE + 'includes = ["proxy.toml"]\n[network]\negress = []\n',
            "proxy.toml": '[network]\nproxy = "203.0.113.1:3128"\n',
        },
    )
    assert error.key == "network.egress"
    assert error.file == ".alca.toml"
    assert "network.proxy" in error.message and "proxy.toml" in error.message
    assert error.hint and "remove network.proxy" in error.hint


def test_egress_with_lan_access_star_is_refused(tmp_path: Path) -> None:
    error = load_error(
        tmp_path,
        {".alca.toml": IMAGE + '[network]\negress = ["example.com"]\nlan-access = ["*"]\n'},
    )
    assert error.key == "network.egress"
    assert 'lan-access = ["*"]' in error.message
    assert error.hint and "list the LAN ranges" in error.hint


def test_lan_access_star_or_a_proxy_without_egress_still_load(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        {".alca.toml": IMAGE + '[network]\nlan-access = ["*"]\nproxy = "203.0.113.1:3128"\n'},
    )
    assert config.allow_all_lan and config.proxy is not None and config.egress is None


def test_egress_with_narrow_lan_access_loads(tmp_path: Path) -> None:
    body = '[network]\negress = ["example.com"]\nlan-access = ["192.168.1.0/24"]\n'
    config = load(tmp_path, {".alca.toml": IMAGE + body})
    assert config.egress is not None and len(config.lan_rules) == 1


@pytest.mark.parametrize(
    ("body", "key", "fragment"),
    [
        ('egress = ["ok.example", "Bad.example"]', "network.egress[1]", "lower case"),
        ('egress = ["10.0.0.0/8"]', "network.egress[0]", "lan-access"),
        ('dns = ["ns.example.com"]', "network.dns[0]", "not a hostname"),
        ('egress = "example.com"', "network.egress", "expected an array"),
        ("egress = [1]", "network.egress[0]", "expected a string"),
    ],
)
def test_bad_entries_name_the_key_and_the_entry(
    tmp_path: Path, body: str, key: str, fragment: str
) -> None:
    error = load_error(tmp_path, {".alca.toml": IMAGE + "[network]\n" + body + "\n"})
    assert error.key == key
    assert fragment in error.message
