"""The daemon's event log: appended, bounded, read back whatever is in it."""

from __future__ import annotations

import json
import os
from pathlib import Path

from alcatraz.network.egress.events import EventLog, read_events


def test_events_are_appended_and_read_back(tmp_path: Path) -> None:
    path = str(tmp_path / "events.jsonl")
    log = EventLog(path)
    log.record("dns-refused", name="evil.test", qtype="A")
    log.record("dns-allowed", name="a.test", addresses=["203.0.113.1"], ttl=60)
    events = read_events(path)
    assert [e["kind"] for e in events] == ["dns-refused", "dns-allowed"]
    assert events[0]["name"] == "evil.test" and isinstance(events[0]["t"], float)
    assert os.stat(path).st_mode & 0o777 == 0o600


def test_the_log_rotates_to_dot_one_and_stays_bounded(tmp_path: Path) -> None:
    path = str(tmp_path / "events.jsonl")
    log = EventLog(path, limit=1000)
    for number in range(100):
        log.record("dns-refused", name=f"n{number}.test", qtype="A")
    assert os.path.getsize(path) <= 1000 and os.path.getsize(path + ".1") <= 1000
    names = [e["name"] for e in read_events(path)]
    assert names[-1] == "n99.test"
    assert names == sorted(names, key=lambda n: int(n[1:].split(".")[0]))  # oldest first


def test_the_reader_skips_what_the_daemon_did_not_write(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    good = json.dumps({"t": 1.5, "kind": "dns-refused", "name": "\x1b[2Jx.test"})
    lines = [
        good,
        "not json",
        "[1, 2]",
        json.dumps({"t": "yesterday", "kind": "x"}),
        json.dumps({"t": 1, "kind": 5}),
        '{"t": NaN, "kind": "x"}',
        "[" * 5000,
        json.dumps({"t": 2, "kind": "x", "pad": "y" * 20000}),
        "\udcff".encode("utf-8", "surrogatepass").decode("latin-1"),
        json.dumps({"t": 3, "kind": "partial"})[:-1],
    ]
    path.write_text("\n".join(lines), encoding="latin-1")  # the last line has no newline
    events = read_events(str(path))
    assert events == [json.loads(good)]


def test_a_missing_log_or_a_link_reads_as_empty(tmp_path: Path) -> None:
    assert read_events(str(tmp_path / "none.jsonl")) == []
    target = tmp_path / "elsewhere"
    target.write_text(json.dumps({"t": 1, "kind": "x"}) + "\n")
    (tmp_path / "link.jsonl").symlink_to(target)
    assert read_events(str(tmp_path / "link.jsonl")) == []
    os.mkfifo(tmp_path / "fifo.jsonl")
    assert read_events(str(tmp_path / "fifo.jsonl")) == []


def test_a_log_that_cannot_be_written_is_no_error(tmp_path: Path) -> None:
    EventLog(str(tmp_path / "missing-dir" / "events.jsonl")).record("dns-refused", name="a")
