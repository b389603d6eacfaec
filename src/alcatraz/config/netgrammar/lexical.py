"""What every network grammar checks first: the text's characters, and port numbers.

The lan-access, ports and proxy grammars each reject odd text before reading any
structure, and all read port numbers the same way; these shared steps and the error they
raise live here, below the grammars that use them.
"""

from __future__ import annotations

import re
from typing import Final

from alcatraz.errors import quote


class GrammarError(ValueError):
    """Invalid rule, port or proxy text.

    `message` says what is wrong and quotes the offending text. `hint` says how to fix it,
    with a correct example. The caller adds the file and key path.
    """

    def __init__(self, message: str, hint: str):
        super().__init__(message)
        self.message = message
        self.hint = hint


MAX_TEXT_LENGTH: Final = 256
"""Longer than any valid rule (about 70 characters), so a longer text is a mistake or an attack."""

PORT_MIN: Final = 1
PORT_MAX: Final = 65535

_DIGITS: Final = re.compile(r"[0-9]+")


def within(part: str, whole: str) -> str:
    """Quote `part`, and the whole text too when they differ, so each message says where."""
    return quote(whole) if part == whole else f"{quote(part)} in {quote(whole)}"


def is_port_number(value: object) -> bool:
    """Whether `value` is an int from 1 to 65535 (a bool is not a number here)."""
    return isinstance(value, int) and not isinstance(value, bool) and PORT_MIN <= value <= PORT_MAX


def check_text(
    text: object,
    what: str,
    allowed: re.Pattern[str],
    example: str,
    max_length: int = MAX_TEXT_LENGTH,
) -> str:
    """Reject non-strings, empty text, whitespace, control and foreign characters up front."""
    if not isinstance(text, str):
        raise GrammarError(
            f"{what} must be a string, not {type(text).__name__} {quote(text)}",
            f"write it as a quoted string, e.g. {example}",
        )
    if text == "":
        raise GrammarError(f"empty {what} {quote(text)}", f"write a value, e.g. {example}")
    if text.strip() == "":
        raise GrammarError(f"{what} {quote(text)} is blank", f"write a value, e.g. {example}")
    if any(c.isspace() for c in text):
        stripped = text.strip()
        if not any(c.isspace() for c in stripped):
            hint = f"remove the surrounding whitespace: {quote(stripped)}"
        else:
            hint = f"write it without spaces or line breaks, e.g. {example}"
        raise GrammarError(f"{what} {quote(text)} contains whitespace", hint)
    if not text.isprintable():
        raise GrammarError(
            f"{what} {quote(text)} contains a control character",
            f"remove it; a valid value looks like {example}",
        )
    if len(text) > max_length:
        raise GrammarError(
            f"{what} {quote(text[:60] + '…')} is too long "
            f"({len(text)} characters, at most {max_length})",
            f"write a single value, e.g. {example}",
        )
    if "%" in text:
        raise GrammarError(
            f"{what} {quote(text)} has an IPv6 zone id (%): zone ids are not supported",
            "remove the %zone part, or use a global or unique-local IPv6 address, e.g. fd00::1",
        )
    if not allowed.fullmatch(text):
        bad = next(c for c in text if not allowed.fullmatch(c))
        raise GrammarError(
            f"invalid character {quote(bad)} in {what} {quote(text)}",
            f"write only an address and port, e.g. {example}",
        )
    return text


def port_number(text: str, whole: str, label: str = "port") -> int:
    """A decimal port 1-65535 with no sign, no leading zeros and no spaces."""
    if text == "":
        raise GrammarError(
            f"missing {label} in {quote(whole)}",
            "write a number from 1 to 65535 after the ':', e.g. 192.168.1.10:8080",
        )
    if not _DIGITS.fullmatch(text):
        raise GrammarError(
            f"invalid {label} {within(text, whole)}: expected a number from 1 to 65535",
            "write the port in decimal digits, e.g. 8080",
        )
    if len(text) > 1 and text.startswith("0"):
        value = int(text)
        fix = f"write {value}" if PORT_MIN <= value <= PORT_MAX else "write a number"
        raise GrammarError(
            f"invalid {label} {within(text, whole)}: leading zeros are not allowed",
            f"{fix} without leading zeros (1 to 65535)",
        )
    value = int(text) if len(text) <= 6 else PORT_MAX + 1
    if not PORT_MIN <= value <= PORT_MAX:
        raise GrammarError(
            f"{label} {text} in {quote(whole)} is out of range: expected a number from 1 to 65535",
            "use a port from 1 to 65535, e.g. 8080",
        )
    return value
