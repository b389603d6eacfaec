"""The events reader trusts nothing in the file: the sandbox chose every name in it."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from alcatraz.network.egress.events import MAX_READ_BYTES, Event, events_path, read_events


def line(**item: object) -> str:
    return json.dumps(item) + "\n"


def test_reads_the_rotated_file_first_then_the_current_one(tmp_path: Path) -> None:
    path = events_path(tmp_path)
    Path(path + ".1").write_text(line(t=1, kind="dns-refused", name="old.test", qtype="A"))
    Path(path).write_text(
        line(t=2, kind="dns-allowed", name="ok.test", addresses=["203.0.113.5"], ttl=60)
        + line(t=3, kind="check-refused", name="x.test", address="203.0.113.5", port=443, why="sni")
    )
    assert read_events(path) == [
        Event("dns-refused", 1.0, "old.test", qtype="A"),
        Event("dns-allowed", 2.0, "ok.test", addresses=("203.0.113.5",), ttl=60),
        Event("check-refused", 3.0, "x.test", address="203.0.113.5", port=443, why="sni"),
    ]


def test_missing_files_are_no_events(tmp_path: Path) -> None:
    assert read_events(tmp_path / "nothing.jsonl") == []


def test_bad_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    good = line(t=5, kind="dns-refused", name="a.test", qtype="AAAA")
    path.write_bytes(
        b"not json\n"
        + b"[1, 2]\n"
        + b'"a string"\n'
        + b"\xff\xfe\n"
        + line(t="soon", kind="dns-refused", name="b.test").encode()
        + line(t=True, kind="dns-refused", name="b.test").encode()
        + b'{"t": Infinity, "kind": "dns-refused", "name": "b.test"}\n'
        + line(t=1, kind="other", name="c.test").encode()
        + line(t=1, kind="dns-refused", name=7).encode()
        + line(t=1, kind="check-refused", name="d.test", port="443", address=["x"]).encode()
        + b"[" * 100000
        + b"\n"
        + good.encode()
        + b'{"t": 6, "kind": "dns-refused", "na'  # the writer was cut mid-line
    )
    events = read_events(path)
    assert events[0] == Event("check-refused", 1.0, "d.test")  # wrong types become empty
    assert events[1:] == [Event("dns-refused", 5.0, "a.test", qtype="AAAA")]


def test_a_huge_file_is_read_from_its_last_two_megabytes(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    first = line(t=1, kind="dns-refused", name="first.test")
    filler = line(t=2, kind="dns-refused", name="f" * 200)
    last = line(t=3, kind="dns-refused", name="last.test")
    with path.open("w") as handle:
        handle.write(first)
        handle.write(filler * (3 * MAX_READ_BYTES // len(filler)))
        handle.write(last)
    events = read_events(path)
    assert events[-1].name == "last.test"
    assert all(e.name != "first.test" for e in events)
    assert len(events) <= MAX_READ_BYTES // len(filler) + 1


def test_long_names_are_cut(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    path.write_text(line(t=1, kind="dns-refused", name="a" * 5000))
    assert len(read_events(path)[0].name) == 255


def test_a_fifo_or_a_directory_does_not_block_and_reads_as_empty(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    os.mkfifo(path)
    os.mkdir(str(path) + ".1")
    result: list[list[Event]] = []
    reader = threading.Thread(target=lambda: result.append(read_events(path)), daemon=True)
    reader.start()
    reader.join(5)
    assert result == [[]]
