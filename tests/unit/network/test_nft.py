"""nftables rendering (golden files, checked by the kernel with `nft -c`), parsing, planning."""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alcatraz.config.netgrammar import parse_lan_access, parse_proxy
from alcatraz.config.netgrammar.egress import EgressRule
from alcatraz.network import nft
from alcatraz.network.firewall import parse_table
from alcatraz.network.plan import (
    BLOCKED4,
    BLOCKED6,
    POOL4,
    ProjectNetwork,
    choose_subnet,
    make_policy,
    network_name,
    project_key,
)

GOLDEN = Path(__file__).parent / "golden"
PROJECT_ID = "0f3a9c1e-2b44-4d6a-9e55-1234567890ab"
NETWORK = ProjectNetwork(
    network_name(PROJECT_ID),
    network_name(PROJECT_ID),
    ipaddress.IPv4Network("10.213.7.0/24"),
    ipaddress.IPv4Address("10.213.7.1"),
)

CASES = {
    "default": ([], None),
    "allow-all": (["*"], None),
    "exceptions": (
        [
            "192.168.250.2:18080",
            "udp://10.77.0.2:17000",
            "*://[fd00:250::2]:18080",
            "tcp://10.77.0.0/24:18081",
            "${alca:HOST_IP}:19001",
            "10.1.0.0/16",
            "[fd00::/8]:*",
            "192.168.1.10:8000-8100",
        ],
        None,
    ),
    "proxy-v4": ([], "${alca:HOST_IP}:3128"),
    "proxy-v6": (["[2001:db8::1]:1080"], "[2001:db8::1]:1080"),
    "proxy-allow-all": (["*"], "${alca:HOST_IP}:3128"),
}
#: Policies with `network.egress` (the project's own daemon on the gateway).
EGRESS_CASES = {
    "egress-empty": (),
    "egress-names": (
        EgressRule("example.com", False, None, (), None),
        EgressRule("example.org", True, None, ("tcp",), (443, 443)),
        EgressRule(
            None, False, ipaddress.IPv4Network("203.0.113.0/30"), ("tcp", "udp"), (443, 443)
        ),
        EgressRule(None, False, ipaddress.IPv6Network("2001:db8::/32"), (), None),
    ),
}


def _policy(name: str) -> object:
    if name in EGRESS_CASES:
        return make_policy(
            PROJECT_ID,
            NETWORK,
            allow_all=False,
            rules=(),
            proxy=None,
            egress=EGRESS_CASES[name],
            own_resolver=True,
        )
    rules, proxy = CASES[name]
    allow_all, parsed = parse_lan_access(rules)
    return make_policy(
        PROJECT_ID,
        NETWORK,
        allow_all=allow_all,
        rules=parsed,
        proxy=parse_proxy(proxy) if proxy else None,
    )


#: Golden file prefix -> renderer: the host's table, and the layer in the sandbox's namespace.
RENDERERS = {
    "": lambda policy: nft.apply_script(policy, {}),
    "guard-": nft.guard_script,
}
GOLDEN_CASES = [(prefix, name) for prefix in RENDERERS for name in sorted([*CASES, *EGRESS_CASES])]


@pytest.mark.parametrize(("prefix", "name"), GOLDEN_CASES)
def test_rendered_rules_match_golden_files(prefix: str, name: str) -> None:
    """A change in generated rules fails here until the golden file is reviewed and updated."""
    script = RENDERERS[prefix](_policy(name))
    golden = GOLDEN / f"{prefix}{name}.nft"
    if os.environ.get("ALCA_UPDATE_GOLDEN"):
        golden.write_text(script)
    assert script == golden.read_text(), f"regenerate with ALCA_UPDATE_GOLDEN=1 and review {golden}"


@pytest.mark.skipif(
    shutil.which("nft") is None or os.geteuid() != 0, reason="nft -c needs nft and root"
)
@pytest.mark.parametrize(("prefix", "name"), GOLDEN_CASES)
def test_golden_rules_are_accepted_by_the_kernel(prefix: str, name: str) -> None:
    """`nft -c` asks the kernel to validate without committing anything."""
    result = subprocess.run(
        ["nft", "-c", "-f", str(GOLDEN / f"{prefix}{name}.nft")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_default_policy_drops_every_special_range_in_both_chains() -> None:
    script = nft.project_chains(_policy("default"))  # type: ignore[arg-type]
    fwd_drop = next(
        line for line in script.splitlines() if "_fwd ip daddr {" in line and "drop" in line
    )
    for network in BLOCKED4:
        assert str(network) in fwd_drop
    fwd_drop6 = next(line for line in script.splitlines() if "_fwd ip6 daddr {" in line)
    for network6 in BLOCKED6:
        assert str(network6) in fwd_drop6
    inp = [line for line in script.splitlines() if "_in " in line]
    assert inp[-1].endswith("counter drop"), "everything else to the host itself is dropped"
    assert any("udp dport 53 accept" in line and "10.213.7.1" in line for line in inp)


def test_token_rule_opens_exactly_the_gateway_port() -> None:
    script = nft.project_chains(_policy("exceptions"))  # type: ignore[arg-type]
    assert "ip daddr 10.213.7.1/32 tcp dport 19001 accept" in script
    assert "tcp dport 8000-8100 accept" in script


def test_ipv6_rule_with_ipv4_network_is_valid_per_family() -> None:
    """Upstream B6: a v6 exception next to a v4 container produced an invalid ruleset."""
    script = nft.project_chains(_policy("exceptions"))  # type: ignore[arg-type]
    assert "ip6 daddr fd00:250::2/128 tcp dport 18080 accept" in script
    assert "ip saddr" not in script  # rules key on the bridge, never on a container address


def test_allow_all_accepts_and_registers_the_bridge() -> None:
    policy = _policy("allow-all")
    script = nft.apply_script(policy, {})  # type: ignore[arg-type]
    assert f"add rule inet alcatraz p_{project_key(PROJECT_ID)}_fwd accept" in script
    assert f'"{NETWORK.interface}" : jump p_{project_key(PROJECT_ID)}_fwd' in script


def test_proxy_never_redirects_lan_or_itself() -> None:
    script = nft.project_chains(_policy("proxy-v4"))  # type: ignore[arg-type]
    nat = [line for line in script.splitlines() if "_nat " in line and "add rule" in line]
    assert nat[0].endswith("ip daddr 10.213.7.1 return")
    assert "return" in nat[1] and "192.168.0.0/16" in nat[1]
    assert nat[-1].endswith("dnat ip to 10.213.7.1:3128")
    v6 = nft.project_chains(_policy("proxy-v6"))  # type: ignore[arg-type]
    assert "dnat ip6 to [2001:db8::1]:1080" in v6


def test_proxy_redirects_under_allow_all_too() -> None:
    """Issue #15: `lan-access = ["*"]` with a proxy applied no DNAT (the Go tool redirects)."""
    script = nft.project_chains(_policy("proxy-allow-all"))  # type: ignore[arg-type]
    lines = script.splitlines()
    nat = [line for line in lines if "_nat " in line and "add rule" in line]
    assert nat[-1].endswith("dnat ip to 10.213.7.1:3128"), nat
    assert any("return" in line and "192.168.0.0/16" in line for line in nat), "LAN goes direct"
    fwd = [line for line in lines if "_fwd " in line and "add rule" in line]
    lan_accept = next(i for i, line in enumerate(fwd) if "192.168.0.0/16" in line)
    tcp_drop = next(i for i, line in enumerate(fwd) if "meta l4proto tcp counter drop" in line)
    assert fwd[lan_accept].endswith("accept") and lan_accept < tcp_drop, fwd
    assert fwd[-1].startswith(f"add rule inet alcatraz p_{project_key(PROJECT_ID)}_fwd accept")
    inp = [line for line in lines if "_in " in line and "add rule" in line]
    assert inp == [f"add rule inet alcatraz p_{project_key(PROJECT_ID)}_in accept {_tag(script)}"]


def _tag(script: str) -> str:
    return next(line for line in script.splitlines() if "comment" in line).split(" accept ")[-1]


@pytest.mark.parametrize("name", ["proxy-v4", "proxy-allow-all"])
def test_proxy_host_port_is_open_to_tcp_and_udp_in_both_layers(name: str) -> None:
    """As in the Go tool: the filter lets TCP and UDP reach the proxy's host:port."""
    policy = _policy(name)
    host = nft.project_chains(policy)  # type: ignore[arg-type]
    key = project_key(PROJECT_ID)
    for proto in ("tcp", "udp"):
        rule = f"ip daddr 10.213.7.1 {proto} dport 3128 accept"
        assert f"p_{key}_fwd {rule}" in host, (proto, host)
        if name == "proxy-v4":
            assert f"p_{key}_in {rule}" in host, (proto, host)
            assert f"output {rule}" in nft.guard_script(policy), proto  # type: ignore[arg-type]
    assert "udp dport 3128 dnat" not in host, "UDP is never redirected"


def test_dispatch_replaces_a_stale_entry_for_the_same_bridge() -> None:
    script = nft.dispatch_elements(
        _policy("default"),  # type: ignore[arg-type]
        {"fwd_dispatch": {NETWORK.interface}},
    )
    lines = script.splitlines()
    assert lines[0] == f'delete element inet alcatraz fwd_dispatch {{ "{NETWORK.interface}" }}'
    assert not any("delete element inet alcatraz in_dispatch" in line for line in lines)


def test_removal_only_touches_what_exists() -> None:
    key = project_key(PROJECT_ID)
    assert nft.removal_script(key, ["x"], {}, set()) == ""
    script = nft.removal_script(
        key, ["x"], {"in_dispatch": {"x"}}, {f"p_{key}_fwd", f"p_{key}_seen4"}
    )
    assert script.splitlines() == [
        'delete element inet alcatraz in_dispatch { "x" }',
        f"flush chain inet alcatraz p_{key}_fwd",
        f"delete chain inet alcatraz p_{key}_fwd",
        f"delete set inet alcatraz p_{key}_seen4",
    ]


@pytest.mark.parametrize("bad", ['a"b', "a\nb", "a;b", "a\\b"])
def test_interface_names_cannot_inject(bad: str) -> None:
    with pytest.raises(ValueError):
        nft._q(bad)


def test_parse_table_reads_dispatch_tags_counters_and_seen() -> None:
    document = json.loads((GOLDEN / "table.json").read_text())
    state = parse_table(document)
    assert state.exists
    assert state.dispatch["fwd_dispatch"] == {"alca-dfe8ff8eda": "p_dfe8ff8eda_fwd"}
    assert state.tags["p_dfe8ff8eda_fwd"].startswith("alcatraz dfe8ff8eda ")
    assert state.counters["p_dfe8ff8eda_in"] == 4
    assert ("172.17.0.1", 2) in state.seen["p_dfe8ff8eda_seen4"]


def test_choose_subnet_avoids_routes_and_other_networks() -> None:
    first = choose_subnet(PROJECT_ID, [])
    assert first.subnet_of(POOL4) and first.prefixlen == 24
    second = choose_subnet(PROJECT_ID, [first])
    assert second != first and not second.overlaps(first)


def test_choose_subnet_refuses_when_the_pool_is_full() -> None:
    from alcatraz.errors import RefusedError

    with pytest.raises(RefusedError, match="no free"):
        choose_subnet(PROJECT_ID, [ipaddress.ip_network("10.0.0.0/8")])


@given(st.lists(st.integers(min_value=0, max_value=255), max_size=60))
def test_choose_subnet_never_overlaps_what_is_taken(indices: list[int]) -> None:
    taken = [ipaddress.IPv4Network(f"10.213.{i}.0/24") for i in indices]
    chosen = choose_subnet(PROJECT_ID, taken)
    assert not any(chosen.overlaps(t) for t in taken)


def test_project_names_fit_an_interface_name() -> None:
    assert len(network_name(PROJECT_ID)) <= 15
    assert project_key(PROJECT_ID) == "0f3a9c1e2b"


def test_an_emptied_project_chain_fails_closed() -> None:
    """Dispatch jumps, and the internet is an explicit accept at the end of the project chain:
    if someone flushes the chain, packets return to the base chain's backstop drop."""
    script = nft.apply_script(_policy("default"), {})  # type: ignore[arg-type]
    key = project_key(PROJECT_ID)
    assert f'"{NETWORK.interface}" : jump p_{key}_fwd' in script
    fwd_rules = [
        line for line in script.splitlines() if f"add rule inet alcatraz p_{key}_fwd" in line
    ]
    assert fwd_rules[-1].startswith(f"add rule inet alcatraz p_{key}_fwd accept comment")
    base = nft.base_script().splitlines()
    vmap = base.index("add rule inet alcatraz forward iifname vmap @fwd_dispatch")
    assert "iifname @bridges counter drop" in base[vmap + 1]
    assert f'add element inet alcatraz bridges {{ "{NETWORK.interface}" }}' in script


def test_with_a_proxy_tcp_leaves_only_through_it() -> None:
    script = nft.project_chains(_policy("proxy-v6"))  # type: ignore[arg-type]
    fwd = [line for line in script.splitlines() if "_fwd " in line and "add rule" in line]
    proxy_at = next(i for i, line in enumerate(fwd) if "2001:db8::1 udp dport 1080 accept" in line)
    assert "2001:db8::1 tcp dport 1080 accept" in fwd[proxy_at - 1]
    assert fwd[proxy_at + 1].endswith("meta l4proto tcp counter drop")


def test_persisted_table_keeps_dispatch_but_not_seen_addresses() -> None:
    from alcatraz.network.helper import persistable

    dump = (
        "table inet alcatraz {\n"
        "\tmap fwd_dispatch {\n"
        "\t\ttype ifname : verdict\n"
        '\t\telements = { "alca-x" : jump p_x_fwd }\n'
        "\t}\n"
        "\tset bridges {\n"
        "\t\ttype ifname\n"
        '\t\telements = { "alca-x" }\n'
        "\t}\n"
        "\tset p_x_seen4 {\n"
        "\t\ttype ipv4_addr\n"
        "\t\tflags dynamic,timeout\n"
        "\t\telements = { 10.0.0.1 counter packets 2 bytes 120 expires 23h59m,\n"
        "\t\t\t     172.17.0.1 counter packets 1 bytes 60 expires 23h58m }\n"
        "\t}\n"
        "}\n"
    )
    saved = persistable(dump)
    assert '"alca-x" : jump p_x_fwd' in saved
    assert 'elements = { "alca-x" }' in saved
    assert "10.0.0.1" not in saved and "172.17.0.1" not in saved
    assert saved.count("{") == saved.count("}")


def test_persisted_table_drops_egress_runtime_sets_but_keeps_the_host_lan() -> None:
    """After a boot nothing passes until the daemon runs: no allowed address, no heartbeat;
    the last known host LANs stay blocked."""
    from alcatraz.network.helper import persistable

    def named_set(name: str, elements: str) -> str:
        return f"\tset {name} {{\n\t\ttype ipv4_addr\n\t\telements = {{ {elements} }}\n\t}}\n"

    dump = (
        "table inet alcatraz {\n"
        + named_set("p_x_ea4", "203.0.113.7 timeout 5m expires 4m")
        + named_set("p_x_ep4", "203.0.113.8 . tcp . 443 timeout 5m expires 4m")
        + named_set("p_x_ea6", "2001:db8::7 timeout 5m expires 4m")
        + named_set("p_x_live", '"alca-x" timeout 15s expires 9s')
        + named_set("p_x_lan4", "198.51.100.0/24")
        + "}\n"
    )
    saved = persistable(dump)
    for gone in ("203.0.113.7", "203.0.113.8", "2001:db8::7", '"alca-x"'):
        assert gone not in saved
    assert "198.51.100.0/24" in saved
    assert saved.count("{") == saved.count("}")


# --- the second layer, inside the sandbox's network namespace -------------------------------


def test_guard_drops_what_the_host_chains_drop_after_the_exceptions() -> None:
    lines = nft.guard_script(_policy("exceptions")).splitlines()  # type: ignore[arg-type]
    rules = [line for line in lines if line.startswith("add rule")]
    drop4 = next(i for i, line in enumerate(rules) if "ip daddr {" in line and "drop" in line)
    drop6 = next(i for i, line in enumerate(rules) if "ip6 daddr {" in line and "drop" in line)
    for network in BLOCKED4:
        assert str(network) in rules[drop4]
    for network6 in BLOCKED6:
        assert str(network6) in rules[drop6]
    accepts = [i for i, line in enumerate(rules) if line.endswith(" accept")]
    exceptions = [i for i, line in enumerate(rules) if "192.168.250.2/32 tcp dport 18080" in line]
    assert exceptions and max(exceptions) < drop4
    assert any('oifname "lo" accept' in rules[i] for i in accepts if i < drop4)
    assert any("10.213.7.1 udp dport 53 accept" in rules[i] for i in accepts if i < drop4)
    assert rules[-1].endswith(f'accept comment "{nft.guard_tag(_policy("exceptions"))}"')  # type: ignore[arg-type]


def test_guard_with_lan_access_all_only_removes_the_table() -> None:
    assert nft.guard_script(_policy("allow-all")).splitlines() == [  # type: ignore[arg-type]
        "add table inet alcatraz_guard",
        "delete table inet alcatraz_guard",
    ]


#: IPv6 prefixes that embed any IPv4 address, public ones included (NAT64, 6to4)
EMBEDDING_IPV4 = ("64:ff9b::/96", "2002::/16")


def test_allow_all_proxy_tcp_to_ipv4_embedding_prefixes_never_goes_direct() -> None:
    """`["*"]` means private destinations directly; 64:ff9b::/96 and 2002::/16 reach public
    IPv4 hosts too, so TCP to them must be dropped (or redirected), never accepted."""
    script = nft.project_chains(_policy("proxy-allow-all"))  # type: ignore[arg-type]
    fwd = [line for line in script.splitlines() if "_fwd " in line and "add rule" in line]
    tcp_drop = next(i for i, line in enumerate(fwd) if "meta l4proto tcp counter drop" in line)
    for prefix in EMBEDDING_IPV4:
        direct = [
            line
            for line in fwd[:tcp_drop]
            if prefix in line and line.endswith("accept") and "tcp" not in line
        ]
        assert not direct, (prefix, direct)


# --- egress by name ---------------------------------------------------------------------------


def _rules_of(script: str, chain_suffix: str) -> list[str]:
    return [
        line
        for line in script.splitlines()
        if line.startswith("add rule") and f"_{chain_suffix} " in line
    ]


def test_egress_forward_order_keeps_tcp_to_names_behind_the_checker() -> None:
    script = nft.apply_script(_policy("egress-names"), {})  # type: ignore[arg-type]
    fwd = _rules_of(script, "fwd")
    lan = next(i for i, line in enumerate(fwd) if "@p_0f3a9c1e2b_lan4" in line)
    live = next(i for i, line in enumerate(fwd) if "!= @p_0f3a9c1e2b_live" in line)
    cidr = next(i for i, line in enumerate(fwd) if "203.0.113.0/30 tcp dport 443 accept" in line)
    tcp_drop = next(
        i
        for i, line in enumerate(fwd)
        if "meta l4proto tcp ip daddr @p_0f3a9c1e2b_ea4 counter drop" in line
    )
    named_accept = next(
        i for i, line in enumerate(fwd) if line.endswith("ip daddr @p_0f3a9c1e2b_ea4 accept")
    )
    assert lan < live < cidr < tcp_drop < named_accept
    assert fwd[-1].endswith('counter drop comment "egress: not allowed"')
    # no unconditional accept of the internet
    assert not any(line.split("_fwd ", 1)[1].startswith("accept") for line in fwd)


def test_egress_redirects_tcp_to_named_addresses_only_to_the_checker() -> None:
    from alcatraz.network.egress.rules import CHECKER_PORT, MARK

    script = nft.apply_script(_policy("egress-names"), {})  # type: ignore[arg-type]
    nat = _rules_of(script, "nat")
    redirects = [line for line in nat if "redirect" in line]
    assert len(redirects) == 2 and all(
        line.endswith(f"redirect to :{CHECKER_PORT}") for line in redirects
    )
    first_redirect = nat.index(redirects[0])
    assert all(line.endswith("return") for line in nat[:first_redirect])
    inp = _rules_of(script, "in")
    marked = [line for line in inp if f"socket mark {MARK:#x} accept" in line]
    assert len(marked) == 3  # DNS udp, DNS tcp, the checker
    assert not any("dport 53 accept" in line for line in inp)


def test_without_egress_the_internet_stays_open_but_the_host_lan_is_dropped() -> None:
    script = nft.apply_script(_policy("default"), {})  # type: ignore[arg-type]
    fwd = _rules_of(script, "fwd")
    lan = next(i for i, line in enumerate(fwd) if "@p_0f3a9c1e2b_lan4" in line)
    assert fwd[-1].split("_fwd ", 1)[1].startswith("accept") and lan < len(fwd) - 1
    assert "_ea4" not in script and "redirect" not in script
