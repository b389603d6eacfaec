"""The host-LAN sets: which routes count as the host's LAN, from `ip -j` and /proc output
of typical hosts, the nft transaction, and a sanity check on this machine (reads only)."""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from alcatraz.network.egress.hostlan import (
    HostLan,
    changed,
    current,
    lan_script,
    lan_set_names,
    loopback_interfaces,
    parse_proc,
    parse_routes,
)
from alcatraz.network.plan import POOL4

LO_ADDR = [
    {"ifname": "lo", "flags": ["LOOPBACK", "UP"], "link_type": "loopback", "addr_info": []},
]


def route(dst: str, dev: str, **extra: Any) -> dict[str, Any]:
    return {"dst": dst, "dev": dev, **extra}


def local_table(*pairs: tuple[str, str]) -> list[dict[str, Any]]:
    """What `table all` adds for each address: local and broadcast routes (never LAN)."""
    out = [{"type": "local", "dst": "127.0.0.0/8", "dev": "lo", "table": "local"}]
    for address, dev in pairs:
        out.append({"type": "local", "dst": address, "dev": dev, "table": "local"})
        out.append({"type": "broadcast", "dst": address, "dev": dev, "table": "local"})
    return out


def lan(v4: str, v6: str, addr: list[dict[str, Any]] | None = None) -> HostLan:
    return parse_routes(v4, v6, json.dumps(addr if addr is not None else LO_ADDR))


def nets(hostlan: HostLan) -> list[str]:
    return [str(n) for n in (*hostlan.nets4, *hostlan.nets6)]


# --- fixtures: `ip -j -4/-6 route show table all` of typical hosts ----------------------

LAPTOP4 = json.dumps(
    [
        route("default", "wlp0s20f3", gateway="192.168.1.1", protocol="dhcp", metric=600),
        route("192.168.1.0/24", "wlp0s20f3", protocol="kernel", scope="link"),
        route("169.254.0.0/16", "wlp0s20f3", scope="link", metric=1000),  # avahi's zeroconf
        *local_table(("192.168.1.23", "wlp0s20f3")),
    ]
)
LAPTOP6 = json.dumps(
    [
        route("::1", "lo", protocol="kernel"),
        route("2001:db8:1234:5600::/64", "wlp0s20f3", protocol="ra", expires=86000),
        route("fe80::/64", "wlp0s20f3", protocol="kernel"),
        route("default", "wlp0s20f3", gateway="fe80::1", protocol="ra"),
        {"type": "local", "dst": "2001:db8:1234:5600::23", "dev": "wlp0s20f3", "table": "local"},
        {"type": "anycast", "dst": "2001:db8:1234:5600::", "dev": "wlp0s20f3", "table": "local"},
        {"type": "multicast", "dst": "ff00::/8", "dev": "wlp0s20f3", "table": "local"},
    ]
)
CLOUD4 = json.dumps(
    [
        route("default", "eth0", gateway="198.51.96.1", protocol="dhcp", prefsrc="198.51.100.50"),
        route("169.254.169.254", "eth0", gateway="198.51.96.1", protocol="dhcp"),
        route("198.51.96.0/20", "eth0", protocol="kernel", scope="link"),
        route("198.51.96.1", "eth0", protocol="dhcp", scope="link"),
        *local_table(("198.51.100.50", "eth0")),
    ]
)
CLOUD6 = json.dumps(
    [
        route("2001:db8:a:b::/64", "eth0", protocol="kernel"),
        route("fe80::/64", "eth0", protocol="kernel"),
        route("default", "eth0", gateway="2001:db8:a:1::1", protocol="static", flags=["onlink"]),
    ]
)
DOCKER4 = json.dumps(
    [
        route("default", "eth0", gateway="203.0.113.1", flags=["onlink"]),
        route("203.0.113.77", "eth0", protocol="kernel", scope="link"),
        route("172.17.0.0/16", "docker0", protocol="kernel", scope="link", flags=["linkdown"]),
        route("172.18.0.0/16", "br-5f1c2a3b4d5e", protocol="kernel", scope="link"),
        route("10.88.0.0/16", "podman0", protocol="kernel", scope="link"),
        route("10.213.7.0/24", "alca-0123456789", protocol="kernel", scope="link"),
        route("10.214.0.0/24", "alca-abcdef0123", protocol="kernel", scope="link"),
        route("10.213.9.0/24", "br-0a1b2c3d4e5f", protocol="kernel", scope="link"),
        route("10.213.12.0/24", "podman3", protocol="kernel", scope="link"),
        *local_table(("172.17.0.1", "docker0"), ("10.213.7.1", "alca-0123456789")),
    ]
)
DOCKER6 = json.dumps(
    [
        route("fd00:dead:beef::/48", "docker0", protocol="kernel"),
        route("fd00:a1ca::/64", "alca-0123456789", protocol="kernel"),
        route("fe80::/64", "docker0", protocol="kernel"),
        {"type": "unreachable", "dst": "::/96", "dev": "lo"},
    ]
)
VPN4 = json.dumps(
    [
        route("default", "eth0", gateway="192.168.178.1", protocol="dhcp"),
        route("192.168.178.0/24", "eth0", protocol="kernel", scope="link"),
        route("10.8.0.0/24", "wg0", protocol="kernel", scope="link"),
        route("default", "wg0", table="51820"),  # wg-quick full tunnel
        route("0.0.0.0/1", "tun0", scope="link"),  # OpenVPN-style split default
        route("128.0.0.0/1", "tun0", scope="link"),
        route("100.101.1.2", "tailscale0", table="52"),
        route("100.100.100.100", "tailscale0", table="52"),
        route("198.51.100.0/24", "tailscale0", table="52"),  # a subnet router's public LAN
        route("default", "tailscale0", table="52"),  # exit node
        {"type": "throw", "dst": "127.0.0.0/8", "table": "52"},
        {"type": "blackhole", "dst": "203.0.113.0/30"},
    ]
)
VPN6 = json.dumps(
    [
        route("fd7a:115c:a1e0::/48", "tailscale0", table="52"),
        route("2000::/3", "tun0", protocol="static"),
        route("default", "wg0", table="51820"),
        route("2001:db8:77::/64", "wg0", protocol="static"),  # a VPN-reached LAN
    ]
)


def test_laptop_on_wifi_with_a_global_ipv6_prefix() -> None:
    hostlan = lan(LAPTOP4, LAPTOP6)
    # the gateway is inside the on-link /24 (collapsed); link-local and multicast are
    # blocked anyway
    assert nets(hostlan) == ["192.168.1.0/24", "2001:db8:1234:5600::/64"]


def test_cloud_vm_on_a_public_20_with_its_gateway() -> None:
    hostlan = lan(CLOUD4, CLOUD6)
    # routed destinations (the metadata /32 via the gateway) are not LAN; the default
    # gateway is, as a host network, even when no on-link prefix holds it
    assert nets(hostlan) == ["198.51.96.0/20", "2001:db8:a:1::1/128", "2001:db8:a:b::/64"]


def test_engine_bridges_outside_the_pool_count_alcatraz_and_pool_bridges_do_not() -> None:
    hostlan = lan(DOCKER4, DOCKER6)
    assert nets(hostlan) == [
        "10.88.0.0/16",
        "172.17.0.0/16",
        "172.18.0.0/16",
        "203.0.113.1/32",  # default gateway, onlink outside the host's /32
        "203.0.113.77/32",
        "fd00:dead:beef::/48",
    ]
    assert not any(n.overlaps(POOL4) for n in hostlan.nets4)


def test_vpn_full_tunnels_are_not_lan_but_its_on_link_networks_are() -> None:
    hostlan = lan(VPN4, VPN6)
    assert nets(hostlan) == [
        "10.8.0.0/24",
        "100.100.100.100/32",
        "100.101.1.2/32",
        "192.168.178.0/24",
        "198.51.100.0/24",
        "2001:db8:77::/64",
        "fd7a:115c:a1e0::/48",
    ]


def test_multipath_and_ipv6_next_hop_defaults_give_every_gateway() -> None:
    v4 = json.dumps(
        [
            {
                "dst": "default",
                "nexthops": [
                    {"gateway": "203.0.113.1", "dev": "eth0", "weight": 1},
                    {"gateway": "203.0.113.129", "dev": "eth1", "weight": 1},
                ],
            },
            # RFC 5549: an IPv4 default via an IPv6 next hop
            {"dst": "default", "via": {"family": "inet6", "host": "2001:db8::1"}, "dev": "eth2"},
            {"dst": "default", "via": {"family": "inet6", "host": "fe80::1"}, "dev": "eth3"},
        ]
    )
    assert nets(lan(v4, "[]")) == ["203.0.113.1/32", "203.0.113.129/32", "2001:db8::1/128"]


def test_any_loopback_interface_is_left_out_not_only_lo() -> None:
    v4 = json.dumps([route("198.51.100.0/24", "lo1"), route("203.0.113.0/30", "eth0")])
    addr = [*LO_ADDR, {"ifname": "lo1", "flags": ["LOOPBACK", "UP"], "link_type": "loopback"}]
    assert nets(lan(v4, "", addr)) == ["203.0.113.0/30"]
    assert nets(lan(v4, "")) == ["198.51.100.0/24", "203.0.113.0/30"]


def test_empty_output_is_an_empty_lan_and_garbage_is_refused() -> None:
    assert lan("", "") == HostLan((), ())
    assert lan("[]", "[]", []).describe() == "none"
    with pytest.raises(ValueError):
        parse_routes('{"dst": "default"}', "[]", "[]")


# --- /proc ------------------------------------------------------------------------------

NONE4 = "0.0.0.0"  # noqa: S104 (no gateway / default / mask 0, not a bind)
PROC_HEADER = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT"


def proc4(*rows: tuple[str, str, str, int, str]) -> str:
    """/proc/net/route rows (dev, dst, gateway, flags, mask), little-endian words."""

    def word(address: str) -> str:
        return f"{int.from_bytes(ipaddress.IPv4Address(address).packed, 'little'):08X}"

    lines = [PROC_HEADER]
    for dev, dst, gateway, flags, mask in rows:
        lines.append(
            f"{dev}\t{word(dst)}\t{word(gateway)}\t{flags:04X}\t0\t0\t0\t{word(mask)}\t0\t0\t0"
        )
    return "\n".join(lines) + "\n"


def proc6(*rows: tuple[str, int, str, int, str]) -> str:
    """/proc/net/ipv6_route rows (dst, dst_len, next hop, flags, dev)."""

    def word(address: str) -> str:
        return ipaddress.IPv6Address(address).packed.hex()

    zero = word("::")
    return "".join(
        f"{word(dst)} {plen:02x} {zero} 00 {word(hop)} 00000100 00000001 00000000 "
        f"{flags:08x} {dev:>8}\n"
        for dst, plen, hop, flags, dev in rows
    )


LAPTOP_PROC4 = proc4(
    ("wlp0s20f3", NONE4, "192.168.1.1", 0x0003, NONE4),
    ("wlp0s20f3", "192.168.1.0", NONE4, 0x0001, "255.255.255.0"),
    ("wlp0s20f3", "169.254.0.0", NONE4, 0x0001, "255.255.0.0"),
    ("wlp0s20f3", "203.0.113.0", NONE4, 0x0201, "255.255.255.252"),  # unreachable
)
LAPTOP_PROC6 = proc6(
    ("2001:db8:1234:5600::", 64, "::", 0x00040001, "wlp0s20f3"),
    ("fe80::", 64, "::", 0x00000001, "wlp0s20f3"),
    ("::", 0, "fe80::1", 0x00040003, "wlp0s20f3"),
    ("::1", 128, "::", 0x80200001, "lo"),
    ("2001:db8:1234:5600::23", 128, "::", 0x80200001, "wlp0s20f3"),  # local
    ("2001:db8:1234:5600::", 128, "::", 0x80100001, "wlp0s20f3"),  # anycast
    ("ff00::", 8, "::", 0x00000001, "wlp0s20f3"),
    ("::", 0, "::", 0x00200200, "lo"),  # the null route
)


def test_proc_laptop_reads_as_the_ip_json_laptop() -> None:
    assert parse_proc(LAPTOP_PROC4, LAPTOP_PROC6, byteorder="little") == lan(LAPTOP4, LAPTOP6)


def test_proc_cloud_vm_gateways() -> None:
    v4 = proc4(
        ("eth0", NONE4, "198.51.96.1", 0x0003, NONE4),
        ("eth0", "169.254.169.254", "198.51.96.1", 0x0007, "255.255.255.255"),
        ("eth0", "198.51.96.0", NONE4, 0x0001, "255.255.240.0"),
        ("alca-0123456789", "10.213.7.0", NONE4, 0x0001, "255.255.255.0"),
    )
    v6 = proc6(
        ("2001:db8:a:b::", 64, "::", 0x00000001, "eth0"),
        ("::", 0, "2001:db8:a:1::1", 0x00000003, "eth0"),
        ("2001:db8:a:b::99", 128, "2001:db8:a:b::99", 0x01000001, "eth0"),  # cache entry
    )
    assert parse_proc(v4, v6, byteorder="little") == lan(CLOUD4, CLOUD6)


def test_proc_words_follow_the_given_byte_order() -> None:
    little = proc4(("eth0", "198.51.100.0", NONE4, 0x0001, "255.255.255.0"))
    dst = f"{int.from_bytes(ipaddress.IPv4Address('198.51.100.0').packed, 'big'):08X}"
    mask = f"{int.from_bytes(ipaddress.IPv4Address('255.255.255.0').packed, 'big'):08X}"
    big = f"{PROC_HEADER}\neth0\t{dst}\t00000000\t0001\t0\t0\t0\t{mask}\t0\t0\t0\n"
    assert nets(parse_proc(little, "", byteorder="little")) == ["198.51.100.0/24"]
    assert nets(parse_proc(big, "", byteorder="big")) == ["198.51.100.0/24"]


def test_current_reads_a_proc_tree_without_ipv6(tmp_path: Path) -> None:
    (tmp_path / "proc" / "net").mkdir(parents=True)
    (tmp_path / "proc" / "net" / "route").write_text(LAPTOP_PROC4)
    for name, flags in (("lo", "0x9"), ("lo7", "0x49"), ("wlp0s20f3", "0x1003")):
        (tmp_path / "sys" / name).mkdir(parents=True)
        (tmp_path / "sys" / name / "flags").write_text(flags + "\n")
    assert loopback_interfaces(tmp_path / "sys") == {"lo", "lo7"}
    hostlan = current(tmp_path / "proc", tmp_path / "sys")
    assert nets(hostlan) == ["192.168.1.0/24"]


# --- the nft transaction ----------------------------------------------------------------


def test_lan_script_replaces_both_sets_in_one_transaction() -> None:
    script = lan_script("inet alcatraz", "0123456789", lan(CLOUD4, CLOUD6))
    assert script == (
        "flush set inet alcatraz p_0123456789_lan4\n"
        "add element inet alcatraz p_0123456789_lan4 { 198.51.96.0/20 }\n"
        "flush set inet alcatraz p_0123456789_lan6\n"
        "add element inet alcatraz p_0123456789_lan6 { 2001:db8:a:1::1/128, 2001:db8:a:b::/64 }\n"
    )


def test_lan_script_skips_empty_element_lists() -> None:
    script = lan_script("inet alcatraz", "0123456789", lan(LAPTOP4, "[]"))
    assert script.splitlines() == [
        "flush set inet alcatraz p_0123456789_lan4",
        "add element inet alcatraz p_0123456789_lan4 { 192.168.1.0/24 }",
        "flush set inet alcatraz p_0123456789_lan6",
    ]
    assert "add" not in lan_script("inet alcatraz", "0123456789", HostLan())


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ("inet alcatraz; flush ruleset", "0123456789"),
        ("alcatraz", "0123456789"),
        ("inet alcatraz", "01 { 1.2.3.4 }"),
        ("inet alcatraz", ""),
    ],
)
def test_lan_script_refuses_what_is_not_a_table_or_key(table: str, key: str) -> None:
    with pytest.raises(ValueError):
        lan_script(table, key, HostLan())


def test_set_names_and_changed() -> None:
    assert lan_set_names("0123456789") == ("p_0123456789_lan4", "p_0123456789_lan6")
    laptop, cloud = lan(LAPTOP4, LAPTOP6), lan(CLOUD4, CLOUD6)
    assert changed(None, laptop)
    assert changed(laptop, cloud)
    assert not changed(laptop, lan(LAPTOP4, LAPTOP6))


# --- this machine (reads /proc and `ip -j`; sends nothing) -------------------------------


def ip_json(*args: str) -> list[dict[str, Any]]:
    out = subprocess.run(["ip", "-j", *args], capture_output=True, text=True, check=True).stdout
    return json.loads(out) if out.strip() else []


@pytest.mark.skipif(shutil.which("ip") is None, reason="needs iproute2 to cross-check /proc")
def test_current_on_this_machine_is_sane() -> None:
    # other tests on this machine add and remove routes: compare only a quiet moment
    def snapshot() -> list[str]:
        tables = [ip_json(f, "route", "show", "table", "all") for f in ("-4", "-6")]
        return [json.dumps(t) for t in (*tables, ip_json("addr"))]

    def lasting(texts: list[str]) -> str:  # without the lifetimes that count down
        return re.sub(r'"(expires|valid_life_time|preferred_life_time)": ?\d+', "", "".join(texts))

    for _ in range(20):
        before = snapshot()
        hostlan = current()
        after = snapshot()
        if lasting(before) == lasting(after):
            break
    else:
        pytest.fail("the routing table kept changing while read")
    links = json.loads(after[2])
    from_ip = parse_routes(*after)

    # /proc sees IPv6 in every table and IPv4 in `main`: a subset of `ip -j table all`
    assert hostlan.nets6 == from_ip.nets6
    assert all(any(n.subnet_of(m) for m in from_ip.nets4) for n in hostlan.nets4)
    everything = [*hostlan.nets4, *hostlan.nets6]
    for net in everything:
        assert not net.is_link_local and not net.is_multicast and not net.is_loopback, net
        assert not (net.version == 4 and net.overlaps(POOL4)), net

    def covered(address: str) -> bool:
        ip = ipaddress.ip_address(address)
        return any(ip.version == n.version and ip in n for n in everything)

    for family in ("-4", "-6"):  # the default gateways (checked, never probed)
        for default in ip_json(family, "route", "show", "default"):
            hops = default.get("nexthops") or [default]
            for hop in hops:
                gateway = hop.get("gateway")
                if gateway and not ipaddress.ip_address(gateway).is_link_local:
                    assert covered(gateway), (gateway, hostlan)
    own = [link for link in links if not link["ifname"].startswith("alca-")]
    for link in own:  # the host's own global addresses are inside its LAN
        if "LOOPBACK" in link.get("flags", []):
            continue
        for info in link.get("addr_info", []):
            iface = ipaddress.ip_interface(f"{info['local']}/{info['prefixlen']}")
            skip = iface.ip.is_link_local or info.get("scope") != "global"
            if skip or iface.network.prefixlen < 8 or (iface.version == 4 and iface.ip in POOL4):
                continue
            assert covered(info["local"]) or "noprefixroute" in info.get("flags", []), info
