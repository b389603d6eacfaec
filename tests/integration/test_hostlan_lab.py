"""The host-LAN sets (issue 15, `network.egress.hostlan`) on this kernel with the lab up.

The lab puts a directly connected LAN on non-private space on the host (`alab-wan0`,
198.51.100.0/24 and 2001:db8:ff::/64) and routes the "internet" behind it: `current()`
must find that LAN and the private one, and leave out what is only routed. Its nft
transaction must load: checked with `nft -c` (a dry run: nothing is committed) against a
scratch table declared in the same batch. Reads /proc and the nft cache; sends no packet.
The NET-L5 matrix cells (tests/lab/matrix.py) prove the blocking itself.
"""

from __future__ import annotations

import ipaddress
import subprocess

import pytest

from alcatraz.network.egress.hostlan import HostLan, current, lan_script
from tests.lab.topology import (
    LAN_EXTRA4,
    LAN_NET4,
    LAN_NET6,
    WAN_EXTRA4,
    WAN_EXTRA6,
    WAN_NET4,
    WAN_NET6,
    Lab,
)

pytestmark = pytest.mark.integration

SCRATCH = "alab_hostlan_check"


def covers(hostlan: HostLan, text: str) -> bool:
    wanted = ipaddress.ip_network(text)
    nets = hostlan.nets4 if wanted.version == 4 else hostlan.nets6
    return any(wanted.subnet_of(n) for n in nets)  # type: ignore[arg-type]


def test_current_finds_the_labs_directly_connected_lans_and_not_what_is_routed(
    lab: Lab,
) -> None:
    hostlan = current()
    print(f"\nhost LAN with the lab up: {hostlan.describe()}")
    for net in (WAN_NET4, WAN_NET6, LAN_NET4, LAN_NET6):
        assert covers(hostlan, net), (net, hostlan)
    # routed through a lab namespace (a /32 or /128 via its veth address): not LAN
    for address in (*WAN_EXTRA4, *WAN_EXTRA6, *LAN_EXTRA4):
        assert not covers(hostlan, address), (address, hostlan)


def test_lan_script_of_this_host_loads_in_an_nft_dry_run(lab: Lab) -> None:
    hostlan = current()
    key = "0123456789"
    declare = (
        f"table inet {SCRATCH} {{\n"
        f"  set p_{key}_lan4 {{ type ipv4_addr; flags interval; }}\n"
        f"  set p_{key}_lan6 {{ type ipv6_addr; flags interval; }}\n"
        "}\n"
    )
    script = declare + lan_script(f"inet {SCRATCH}", key, hostlan)
    check = subprocess.run(["nft", "-c", "-f", "-"], input=script, capture_output=True, text=True)
    assert check.returncode == 0, f"{check.stderr}\n{script}"
    listed = subprocess.run(["nft", "list", "table", "inet", SCRATCH], capture_output=True)
    assert listed.returncode != 0, "the dry run committed the scratch table"
