"""Reading one TOML configuration file defensively, with readable syntax errors.

The file may have been written by the agent (decision 0010): only regular files, a bounded
size, strict UTF-8 without a BOM or NUL; tomllib's messages are reworded to name the fix.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from pathlib import Path
from typing import Any, Final

from alcatraz.errors import ConfigError

MAX_FILE_BYTES: Final = 1 << 20


def _line_of(text: str, column_error: str) -> int | None:
    match = re.search(r"at line (\d+)", column_error)
    return int(match.group(1)) if match else None


def read_toml(path: Path, display: str) -> tuple[dict[str, Any], str]:
    """Parse one TOML file defensively: regular files only, bounded size, strict UTF-8."""
    text = _decode(_read_bytes(path, display), display)
    try:
        return tomllib.loads(text), text
    except RecursionError:
        raise ConfigError(
            "values are nested too deeply",
            file=display,
            hint="a configuration needs a few levels of tables at most; flatten it",
        ) from None
    except tomllib.TOMLDecodeError as error:
        raise _syntax_error(str(error), text, display) from None


def _read_bytes(path: Path, display: str) -> bytes:
    """The bytes of a regular file of bounded size; never blocks on a FIFO or device."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ConfigError(
            "file not found", file=display, hint="create it or fix the path"
        ) from None
    except PermissionError:
        raise ConfigError(
            "permission denied", file=display, hint="make the file readable by your user"
        ) from None
    except OSError as error:
        raise ConfigError(
            f"cannot read file: {error.strerror}", file=display, hint="fix the path"
        ) from None
    if stat.S_ISDIR(info.st_mode):
        raise ConfigError("is a directory, not a file", file=display, hint="point at a .toml file")
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(
            "is not a regular file", file=display, hint="configuration must be a plain .toml file"
        )
    if info.st_size > MAX_FILE_BYTES:
        raise ConfigError(
            f"file is too large ({info.st_size} bytes; the limit is {MAX_FILE_BYTES})",
            file=display,
            hint="a configuration file is a few kilobytes; check the path",
        )
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except PermissionError:
        raise ConfigError(
            "permission denied", file=display, hint="make the file readable by your user"
        ) from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise ConfigError("is not a regular file", file=display, hint="use a plain file")
        return handle.read(MAX_FILE_BYTES + 1)


def _decode(data: bytes, display: str) -> str:
    """Strict UTF-8 text without a byte-order mark or NUL."""
    if data.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        raise ConfigError(
            "file starts with a byte-order mark",
            file=display,
            line=1,
            hint="save the file as UTF-8 without a BOM",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        bad_line = data[: error.start].count(b"\n") + 1
        raise ConfigError(
            f"file is not valid UTF-8 (byte {error.start})",
            file=display,
            line=bad_line,
            hint="save the file as UTF-8",
        ) from None
    if "\x00" in text:
        raise ConfigError(
            "file contains a NUL character",
            file=display,
            line=text[: text.index("\x00")].count("\n") + 1,
            hint="remove it; TOML files are text",
        )
    return text


def _syntax_error(message: str, text: str, display: str) -> ConfigError:
    line = _line_of(text, message)
    if line is None and "end of document" in message:
        line = text.rstrip().count("\n") + 1
    summary = _toml_summary(
        re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", message)
    )
    return ConfigError(
        f"invalid TOML: {summary}",
        file=display,
        line=line,
        hint="fix the syntax" + (f" at line {line}" if line else "") + " (see https://toml.io)",
    )


def _toml_summary(message: str) -> str:
    """tomllib's wording, made readable (no Python tuples, names what to fix)."""
    declared = re.fullmatch(r"Cannot declare \((.*)\) twice", message)
    if declared:
        parts = [p.strip().strip("'\"") for p in declared.group(1).split(",") if p.strip()]
        return f"table [{'.'.join(parts)}] is declared twice"
    overwrite = re.fullmatch(r"Cannot overwrite a value", message)
    if overwrite:
        return "a key is set twice (or a key is redefined as a table)"
    if message.startswith("Illegal character '\\n'") or message == "Unterminated string":
        return "a string is not closed: a closing quote is missing"
    return message[:1].lower() + message[1:]
