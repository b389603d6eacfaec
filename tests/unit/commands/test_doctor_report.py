"""`alca doctor`'s rendering, from a typed report: marks, aligned names, fixes, counts."""

from __future__ import annotations

from alcatraz.commands.doctor.report import FAIL, INFO, OK, WARN, Check, DoctorReport, render


def test_fixes_show_for_warnings_and_failures_only() -> None:
    report = DoctorReport(
        (
            Check("docker", OK, "answers", "never shown"),
            Check("network-helper", WARN, "not installed", "alca network-helper install"),
            Check("br_netfilter", INFO, "loaded", "never shown"),
            Check("mutagen", FAIL, "missing", "install it"),
        )
    )
    assert render(report) == [
        "✓ docker          answers",
        "! network-helper  not installed",
        "                  Fix: alca network-helper install",
        "· br_netfilter    loaded",
        "✗ mutagen         missing",
        "                  Fix: install it",
        "",
        "1 failed, 1 warning",
    ]
    assert report.failed
    assert report.to_json()["ok"] is False
    assert report.to_json()["checks"][0] == {
        "name": "docker",
        "status": "ok",
        "summary": "answers",
        "fix": "never shown",
    }


def test_all_in_place() -> None:
    report = DoctorReport((Check("a", OK, "fine"), Check("b", INFO, "note", "hint")))
    assert render(report)[-2:] == ["", "Everything alcatraz needs is in place."]
    assert not report.failed and report.to_json()["ok"] is True


def test_warnings_alone_are_counted() -> None:
    report = DoctorReport((Check("a", WARN, "hm"), Check("b", WARN, "hm")))
    assert render(report)[-1] == "0 failed, 2 warnings"
