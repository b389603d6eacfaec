"""The daemon's events file (`egress-events.jsonl`, rotated to `.1`): written by the
project's daemon (`EventLog`), read for `net log` (`read_events`).

At `LIMIT` bytes the file moves to `PATH.1` (the previous `.1` is dropped), so the log
never holds more than about twice that.

The daemon appends one JSON object per line: `dns-refused` {t, name, qtype}, `dns-allowed`
{t, name, addresses, ttl}, `check-refused` {t, name, address, port, why}. The names come
from the sandbox (it chose what to query and which SNI or Host to present), so the reader
trusts nothing: a partial last line, a line that is not JSON or not an object, a field of
the wrong type, a file grown huge or replaced by a FIFO are skipped or bounded, never an
error. Callers escape names before printing them (`alcatraz.printable`).
"""

from __future__ import annotations

import json
import math
import os
import stat
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

#: The writer rotates the file past this many bytes.
LIMIT: Final = 1_000_000

#: At most this many bytes are read from the end of each file (the writer rotates at 1 MB).
MAX_READ_BYTES: Final = 2 << 20
#: Longer names are not DNS names; shown cut, so one event cannot flood the report.
MAX_NAME_LENGTH: Final = 255

EVENTS_NAME: Final = "egress-events.jsonl"
KINDS: Final = ("dns-refused", "dns-allowed", "check-refused")


@dataclass(frozen=True)
class Event:
    """One line of the events file, typed; fields a kind does not have are empty."""

    kind: str
    time: float
    name: str
    qtype: str = ""
    addresses: tuple[str, ...] = ()
    ttl: int = 0
    address: str = ""
    port: int = 0
    why: str = ""


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


def events_path(state_dir: str | os.PathLike[str]) -> str:
    """Where the daemon of the project whose state lives in `state_dir` writes events."""
    return os.path.join(os.fspath(state_dir), EVENTS_NAME)


def read_events(path: str | os.PathLike[str]) -> list[Event]:
    """The events of `path.1` then `path` (oldest first); missing files are empty."""
    base = os.fspath(path)
    events: list[Event] = []
    for candidate in (base + ".1", base):
        events.extend(_parse_lines(_tail(candidate)))
    return events


def _tail(path: str) -> bytes:
    """The last `MAX_READ_BYTES` of a regular file, without blocking on a FIFO or device."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return b""
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return b""
        start = max(0, info.st_size - MAX_READ_BYTES)
        data = os.pread(fd, MAX_READ_BYTES, start)
    except OSError:
        return b""
    finally:
        os.close(fd)
    if start > 0:  # began mid-line: drop the fragment
        data = data[data.find(b"\n") + 1 :] if b"\n" in data else b""
    return data


def _parse_lines(data: bytes) -> list[Event]:
    events: list[Event] = []
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            item = json.loads(line.decode("utf-8", "replace"))
        except (ValueError, RecursionError):
            continue  # a partial last line, or not JSON
        event = _event(item) if isinstance(item, dict) else None
        if event is not None:
            events.append(event)
    return events


def _text(item: dict[str, Any], key: str, limit: int = MAX_NAME_LENGTH) -> str:
    value = item.get(key)
    return value[:limit] if isinstance(value, str) else ""


def _integer(item: dict[str, Any], key: str) -> int:
    value = item.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _event(item: dict[str, Any]) -> Event | None:
    """The typed event, or None when the line is not one the reader knows."""
    kind, moment, name = item.get("kind"), item.get("t"), _text(item, "name")
    if kind not in KINDS or not name:
        return None
    if not isinstance(moment, int | float) or isinstance(moment, bool) or not math.isfinite(moment):
        return None
    addresses = item.get("addresses")
    return Event(
        kind=str(kind),
        time=float(moment),
        name=name,
        qtype=_text(item, "qtype", 16),
        addresses=tuple(a[:64] for a in addresses if isinstance(a, str))[:64]
        if isinstance(addresses, list)
        else (),
        ttl=_integer(item, "ttl"),
        address=_text(item, "address", 64),
        port=_integer(item, "port"),
        why=_text(item, "why", 200),
    )
