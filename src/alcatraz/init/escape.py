"""Text that came from a file or URL someone else controls, made safe to show on a terminal."""

from __future__ import annotations


def escaped_for_terminal(text: str) -> str:
    """`text` with everything but printable ASCII escaped (`\\xNN`, `\\uNNNN`).

    Escaping all non-ASCII, not only control characters, also shows a look-alike host
    (a Cyrillic `і` in `gіthub.com`) for what it is, and a bidi override cannot reorder
    what the user reads.
    """
    out: list[str] = []
    for char in text:
        code = ord(char)
        if char == "\\":
            out.append("\\\\")
        elif 0x20 <= code < 0x7F:
            out.append(char)
        elif code <= 0xFF:
            out.append(f"\\x{code:02x}")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return "".join(out)
