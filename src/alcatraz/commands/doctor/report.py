"""`alca doctor`'s report: one `Check` per line, and the pure functions that render them."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Final

OK: Final = "ok"
WARN: Final = "warn"
FAIL: Final = "fail"
INFO: Final = "info"
_MARKS: Final = {OK: "✓", WARN: "!", FAIL: "✗", INFO: "·"}


@dataclass(frozen=True)
class Check:
    """One line of the report: what was checked, what was found, and how to fix it."""

    name: str
    status: str
    summary: str
    fix: str | None = None


@dataclass(frozen=True)
class DoctorReport:
    """Every check, in the order a user would fix them."""

    checks: tuple[Check, ...]

    @property
    def failed(self) -> bool:
        return any(c.status == FAIL for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {"ok": not self.failed, "checks": [asdict(c) for c in self.checks]}


def render(report: DoctorReport) -> list[str]:
    """One line per check (with its fix when it warns or fails), then the counts."""
    checks = report.checks
    width = max(len(c.name) for c in checks)
    lines: list[str] = []
    for check in checks:
        lines.append(f"{_MARKS[check.status]} {check.name.ljust(width)}  {check.summary}")
        if check.fix and check.status in (WARN, FAIL):
            lines.append(" " * (width + 4) + "Fix: " + check.fix)
    counts = {s: sum(1 for c in checks if c.status == s) for s in (FAIL, WARN)}
    lines.append("")
    lines.append(
        f"{counts[FAIL]} failed, {counts[WARN]} warning{'s' if counts[WARN] != 1 else ''}"
        if report.failed or counts[WARN]
        else "Everything alcatraz needs is in place."
    )
    return lines
