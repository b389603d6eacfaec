"""Grammar of the network settings: `lan-access`, `egress`, `dns`, `ports` and the `proxy`.

Pure parsing, stdlib only, no I/O. The text parsed here ends up in an nft ruleset and in
container-engine arguments, so each grammar works from a whitelist of characters. Anything
unusual is rejected: no trimming, no guessing, no DNS. Each parser has a canonical renderer
whose output parses back to an equal value, so values can be stored as text and shown to
users without losing anything.

Differences from upstream (see the reference, §2.6-§2.9):
- lan-access also accepts a port range `ADDR:LO-HI` (an extension).
- Forms that upstream accepted but that are ambiguous or dangerous are rejected: CIDRs
  with host bits set, IPv4 literals with leading zeros or in short or hex forms,
  IPv4-mapped IPv6, IPv6 zone ids, upper-case protocol prefixes.
- A bracketed IPv6 proxy host parses (B8). The nft renderer handles the address family.

One module per grammar (`lan`, `egress` with `dns`, `ports`, `proxy`) on top of what they
share: the first checks of any text and port numbers (`lexical`), address literals
(`addresses`), the protocol prefix, port range and network of a rule (`parts`), internet
names (`names`), the blocked ranges (`ranges`) and the `${alca:NAME}` tokens (`tokens`).
Import the public names from this package.
"""

from alcatraz.config.netgrammar.addresses import IPAddress
from alcatraz.config.netgrammar.egress import (
    EgressRule,
    parse_dns_server,
    parse_egress,
    parse_egress_rule,
    render_dns_server,
    render_egress_rule,
)
from alcatraz.config.netgrammar.lan import (
    Address,
    LanRule,
    parse_lan_access,
    parse_lan_rule,
    render_lan_rule,
    resolve_tokens,
)
from alcatraz.config.netgrammar.lexical import MAX_TEXT_LENGTH, GrammarError
from alcatraz.config.netgrammar.ports import (
    PortMapping,
    parse_port,
    port_from_object,
    render_port,
)
from alcatraz.config.netgrammar.proxy import (
    ProxyAddress,
    parse_proxy,
    render_proxy,
    resolve_proxy,
)
from alcatraz.config.netgrammar.tokens import ALCA_TOKENS, AlcaToken

__all__ = [
    "ALCA_TOKENS",
    "MAX_TEXT_LENGTH",
    "Address",
    "AlcaToken",
    "EgressRule",
    "GrammarError",
    "IPAddress",
    "LanRule",
    "PortMapping",
    "ProxyAddress",
    "parse_dns_server",
    "parse_egress",
    "parse_egress_rule",
    "parse_lan_access",
    "parse_lan_rule",
    "parse_port",
    "parse_proxy",
    "port_from_object",
    "render_dns_server",
    "render_egress_rule",
    "render_lan_rule",
    "render_port",
    "render_proxy",
    "resolve_proxy",
    "resolve_tokens",
]
