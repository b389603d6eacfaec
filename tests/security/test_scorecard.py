"""The scorecard's arithmetic, from synthetic reports (no engine needed)."""

from __future__ import annotations

import json

import pytest

from tests.security.scorecard import Scorecard


def report(nodeid: str, outcome: str, *, when: str = "call", **extra: object) -> pytest.TestReport:
    made = pytest.TestReport(
        nodeid, ("x", 0, "x"), {}, outcome, extra.pop("longrepr", None), when,
        user_properties=list(extra.pop("props", [])),  # type: ignore[call-overload]
    )  # fmt: skip
    for key, value in extra.items():
        setattr(made, key, value)
    return made


def cells(*verdicts: str) -> str:
    return json.dumps({"cells": [{"verdict": v} for v in verdicts]})


def test_network_faults_and_bad_input_are_counted_from_outcomes() -> None:
    card = Scorecard()
    iso = "tests/integration/test_isolation.py::test_default[docker]"
    props = [("docker/default.json", cells("BLOCK-OK", "ALLOW-OK", "LEAK"))]
    props.append(("docker/positive-control.json", cells("LEAK")))  # not a sandbox's cells
    card.record(report(iso, "failed", props=props, longrepr="leak"))
    faults = "tests/integration/test_isolation_faults.py::test_restart[docker]"
    card.record(report(faults, "passed"))
    card.record(report(faults.replace("restart", "kill"), "failed", longrepr="x"))
    bad = "tests/unit/test_bad_input.py::test_bad_input_is_rejected_cleanly[c{}]"
    card.record(report(bad.format(1), "passed"))
    card.record(report(bad.format(2), "failed", longrepr="Traceback (most recent call last)"))
    card.record(report("tests/unit/test_other.py::test_x", "failed", longrepr="x"))
    line = card.line()
    assert line == (
        "SCORECARD: 2/3 network cells correct, 1 LEAK (1 network tests FAILED); "
        "2 faults, 1 FAIL-OPEN; 1/2 bad inputs rejected, 0 state changes, 1 traceback, "
        "1 FAILED"
    )


def test_security_categories_xfail_skip_and_data() -> None:
    card = Scorecard()
    posture = "tests/security/test_posture.py::test_{}[docker]"
    card.record(report(posture.format("a"), "passed", when="setup"))
    card.record(report(posture.format("a"), "passed"))
    card.record(report(posture.format("b"), "skipped", when="setup", longrepr=("f", 1, "s")))
    card.record(report(posture.format("c"), "skipped", wasxfail="BUG"))
    data = "tests/security/test_data_safety.py::test_cycle[bind]"
    card.record(report(data, "failed", props=[("changed_files", 2)], longrepr="changed"))
    assert card.line() == (
        "SCORECARD: 1/2 posture checks ok (1 known issue (strict xfail), 1 skipped); "
        "data safety: 2 user files changed (1 check FAILED)"
    )


def test_workspace_attacks_and_names_have_their_own_lines() -> None:
    card = Scorecard()
    card.record(report("tests/security/test_host_executed_files.py::test_a[docker]", "passed"))
    card.record(report("tests/security/test_printable_sweep.py::test_b", "failed", longrepr="x"))
    card.record(report("tests/integration/test_names.py::test_c[podman]", "passed"))
    assert card.line() == (
        "SCORECARD: 1/2 hostile-workspace attacks contained, 1 FAILED; 1/1 name and CA checks ok"
    )


def test_nothing_ran_no_line() -> None:
    assert Scorecard().line() is None
