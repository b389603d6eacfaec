"""`alca net log` with the egress daemon's events: refused names, refused connections, and
the blocked addresses joined with the names that resolved to them. Names are the sandbox's
choice: they come out escaped."""

from __future__ import annotations

import json
from pathlib import Path

from alcatraz.commands.net import render_log, with_events
from alcatraz.network.egress.events import events_path
from alcatraz.sandbox.netreport import egress_report

#: 2026-01-01T00:00:00Z
T0 = 1767225600


def write_events(state: Path, *items: dict[str, object]) -> None:
    Path(events_path(state)).write_text("".join(json.dumps(i) + "\n" for i in items))


def test_refused_names_are_counted_with_first_and_last_times(tmp_path: Path) -> None:
    write_events(
        tmp_path,
        {"t": T0, "kind": "dns-refused", "name": "evil.test", "qtype": "A"},
        {"t": T0 + 60, "kind": "dns-refused", "name": "evil.test", "qtype": "AAAA"},
        {"t": T0 + 5, "kind": "dns-refused", "name": "other.test", "qtype": "A"},
        {
            "t": T0 + 9,
            "kind": "check-refused",
            "name": "cdn.test",
            "address": "203.0.113.9",
            "port": 443,
            "why": "sni",
        },
        {
            "t": T0 + 7,
            "kind": "dns-allowed",
            "name": "api.test",
            "addresses": ["203.0.113.9"],
            "ttl": 60,
        },
        {
            "t": T0 + 8,
            "kind": "dns-allowed",
            "name": "v6.test",
            "addresses": ["2001:db8:0:0::1"],
            "ttl": 60,
        },
    )
    events = egress_report(tmp_path)
    assert events["refused_names"] == [
        {
            "name": "evil.test",
            "qtypes": ["A", "AAAA"],
            "count": 2,
            "first": "2026-01-01T00:00:00Z",
            "last": "2026-01-01T00:01:00Z",
        },
        {
            "name": "other.test",
            "qtypes": ["A"],
            "count": 1,
            "first": "2026-01-01T00:00:05Z",
            "last": "2026-01-01T00:00:05Z",
        },
    ]
    assert events["refused_connections"] == [
        {
            "name": "cdn.test",
            "address": "203.0.113.9",
            "port": 443,
            "why": "sni",
            "count": 1,
            "first": "2026-01-01T00:00:09Z",
            "last": "2026-01-01T00:00:09Z",
        },
    ]
    assert events["resolved"] == {"203.0.113.9": ["api.test"], "2001:db8::1": ["v6.test"]}

    report = {
        "state": "enabled",
        "network": "alca-n",
        "subnet": "10.213.7.0/24",
        "blocked": 5,
        "destinations": [{"address": "203.0.113.9", "packets": 5}],
    }
    joined = with_events(report, events)
    assert joined["destinations"] == [
        {"address": "203.0.113.9", "packets": 5, "names": ["api.test"]}
    ]
    assert "\n".join(render_log(joined)) == (
        "Network isolation: enabled on alca-n (10.213.7.0/24); 5 packets blocked in total\n"
        "\n"
        "DESTINATION  PACKETS  NAMES (resolved to it)\n"
        "203.0.113.9  5        api.test\n"
        "\n"
        "Refused names (not in [network] egress; the sandbox got NXDOMAIN):\n"
        "NAME        COUNT  FIRST                 LAST\n"
        "evil.test   2      2026-01-01T00:00:00Z  2026-01-01T00:01:00Z\n"
        "other.test  1      2026-01-01T00:00:05Z  2026-01-01T00:00:05Z\n"
        "\n"
        "Refused connections (TLS SNI or HTTP Host not in egress; reset):\n"
        "NAME      ADDRESS          COUNT  FIRST                 LAST\n"
        "cdn.test  203.0.113.9:443  1      2026-01-01T00:00:09Z  2026-01-01T00:00:09Z\n"
        "\n"
        "To allow one: alca net allow NAME (then 'alca up' applies it)."
    )


def test_without_events_the_log_is_as_before(tmp_path: Path) -> None:
    report = {
        "state": "enabled",
        "network": "n",
        "subnet": "s",
        "blocked": 1,
        "destinations": [{"address": "10.0.0.1", "packets": 1}],
    }
    joined = with_events(report, egress_report(tmp_path))
    assert render_log(joined) == [
        "Network isolation: enabled on n (s); 1 packets blocked in total",
        "",
        "DESTINATION  PACKETS",
        "10.0.0.1     1",
    ]
    assert joined["refused_names"] == [] and joined["refused_connections"] == []


def test_hostile_names_are_escaped(tmp_path: Path) -> None:
    hostile = "a\x1b[8m\x1b]0;PWN\x07\u202eb.test\r\nforged line"
    write_events(
        tmp_path,
        {"t": T0, "kind": "dns-refused", "name": hostile, "qtype": "A"},
        {
            "t": T0,
            "kind": "check-refused",
            "name": "g\u0456thub.com",
            "address": "203.0.113.1",
            "port": 443,
            "why": "sni",
        },
        {"t": T0, "kind": "dns-allowed", "name": hostile, "addresses": ["203.0.113.1"]},
    )
    report = {
        "state": "enabled",
        "network": "n",
        "subnet": "s",
        "blocked": 1,
        "destinations": [{"address": "203.0.113.1", "packets": 1}],
    }
    text = "\n".join(render_log(with_events(report, egress_report(tmp_path))))
    for raw in ("\x1b", "\x07", "\u202e", "\r", "\u0456", "\nforged"):
        assert raw not in text
    shown = "a\\x1b[8m\\x1b]0;PWN\\x07\\u202eb.test\\r\\nforged line"
    assert text.count(shown) == 2  # the refused name, and the name of the blocked address
    assert "g\\u0456thub.com" in text


def test_no_network_yet_still_shows_refusals(tmp_path: Path) -> None:
    write_events(tmp_path, {"t": T0, "kind": "dns-refused", "name": "x.test", "qtype": "A"})
    lines = render_log(with_events({"state": "none"}, egress_report(tmp_path)))
    assert lines[0] == "No sandbox network yet: run 'alca up'."
    assert any(line.startswith("x.test ") for line in lines)


def test_endless_invented_names_are_cut_in_the_text_but_not_in_json(tmp_path: Path) -> None:
    write_events(
        tmp_path,
        *(
            {"t": T0 + i, "kind": "dns-refused", "name": f"n{i}.test", "qtype": "A"}
            for i in range(120)
        ),
    )
    joined = with_events({"state": "none"}, egress_report(tmp_path))
    lines = render_log(joined)
    assert sum(line.startswith("n") and ".test" in line for line in lines) == 50
    assert lines[4].startswith("n119.test ")  # most recent first
    assert "... and 70 more, least recent ('alca net log --json' lists all)" in lines
    assert len(joined["refused_names"]) == 120
