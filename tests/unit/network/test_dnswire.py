"""How an upstream resolver is written: `ADDR`, `ADDR:PORT`, `[V6]:PORT`."""

from __future__ import annotations

import pytest

from alcatraz.network.dnswire import split_host_port


def test_upstream_forms() -> None:
    assert split_host_port("198.51.100.53") == ("198.51.100.53", None)
    assert split_host_port("198.51.100.53:5353") == ("198.51.100.53", 5353)
    assert split_host_port("2001:db8::53") == ("2001:db8::53", None)
    assert split_host_port("[2001:db8::53]:5353") == ("2001:db8::53", 5353)
    assert split_host_port("fe80::1%eth0") == ("fe80::1%eth0", None)
    for bad in ("resolver.test", "[2001:db8::53]", "198.51.100.53:53-54", "1.2.3.4:x"):
        with pytest.raises(ValueError):
            split_host_port(bad)
