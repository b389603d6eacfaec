"""The daemon's side of the event log: appended, private, bounded; links never followed."""

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
    assert [e.kind for e in events] == ["dns-refused", "dns-allowed"]
    assert events[0].name == "evil.test" and events[0].time > 0
    assert events[1].addresses == ("203.0.113.1",) and events[1].ttl == 60
    assert os.stat(path).st_mode & 0o777 == 0o600


def test_the_log_rotates_to_dot_one_and_stays_bounded(tmp_path: Path) -> None:
    path = str(tmp_path / "events.jsonl")
    log = EventLog(path, limit=1000)
    for number in range(100):
        log.record("dns-refused", name=f"n{number}.test", qtype="A")
    assert os.path.getsize(path) <= 1000 and os.path.getsize(path + ".1") <= 1000
    names = [e.name for e in read_events(path)]
    assert names[-1] == "n99.test"
    assert names == sorted(names, key=lambda n: int(n[1:].split(".")[0]))  # oldest first


def test_a_missing_log_or_a_link_reads_as_empty(tmp_path: Path) -> None:
    assert read_events(str(tmp_path / "none.jsonl")) == []
    target = tmp_path / "elsewhere"
    target.write_text(json.dumps({"t": 1, "kind": "dns-refused", "name": "x"}) + "\n")
    assert len(read_events(str(target))) == 1
    (tmp_path / "link.jsonl").symlink_to(target)
    assert read_events(str(tmp_path / "link.jsonl")) == []
    os.mkfifo(tmp_path / "fifo.jsonl")
    assert read_events(str(tmp_path / "fifo.jsonl")) == []


def test_a_log_that_cannot_be_written_is_no_error(tmp_path: Path) -> None:
    EventLog(str(tmp_path / "missing-dir" / "events.jsonl")).record("dns-refused", name="a")
