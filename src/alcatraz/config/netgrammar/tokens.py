"""`${alca:NAME}` tokens: addresses that are only known when `alca up` runs.

A rule or proxy may name the host as seen from the container (`${alca:HOST_IP}`) instead
of an address; the grammars parse the token here and resolve it once the engine's bridge
gateway is known.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from alcatraz.config.netgrammar.addresses import IPAddress
from alcatraz.config.netgrammar.lexical import GrammarError, within
from alcatraz.errors import quote

ALCA_TOKENS: Final = ("HOST_IP",)
"""Known `${alca:NAME}` tokens. Each stands for an address that is only known at `up` time."""

_TOKEN_NAME: Final = re.compile(r"[A-Za-z0-9_]+")


@dataclass(frozen=True)
class AlcaToken:
    """An unresolved `${alca:NAME}` that stands for an address known only at `up` time."""

    name: str

    def __post_init__(self) -> None:
        if self.name not in ALCA_TOKENS:
            raise ValueError(f"unknown alca token {self.name!r}")

    def __str__(self) -> str:
        return f"${{alca:{self.name}}}"


def parse_token(text: str, whole: str) -> tuple[AlcaToken, str]:
    """Parse a `${alca:NAME}` at the start of `text`; return it and the text after it."""
    valid = ", ".join(ALCA_TOKENS)
    if not text.startswith("${"):
        raise GrammarError(
            f"unexpected '$' in {quote(whole)}",
            "write a token as ${alca:HOST_IP}, or write the IP address",
        )
    end = text.find("}")
    if end < 0:
        raise GrammarError(
            f"unterminated token {within(text, whole)}: missing '}}'",
            "close the token with '}', e.g. ${alca:HOST_IP}:8080",
        )
    body = text[2:end]
    written = text[: end + 1]
    if not body.startswith("alca:"):
        if body.lower().startswith("alca:"):
            hint = f"write the prefix in lower case: ${{alca:{body[5:]}}}"
        else:
            hint = (
                "environment variables are not expanded here; write ${alca:HOST_IP} for the "
                "host as seen from the container, or write the IP address"
            )
        raise GrammarError(f"{within(written, whole)} is not an alca token", hint)
    name = body[5:]
    if not _TOKEN_NAME.fullmatch(name):
        raise GrammarError(
            f"invalid alca token syntax {within(written, whole)}: "
            "a name is letters, digits and underscores",
            f"use one of the valid tokens: {valid}, e.g. ${{alca:HOST_IP}}",
        )
    if name not in ALCA_TOKENS:
        if name.upper() in ALCA_TOKENS:
            hint = f"token names are upper case: write ${{alca:{name.upper()}}}"
        else:
            hint = f"use one of the valid tokens: {valid}, e.g. ${{alca:HOST_IP}}"
        raise GrammarError(
            f"unknown alca token {quote(name)} in {quote(whole)}; valid tokens: {valid}", hint
        )
    return AlcaToken(name), text[end + 1 :]


def resolved_address(token: AlcaToken, values: Mapping[str, IPAddress], whole: str) -> IPAddress:
    value = values.get(token.name)
    if value is None:
        raise GrammarError(
            f"no value for {token} in {quote(whole)}",
            f"make sure alca can find the address {token} stands for "
            "(the container engine's bridge gateway), or write the IP address",
        )
    if not isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        raise TypeError(f"value of {token} must be an IP address, not {type(value).__name__}")
    if isinstance(value, ipaddress.IPv6Address) and (
        value.scope_id is not None or value.ipv4_mapped is not None
    ):
        raise GrammarError(
            f"{token} resolved to {quote(str(value))}, which cannot be used in a rule",
            "write the IP address instead of the token",
        )
    return value
