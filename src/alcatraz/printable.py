"""Make untrusted text safe to show on a terminal: the one function every renderer uses.

File names, config values, container names and engine or Mutagen output can all be written
by the agent. Shown raw, an escape sequence can redraw the screen (a fake prompt, hidden
lines), a carriage return can overwrite a line, a bidi override can reorder what the user
reads, and a newline can forge a line of our own output. Everything a terminal could act on
is shown as a visible escape instead (`\\x1b`, `\\u202e`); ordinary non-ASCII text (`é`,
`日本`) stays readable. Stdlib only and cheap: `alca run` imports it.
"""

from __future__ import annotations

#: Shown escaped although `str.isprintable` may accept them. The bidi and layout controls
#: are format characters today, but a later Unicode version must not quietly let one
#: through. The rest are letters and marks `isprintable` accepts that draw nothing: Hangul
#: fillers, the combining grapheme joiner, Khmer inherent vowels and Mongolian variation
#: selectors would let `.env<filler>` pass for `.env`, or a name look empty.
_ALWAYS_ESCAPED = frozenset(
    "\u061c\u200b\u200c\u200d\u200e\u200f\u2028\u2029"
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff"
    "\u034f\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180f\u3164\uffa0"
)


_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(char: str) -> str:
    if char in _SHORT:
        return _SHORT[char]
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (os.fsdecode, surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _shown(char: str, *, ascii_only: bool) -> bool:
    if ascii_only:
        return " " <= char <= "~"
    return char.isprintable() and char not in _ALWAYS_ESCAPED


def printable(text: str | bytes, *, ascii_only: bool = False) -> str:
    """`text` on one line: every control, format or undecodable character escaped.

    A backslash is doubled, so a name that spells `\\x1b` cannot pass for one that holds
    an escape. `ascii_only` also escapes every non-ASCII character: for hosts and URLs,
    where a look-alike letter (a Cyrillic `і` in `gіthub.com`) must show for what it is.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", "surrogateescape")
    if text.isascii() and text.isprintable() and "\\" not in text:
        return text  # the common case, without a loop
    out: list[str] = []
    for char in text:
        if char == "\\":
            out.append("\\\\")
        elif _shown(char, ascii_only=ascii_only):
            out.append(char)
        else:
            out.append(_escape(char))
    return "".join(out)


def printable_lines(text: str | bytes) -> str:
    """`text` that may span lines (engine errors, Mutagen output, our own messages).

    Newlines and tabs stay; every other control, format or undecodable character is escaped
    as in `printable`. Backslashes stay as they are: this is for reading, not for telling
    two names apart (use `printable` on a name before putting it in such text).
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", "surrogateescape")
    if text.isascii() and text.replace("\n", "").replace("\t", "").isprintable():
        return text
    out: list[str] = []
    for char in text:
        if char in "\n\t" or _shown(char, ascii_only=False):
            out.append(char)
        else:
            out.append(_escape(char))
    return "".join(out)


def printable_ascii(text: str | bytes) -> str:
    """`printable` with every non-ASCII character escaped too: hosts, URLs, preset sources."""
    return printable(text, ascii_only=True)
