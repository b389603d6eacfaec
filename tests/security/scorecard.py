"""The security scorecard: one line at the end of a pytest session, from the real outcomes.

Load it for the whole suite with `pytest_plugins = ["tests.security.scorecard"]` in
tests/conftest.py (tests/security/conftest.py loads it when only that directory runs).

Categories, by the module a test lives in:

* tests/integration/test_isolation.py: network truth-table cells, read from the
  `<name>.json` properties those tests attach with `record_property` (a cell is correct
  unless its verdict is LEAK, FALSE-BLOCK or BLOCK-UNEXPLAINED); without properties, the
  tests themselves are counted.
* tests/integration/test_isolation_faults.py: faults; a failed one counts as fail-open.
* tests/unit/test_bad_input.py: bad inputs (`test_bad_input_is_rejected_cleanly`); a
  failure is sorted into "state change" or "traceback" from its report text.
* tests/security/test_*.py: posture checks, filesystem attacks, hostile inputs, data
  safety. A test may attach `changed_files` (an int) with `record_property`.
* `WORKSPACE` modules: attacks of the hostile workspace (issue 13), counted together.
* tests/integration/test_egress.py, test_egress_attacks.py: egress by name (issue 15), its
  acceptance truth tables and the attacks from inside.
* tests/integration/test_names.py: names resolve only through the project's resolver,
  and the host's CAs reach the sandbox only when asked (issue 12).

A category that did not run is left out. Known bugs (strict xfail) and skips are shown.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

FAILING_VERDICTS = frozenset({"LEAK", "FALSE-BLOCK", "BLOCK-UNEXPLAINED"})

SECURITY = {
    "tests/security/test_posture.py": "posture",
    "tests/security/test_filesystem.py": "filesystem",
    "tests/security/test_hostile_input.py": "hostile",
    "tests/security/test_data_safety.py": "data",
    "tests/integration/test_names.py": "names",
    "tests/integration/test_egress.py": "egress",
    "tests/integration/test_egress_attacks.py": "egress",
}
#: Where the attacks of a hostile workspace live (paths, restarts, protected files, printable
#: text, presets, `net allow`): one category, whatever module a case is in.
WORKSPACE = frozenset(
    {
        "tests/security/test_hostile_workspace.py",
        "tests/integration/lifecycle/test_hostile_sources.py",
        "tests/security/test_host_executed_files.py",
        "tests/security/test_printable_sweep.py",
        "tests/integration/lifecycle/test_agent_preset_mounts.py",
        "tests/security/test_net_allow_workspace.py",
    }
)


@dataclass
class Tally:
    passed: int = 0
    failed: int = 0
    xfailed: int = 0  # known bugs
    skipped: int = 0
    extra: dict[str, int] = field(default_factory=dict)

    def add(self, key: str, n: int = 1) -> None:
        self.extra[key] = self.extra.get(key, 0) + n

    @property
    def ran(self) -> int:
        return self.passed + self.failed + self.xfailed


def category(nodeid: str) -> str | None:
    path = nodeid.split("::", 1)[0]
    if path in SECURITY:
        return SECURITY[path]
    if path in WORKSPACE:
        return "workspace"
    if path == "tests/integration/test_isolation_faults.py":
        return "faults"
    if path.startswith("tests/integration/test_isolation"):
        return "network"
    if path == "tests/unit/test_bad_input.py" and "test_bad_input_is_rejected_cleanly" in nodeid:
        return "bad_input"
    return None


class Scorecard:
    def __init__(self) -> None:
        self.tallies: dict[str, Tally] = {}
        self.outcome: dict[str, str] = {}  # nodeid -> passed/failed/xfailed/skipped
        self.failure_text: dict[str, str] = {}
        self.properties: dict[str, list[tuple[str, Any]]] = {}

    # -- collection ---------------------------------------------------------------------------
    def record(self, report: pytest.TestReport) -> None:
        if category(report.nodeid) is None:
            return
        nodeid = report.nodeid
        self.properties.setdefault(nodeid, []).extend(report.user_properties)
        previous = self.outcome.get(nodeid)
        if hasattr(report, "wasxfail") and report.skipped:
            outcome = "xfailed"
        elif report.failed:
            outcome = "failed"
            self.failure_text[nodeid] = report.longreprtext
        elif report.skipped:
            outcome = "skipped"
        elif report.when == "call":
            outcome = "passed"
        else:
            return
        if previous in ("failed", "xfailed"):
            return  # a teardown error after a failure: still one failure
        self.outcome[nodeid] = outcome

    def tally(self) -> dict[str, Tally]:
        tallies: dict[str, Tally] = {}
        for nodeid, outcome in self.outcome.items():
            name = category(nodeid)
            assert name is not None
            tally = tallies.setdefault(name, Tally())
            setattr(tally, outcome, getattr(tally, outcome) + 1)
            props = self.properties.get(nodeid, [])
            if name == "network":
                for key, value in props:
                    if not key.endswith(".json") or "positive-control" in key:
                        continue
                    cells = json.loads(value).get("cells", [])
                    tally.add("cells", len(cells))
                    tally.add("correct", sum(c["verdict"] not in FAILING_VERDICTS for c in cells))
                    tally.add("leaks", sum(c["verdict"] == "LEAK" for c in cells))
            if name == "bad_input" and outcome == "failed":
                text = self.failure_text.get(nodeid, "")
                if "Traceback (most recent call last)" in text or "traceback" in text.lower():
                    tally.add("tracebacks")
                if "changed" in text or "state" in text:
                    tally.add("state_changes")
            if name == "data":
                for key, value in props:
                    if key == "changed_files":
                        tally.add("changed_files", int(value))
        return tallies

    # -- the line -----------------------------------------------------------------------------
    def line(self) -> str | None:
        tallies = self.tally()
        parts: list[str] = []
        for name, render in (
            ("network", _network),
            ("faults", _faults),
            ("bad_input", _bad_input),
            ("posture", lambda t: _simple(t, "posture checks ok")),
            ("filesystem", lambda t: _simple(t, "filesystem attacks contained")),
            ("hostile", lambda t: _simple(t, "hostile inputs handled")),
            ("data", _data),
            ("workspace", lambda t: _simple(t, "hostile-workspace attacks contained")),
            ("names", lambda t: _simple(t, "name and CA checks ok")),
            ("egress", lambda t: _simple(t, "egress checks held")),
        ):
            if name in tallies and (tallies[name].ran or tallies[name].skipped):
                parts.append(render(tallies[name]))
        return "SCORECARD: " + "; ".join(parts) if parts else None


def _notes(t: Tally) -> str:
    notes = []
    if t.xfailed:
        notes.append(f"{t.xfailed} known issue{'s' * (t.xfailed != 1)} (strict xfail)")
    if t.skipped:
        notes.append(f"{t.skipped} skipped")
    return f" ({', '.join(notes)})" if notes else ""


def _simple(t: Tally, words: str) -> str:
    text = f"{t.passed}/{t.ran} {words}"
    if t.failed:
        text += f", {t.failed} FAILED"
    return text + _notes(t)


def _network(t: Tally) -> str:
    cells = t.extra.get("cells", 0)
    if cells:
        correct, leaks = t.extra.get("correct", 0), t.extra.get("leaks", 0)
        text = f"{correct}/{cells} network cells correct, "
        text += f"{leaks} LEAK{'S' * (leaks != 1)}" if leaks else "0 leaks"
        if t.failed:
            text += f" ({t.failed} network tests FAILED)"
        return text + _notes(t)
    return _simple(t, "network isolation tests passed")


def _faults(t: Tally) -> str:
    text = f"{t.ran} faults, "
    text += f"{t.failed} FAIL-OPEN" if t.failed else "0 fail-open"
    return text + _notes(t)


def _bad_input(t: Tally) -> str:
    changes, tracebacks = t.extra.get("state_changes", 0), t.extra.get("tracebacks", 0)
    text = f"{t.passed}/{t.ran} bad inputs rejected, "
    text += f"{changes} state change{'s' * (changes != 1)}, "
    text += f"{tracebacks} traceback{'s' * (tracebacks != 1)}"
    if t.failed:
        text += f", {t.failed} FAILED"
    return text + _notes(t)


def _data(t: Tally) -> str:
    changed = t.extra.get("changed_files", 0)
    text = f"data safety: {changed} user file{'s' * (changed != 1)} changed"
    if t.failed:
        text += f" ({t.failed} check{'s' * (t.failed != 1)} FAILED)"
    else:
        text += f" ({t.passed} checks)"
    return text + _notes(t)


_SCORECARD = Scorecard()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _SCORECARD.record(report)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    line = _SCORECARD.line()
    if line:
        terminalreporter.write_sep("=", "security scorecard")
        terminalreporter.write_line(line)
