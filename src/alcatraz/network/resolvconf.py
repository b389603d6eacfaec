"""Reading a resolv.conf: its own module so that `status` can show the host's resolvers
without importing the resolver daemon (`dnsproxy` imports asyncio: ~40 ms)."""

from __future__ import annotations

import ipaddress

__all__ = ["parse_resolv_conf"]


def parse_resolv_conf(text: str) -> list[str]:
    """The `nameserver` addresses of a resolv.conf, in order (zone ids kept)."""
    found: list[str] = []
    for line in text.splitlines():
        words = line.split("#", 1)[0].split(";", 1)[0].split()
        if len(words) >= 2 and words[0] == "nameserver":
            address = words[1]
            try:
                ipaddress.ip_address(address.split("%", 1)[0])
            except ValueError:
                continue
            if address not in found:
                found.append(address)
    return found
