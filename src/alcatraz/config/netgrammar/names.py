"""Internet names as `network.egress` accepts them: lower-case LDH labels and A-labels.

A name is compared with what the sandbox asks its resolver and presents in TLS SNI or an
HTTP `Host`, so there is one spelling per name: lower case, no trailing dot, IDNA A-labels
(`xn--...`) instead of Unicode. Anything else is refused with the spelling to use; nothing
is guessed or converted silently.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

from alcatraz.config.netgrammar.lexical import GrammarError, within
from alcatraz.errors import quote

MAX_NAME_LENGTH: Final = 253
MAX_LABEL_LENGTH: Final = 63

_LABEL: Final = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")
# Labels some resolvers read as parts of an IPv4 address (`0x7f.1`): the parser takes such
# text as an address, so a name must not consist of them only.
_NUMERIC_LABEL: Final = re.compile(r"[0-9]+|0x[0-9a-f]*")
_UNICODE_DOTS: Final = re.compile("[.\u3002\uff0e\uff61]")


def _a_label(label: str) -> bool:
    """Whether an `xn--` label decodes as Punycode (a U-label's ASCII form)."""
    try:
        label[4:].encode("ascii").decode("punycode")
    except (UnicodeError, ValueError):
        return False
    return True


def name_problem(name: str) -> str | None:
    """Why `name` is not a name egress accepts (without `*.`), or None when it is."""
    if name == "":
        return "it is empty"
    if name.endswith("."):
        return "it ends with a dot"
    if len(name) > MAX_NAME_LENGTH:
        return f"it is longer than {MAX_NAME_LENGTH} characters"
    labels = name.split(".")
    for label in labels:
        if label == "":
            return "it has an empty label (two dots in a row, or a leading dot)"
        if len(label) > MAX_LABEL_LENGTH:
            return f"its label {quote(label[:20] + '…')} is longer than {MAX_LABEL_LENGTH}"
        if not _LABEL.fullmatch(label):
            return f"its label {quote(label)} is not lower-case letters, digits and inner hyphens"
        if label.startswith("xn--") and not _a_label(label):
            return f"its label {quote(label)} is not a valid IDNA A-label"
    if all(_NUMERIC_LABEL.fullmatch(label) for label in labels):
        return "it reads as an IPv4 address in a numeric or hexadecimal form"
    if labels[-1].isdigit():
        return "its last label is all digits (an IP address is written in full)"
    return None


def a_label_form(name: str) -> str:
    """The ASCII form of a Unicode name, for a hint: lower case, NFC, `xn--` per label."""
    labels = _UNICODE_DOTS.split(unicodedata.normalize("NFC", name).lower())
    return ".".join(
        label if label.isascii() else "xn--" + label.encode("punycode").decode("ascii")
        for label in labels
    )


def parse_name(text: str, whole: str) -> tuple[str, bool]:
    """A name or `*.NAME` (its subdomains only): (the name, whether it is a wildcard)."""
    if not text.isascii():
        raise GrammarError(
            f"name {within(text, whole)} is not ASCII: write internationalised names in their "
            "IDNA (Punycode) form",
            f"write {quote(a_label_form(text))}",
        )
    wildcard = text.startswith("*.")
    name = text[2:] if wildcard else text
    if "*" in name or text == "*":
        raise GrammarError(
            f"misplaced '*' in {quote(whole)}: '*.' is only allowed at the start of a name",
            'write "*.example.com" for every subdomain of example.com (not example.com '
            "itself), or the name alone for that name only",
        )
    if wildcard and name == "":
        raise GrammarError(
            f"missing name after '*.' in {quote(whole)}", 'write it like "*.example.com"'
        )
    if name != name.lower():
        fixed = ("*." if wildcard else "") + name.lower()
        raise GrammarError(
            f"name {within(text, whole)} has upper-case letters: names are written in lower case",
            f"write {quote(fixed)}",
        )
    problem = name_problem(name)
    if problem is None:
        return name, wildcard
    if name.endswith(".") and name_problem(name.rstrip(".")) is None:
        fix = f"remove the trailing dot: {quote(text.rstrip('.'))}"
    elif name.startswith(".") and name_problem(name.lstrip(".")) is None:
        fix = f'write "*.{name.lstrip(".")}" for its subdomains, or "{name.lstrip(".")}"'
    else:
        fix = "write a name like example.com or *.example.com"
    raise GrammarError(f"invalid name {within(text, whole)}: {problem}", fix)
