"""The `network.proxy` grammar: where a sandbox's outgoing TCP is redirected.

The host must be an address a proxy can listen on as seen from the container (not
loopback, which inside the sandbox is the container itself), or the `${alca:HOST_IP}`
token resolved at `up` time.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Final

from alcatraz.config.netgrammar.addresses import IPAddress, parse_ipv4, parse_ipv6
from alcatraz.config.netgrammar.lexical import (
    GrammarError,
    check_text,
    is_port_number,
    port_number,
    within,
)
from alcatraz.config.netgrammar.tokens import AlcaToken, parse_token, resolved_address
from alcatraz.errors import quote

# The characters a proxy address can contain; anything else (such as `;`, quotes or `%`) is
# rejected before parsing.
_PROXY_CHARS: Final = re.compile(r"[0-9A-Za-z.:\[\]${}_-]*")
_PROXY_EXAMPLE: Final = '"192.168.1.2:1080", "[fd00::2]:1080" or "${alca:HOST_IP}:1080"'


@dataclass(frozen=True)
class ProxyAddress:
    """Where outgoing TCP is redirected. The constructor rejects hosts no proxy can be on."""

    host: IPAddress | AlcaToken
    port: int

    def __post_init__(self) -> None:
        host = self.host
        if isinstance(host, ipaddress.IPv4Address | ipaddress.IPv6Address):
            reason = _unusable_proxy_host(host)
            if reason:
                raise ValueError(f"proxy host {host} is {reason}")
        elif not isinstance(host, AlcaToken):
            raise TypeError(f"host must be an IP address or AlcaToken, not {host!r}")
        if not is_port_number(self.port):
            raise ValueError(f"port must be 1-65535, not {self.port!r}")

    @property
    def family(self) -> int | None:
        """4 or 6, or None for a token."""
        return None if isinstance(self.host, AlcaToken) else self.host.version


def _unusable_proxy_host(host: IPAddress) -> str | None:
    if host.is_unspecified:
        return "unspecified"
    if host.is_multicast:
        return "a multicast address"
    if host.is_loopback:
        # Inside the sandbox, loopback is the container itself: redirected traffic would vanish.
        return "a loopback address (inside the sandbox it is the container itself)"
    if isinstance(host, ipaddress.IPv6Address):
        if host.scope_id is not None:
            return "scoped (zone ids are not supported)"
        if host.ipv4_mapped is not None:
            return "IPv4-mapped"
    return None


def parse_proxy(text: str) -> ProxyAddress:
    """Parse `host:port` with host an IPv4 literal, `[IPv6]` or `${alca:HOST_IP}`."""
    check_text(text, "proxy address", _PROXY_CHARS, _PROXY_EXAMPLE)
    expected = GrammarError(
        f"invalid proxy address {quote(text)}: expected host:port",
        f"add the port, e.g. {_PROXY_EXAMPLE}",
    )
    host: IPAddress | AlcaToken
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise GrammarError(
                f"missing ']' in proxy address {quote(text)}", "close it: [fd00::2]:1080"
            )
        inside = text[1:end]
        if ":" not in inside:
            raise GrammarError(
                f"proxy host {within(inside, text)} is inside brackets: brackets are only for IPv6",
                f"remove the brackets, e.g. {inside}{text[end + 1 :] or ':1080'}",
            )
        host = parse_ipv6(inside, text)
        after = text[end + 1 :]
    elif text.startswith("$"):
        host, after = parse_token(text, text)
    else:
        colons = text.count(":")
        if colons == 0:
            raise expected
        if colons > 1:
            raise GrammarError(
                f"invalid proxy address {quote(text)}: an IPv6 host must be in brackets",
                "write [IPv6]:port, e.g. [fd00::2]:1080",
            )
        host_text, _, port_text = text.partition(":")
        if host_text == "":
            raise GrammarError(
                f"invalid proxy address {quote(text)}: missing host before ':'",
                f"write host:port, e.g. {_PROXY_EXAMPLE}",
            )
        host = parse_ipv4(host_text, text, "host")
        after = ":" + port_text
    if after == "":
        raise expected
    if not after.startswith(":"):
        raise GrammarError(
            f"unexpected {quote(after)} in proxy address {quote(text)}",
            f"only ':PORT' may follow the host, e.g. {_PROXY_EXAMPLE}",
        )
    port = port_number(after[1:], text)
    if not isinstance(host, AlcaToken):
        _check_proxy_host(host, port, text)
    return ProxyAddress(host, port)


def _check_proxy_host(host: IPAddress, port: int, whole: str) -> None:
    reason = _unusable_proxy_host(host)
    if not reason:
        return
    if host.is_loopback:
        # The Go tool accepted it and DNATed the sandbox's TCP to its own loopback: nothing
        # ever reached the proxy (decision: refused, docs/migrating.md).
        fix = (
            "a proxy on this host must listen where the sandbox can reach it: bind it to the "
            f'project network\'s gateway (or 0.0.0.0) and write "${{alca:HOST_IP}}:{port}"'
        )
    else:
        fix = (
            "write the address the proxy listens on, e.g. 192.168.1.2:1080 or ${alca:HOST_IP}:1080"
        )
    raise GrammarError(f"invalid proxy address {quote(whole)}: host {host} is {reason}", fix)


def render_proxy(p: ProxyAddress) -> str:
    """Canonical `host:port`, with IPv6 in brackets."""
    if isinstance(p.host, ipaddress.IPv6Address):
        return f"[{p.host}]:{p.port}"
    return f"{p.host}:{p.port}"


def resolve_proxy(p: ProxyAddress, values: Mapping[str, IPAddress]) -> ProxyAddress:
    """Replace a token host by its value."""
    if not isinstance(p.host, AlcaToken):
        return p
    value = resolved_address(p.host, values, render_proxy(p))
    _check_proxy_host(value, p.port, render_proxy(p))
    return replace(p, host=value)
