"""The daemon's event log: one JSON object a line, bounded, read back by `alca net log`.

Written only by the project's guard daemon (names as the sandbox sent them: the reader
escapes them when printing). At `LIMIT` bytes the file moves to `PATH.1` (the previous
`.1` is dropped), so the log never holds more than about twice that. Read back by anyone,
so the reader trusts nothing: a partial last line, a line that is not an object, absurd
sizes and symlinks are skipped, not errors.
"""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Mapping
from typing import Any, Final

LIMIT: Final = 1_000_000
#: A line longer than this is not one the daemon wrote.
MAX_LINE: Final = 16384
_READ_FLAGS: Final = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


class EventLog:
    """Appends events to `path`, rotating to `path.1` past `limit` bytes."""

    def __init__(self, path: str, limit: int = LIMIT) -> None:
        self.path = path
        self.limit = limit

    def record(self, kind: str, **fields: object) -> None:
        """Append `{"t": now, "kind": kind, **fields}`; a full disk is not the sandbox's
        business, so a failed write is dropped."""
        self.append({"t": round(time.time(), 3), "kind": kind, **fields})

    def append(self, event: Mapping[str, object]) -> None:
        line = (json.dumps(event, ensure_ascii=True, separators=(",", ":")) + "\n").encode()
        try:
            self._rotate_if_full(len(line))
            fd = os.open(
                self.path,
                os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o600,
            )
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
        except OSError:
            pass

    def _rotate_if_full(self, adding: int) -> None:
        try:
            size = os.lstat(self.path).st_size
        except FileNotFoundError:
            return
        if size + adding > self.limit:
            os.replace(self.path, self.path + ".1")


def read_events(path: str) -> list[dict[str, Any]]:
    """The events of `path.1` then `path`, oldest first; only objects with a numeric "t"
    and a string "kind" are kept."""
    events: list[dict[str, Any]] = []
    for name in (path + ".1", path):
        events.extend(_read_one(name))
    return events


def _read_one(path: str) -> list[dict[str, Any]]:
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError:
        return []
    try:
        data = os.read(fd, 4 * LIMIT) if _is_regular(fd) else b""
    except OSError:
        data = b""
    finally:
        os.close(fd)
    events: list[dict[str, Any]] = []
    for line in data.split(b"\n")[:-1]:  # the last piece has no newline: partial, or empty
        event = _decode(line)
        if event is not None:
            events.append(event)
    return events


def _is_regular(fd: int) -> bool:
    return stat.S_ISREG(os.fstat(fd).st_mode)


def _reject_constant(word: str) -> Any:
    raise ValueError(word)


def _decode(line: bytes) -> dict[str, Any] | None:
    if not line or len(line) > MAX_LINE:
        return None
    try:
        event = json.loads(line.decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return None
    if not isinstance(event, dict):
        return None
    stamp, kind = event.get("t"), event.get("kind")
    if type(stamp) not in (int, float) or not isinstance(kind, str):
        return None
    return event
