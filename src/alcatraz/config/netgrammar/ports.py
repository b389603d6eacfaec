"""The `ports` grammar: container ports published on the host, as text or as a table.

A mapping ends up as one `-p` argument of the container engine, so it is parsed strictly
and rendered back in exactly that form.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Final

from alcatraz.config.netgrammar.addresses import IPAddress, parse_ip, parse_ipv4, parse_ipv6
from alcatraz.config.netgrammar.lexical import (
    GrammarError,
    check_text,
    is_port_number,
    port_number,
    within,
)
from alcatraz.errors import quote

# The characters a mapping (and a table's hostIp) can contain; anything else (such as `;`,
# quotes or `%`) is rejected before parsing.
_PORT_CHARS: Final = re.compile(r"[0-9A-Za-z.:/\[\]-]*")
_HOST_IP_CHARS: Final = re.compile(r"[0-9A-Za-z.:\[\]-]*")
_PORT_EXAMPLE: Final = '"8080:80", "127.0.0.1:8080:80/udp" or "[::1]:8080:80"'


@dataclass(frozen=True)
class PortMapping:
    """One published port. The constructor checks the values, so every mapping renders."""

    container_port: int
    host_port: int
    host_ip: IPAddress | None  # None = all interfaces
    protocol: str  # "tcp" | "udp"

    def __post_init__(self) -> None:
        for name in ("container_port", "host_port"):
            if not is_port_number(getattr(self, name)):
                raise ValueError(f"{name} must be 1-65535, not {getattr(self, name)!r}")
        if self.protocol not in ("tcp", "udp"):
            raise ValueError(f"protocol must be tcp or udp, not {self.protocol!r}")
        ip = self.host_ip
        if isinstance(ip, ipaddress.IPv6Address):
            if ip.scope_id is not None or ip.ipv4_mapped is not None:
                raise ValueError(f"unsupported host IP {ip}")
        elif ip is not None and not isinstance(ip, ipaddress.IPv4Address):
            raise TypeError(f"host_ip must be an IP address or None, not {ip!r}")

    def docker_arg(self) -> str:
        """The value of `-p`: `[ip:]hostPort:port[/udp]`; brackets for IPv6; no `/tcp`."""
        if self.host_ip is None:
            ip = ""
        elif self.host_ip.version == 6:
            ip = f"[{self.host_ip}]:"
        else:
            ip = f"{self.host_ip}:"
        suffix = "/udp" if self.protocol == "udp" else ""
        return f"{ip}{self.host_port}:{self.container_port}{suffix}"


def _port_protocol(text: str, whole: str) -> str:
    if text in ("tcp", "udp"):
        return text
    if text == "":
        raise GrammarError(
            f"missing protocol after '/' in {quote(whole)}",
            "write /tcp or /udp, or nothing for tcp, e.g. 8080:80/udp",
        )
    if text.lower() in ("tcp", "udp"):
        raise GrammarError(
            f"protocol {quote(text)} in {quote(whole)} must be lower case",
            f"write /{text.lower()}, e.g. 8080:80/{text.lower()}",
        )
    raise GrammarError(
        f"unknown protocol {quote(text)} in {quote(whole)}: expected tcp or udp",
        "write /tcp or /udp, or nothing for tcp, e.g. 8080:80/udp",
    )


def parse_port(text: str) -> PortMapping:
    """Parse `[hostIp:]hostPort:containerPort[/tcp|udp]` or `containerPort[/tcp|udp]`.

    `containerPort` alone publishes on the same host port (not a random one), like the table
    form. An IPv6 host IP must be in brackets: `[::1]:8080:80`.
    """
    check_text(text, "port mapping", _PORT_CHARS, _PORT_EXAMPLE)
    body, protocol = _split_protocol(text)
    host_ip: IPAddress | None
    if body.startswith("["):
        host_ip, host_text, container_text = _split_bracketed(body, text)
    else:
        host_ip, host_text, container_text = _split_unbracketed(body, text)
    container_port = port_number(container_text, text, "container port")
    host_port = port_number(host_text, text, "host port")
    return PortMapping(container_port, host_port, host_ip, protocol)


def _split_protocol(text: str) -> tuple[str, str]:
    """Split off the `/tcp` or `/udp` suffix (tcp when there is none); the rest is not empty."""
    body, slash, proto_text = text.rpartition("/")
    if not slash:
        body, protocol = text, "tcp"
    else:
        protocol = _port_protocol(proto_text, text)
        if "/" in body:
            raise GrammarError(
                f"more than one '/' in {quote(text)}",
                "give one protocol at the end, e.g. 8080:80/udp",
            )
    if body == "":
        raise GrammarError(
            f"missing port in {quote(text)}", f"write the ports, e.g. {_PORT_EXAMPLE}"
        )
    return body, protocol


def _split_bracketed(body: str, text: str) -> tuple[IPAddress, str, str]:
    """`[IPv6]:hostPort:containerPort` into the address and the two port texts."""
    end = body.find("]")
    if end < 0:
        raise GrammarError(f"missing ']' in {quote(text)}", "close the IPv6 address: [::1]:8080:80")
    inside = body[1:end]
    if ":" not in inside:
        raise GrammarError(
            f"host IP {within(inside, text)} is inside brackets: brackets are only for IPv6",
            f"remove the brackets, e.g. {inside}:8080:80",
        )
    host_ip = parse_ipv6(inside, text)
    after = body[end + 1 :]
    parts = after[1:].split(":") if after.startswith(":") else []
    if len(parts) != 2:
        raise GrammarError(
            f"invalid port mapping {quote(text)}: expected [IPv6]:hostPort:containerPort",
            "write the host port and the container port after the address: [::1]:8080:80",
        )
    return host_ip, parts[0], parts[1]


def _split_unbracketed(body: str, text: str) -> tuple[IPAddress | None, str, str]:
    """`[IPv4:]hostPort:containerPort` or `port` into the host IP and the two port texts."""
    if "[" in body or "]" in body:
        raise GrammarError(
            f"misplaced bracket in {quote(text)}",
            "brackets enclose an IPv6 host IP at the start, e.g. [::1]:8080:80",
        )
    parts = body.split(":")
    if len(parts) > 3:
        raise GrammarError(
            f"too many colons in {quote(text)}",
            "write an IPv6 host IP in brackets, e.g. [::1]:8080:80",
        )
    if len(parts) == 3:
        ip_text, host_text, container_text = parts
        if ip_text == "":
            raise GrammarError(
                f"missing host IP before ':' in {quote(text)}",
                "write the host IP, or leave it out to listen on all interfaces: 8080:80",
            )
        return parse_ipv4(ip_text, text, "host IP"), host_text, container_text
    if len(parts) == 2:
        return None, parts[0], parts[1]
    return None, parts[0], parts[0]


def port_from_object(
    port: int, host_port: int | None = None, host_ip: str = "", protocol: str = "tcp"
) -> PortMapping:
    """Build a mapping from the table form `{port, hostPort, hostIp, protocol}`.

    hostPort defaults to port; hostIp "" means all interfaces and may be a bare IPv6.
    """
    where = f"port {quote(port)}" if not is_port_number(port) else f"port {port}"
    for label, value in (("port", port), ("hostPort", host_port)):
        if label == "hostPort" and value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise GrammarError(
                f"{label} must be a number from 1 to 65535, not {quote(value)}",
                f"write it as a bare number, e.g. {{ {label} = 8080 }}",
            )
        if not is_port_number(value):
            raise GrammarError(
                f"{label} {value} is out of range: expected a number from 1 to 65535",
                f"use a port from 1 to 65535, e.g. {{ {label} = 8080 }}",
            )
    if not isinstance(host_ip, str):
        raise GrammarError(
            f"hostIp of {where} must be a string, not {quote(host_ip)}",
            'write an IP address in quotes, e.g. hostIp = "127.0.0.1"',
        )
    if not isinstance(protocol, str) or protocol not in ("tcp", "udp"):
        hint = 'write protocol = "tcp" or protocol = "udp"'
        if isinstance(protocol, str) and protocol.lower() in ("tcp", "udp"):
            hint = f'protocol names are lower case: protocol = "{protocol.lower()}"'
        raise GrammarError(
            f"unknown protocol {quote(protocol)} of {where}: expected tcp or udp", hint
        )
    ip: IPAddress | None = None
    if host_ip != "":
        text = check_text(host_ip, "hostIp", _HOST_IP_CHARS, '"127.0.0.1"')
        if text.startswith("[") and text.endswith("]") and ":" in text:
            text = text[1:-1]
        ip = parse_ip(text, host_ip, "hostIp")
    return PortMapping(port, port if host_port is None else host_port, ip, protocol)


def render_port(m: PortMapping) -> str:
    """Canonical string form; the same text as the `-p` value."""
    return m.docker_arg()
