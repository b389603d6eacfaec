"""The benchmark's statistics (bench/benchstats.py): pure, so pinned down here."""

from __future__ import annotations

import importlib.util
import statistics
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

_PATH = Path(__file__).resolve().parents[2] / "bench" / "benchstats.py"
_SPEC = importlib.util.spec_from_file_location("benchstats", _PATH)
assert _SPEC is not None and _SPEC.loader is not None
bs = importlib.util.module_from_spec(_SPEC)
sys.modules["benchstats"] = bs  # dataclasses look their module up while being created
_SPEC.loader.exec_module(bs)

samples = st.lists(
    st.floats(min_value=0.001, max_value=1e6, allow_nan=False, allow_infinity=False),
    min_size=1,
    max_size=60,
)


def test_quantile_interpolates_like_statistics_inclusive():
    values = [1.0, 2.0, 4.0, 8.0, 16.0]
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    assert bs.quantile(values, 0.25) == pytest.approx(q1)
    assert bs.quantile(values, 0.5) == pytest.approx(q2)
    assert bs.quantile(values, 0.75) == pytest.approx(q3)


def test_median_even_and_odd():
    assert bs.median([3.0, 1.0, 2.0]) == 2.0
    assert bs.median([4.0, 1.0, 3.0, 2.0]) == 2.5


@pytest.mark.parametrize("q", [-0.1, 1.5])
def test_quantile_rejects_out_of_range(q):
    with pytest.raises(ValueError, match="within"):
        bs.quantile([1.0], q)


def test_quantile_rejects_empty():
    with pytest.raises(ValueError, match="empty"):
        bs.median([])


@given(samples)
def test_summary_is_ordered(values):
    s = bs.summarize(values)
    assert s.low <= s.q1 <= s.median <= s.q3 <= s.high
    assert s.n == len(values)
    assert s.median == pytest.approx(statistics.median(values))
    assert s.iqr >= 0


def test_paired_ratios_are_per_round():
    assert bs.paired_ratios([10.0, 20.0], [15.0, 20.0]) == [1.5, 1.0]


def test_ratio_summary_is_median_of_ratios_not_ratio_of_medians():
    baseline = [10.0, 100.0, 10.0]
    candidate = [20.0, 100.0, 30.0]  # ratios 2, 1, 3
    assert bs.ratio_summary(baseline, candidate).median == 2.0
    assert bs.median(candidate) / bs.median(baseline) == 3.0


def test_paired_ratios_refuse_unpaired_and_nonpositive():
    with pytest.raises(ValueError, match="unpaired"):
        bs.paired_ratios([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="positive"):
        bs.paired_ratios([0.0], [1.0])


@given(samples, st.floats(min_value=0.5, max_value=2.0))
def test_scaling_candidate_scales_ratio(values, factor):
    ratio = bs.ratio_summary(values, [v * factor for v in values])
    assert ratio.median == pytest.approx(factor)
    assert ratio.iqr == pytest.approx(0.0, abs=1e-9)


def _summary(q1, median, q3):
    return bs.Summary(n=10, median=median, q1=q1, q3=q3, low=q1, high=q3)


@pytest.mark.parametrize(
    ("q1", "median", "q3", "direction", "status"),
    [
        (1.00, 1.02, 1.04, "max", "met"),
        (1.10, 1.20, 1.30, "max", "not met"),
        (1.00, 1.04, 1.08, "max", "borderline"),  # IQR reaches past 1.05
        (1.02, 1.06, 1.09, "max", "borderline"),  # missed, but the IQR reaches back
        (0.98, 0.99, 1.00, "min", "met"),
        (0.90, 0.92, 0.95, "min", "not met"),
        (0.96, 0.98, 1.00, "min", "borderline"),
    ],
)
def test_verdict(q1, median, q3, direction, status):
    target = 1.05 if direction == "max" else 0.97
    assert bs.verdict(_summary(q1, median, q3), target, direction).status == status


def test_verdict_without_spread_is_decided_by_the_median():
    assert bs.verdict(_summary(1.05, 1.05, 1.05), 1.05, "max").status == "met"


def test_schedule_covers_every_variant_each_round_and_alternates():
    plan = bs.schedule(["a", "b", "c"], 6, seed=3)
    assert len(plan) == 6
    assert all(sorted(order) == ["a", "b", "c"] for order in plan)
    assert plan[1] == list(reversed(plan[0]))
    assert bs.schedule(["a", "b", "c"], 6, seed=3) == plan  # reproducible


@given(st.integers(min_value=1, max_value=40))
def test_schedule_balances_first_place_of_a_pair(rounds):
    plan = bs.schedule(["a", "b"], rounds * 2, seed=rounds)
    a_first = sum(1 for order in plan if order[0] == "a")
    assert a_first == rounds


def test_abba():
    assert "".join(bs.abba(8)) == "ABBAABBA"
    assert "".join(bs.abba(2)) == "AB"


def test_rate_skips_the_first_event_and_uses_the_span():
    # 1 warm-up connection, then 11 connections over 1 second: 10 intervals.
    stamps = [0.0] + [5.0 + i / 10 for i in range(11)]
    assert bs.rate(stamps) == pytest.approx(10.0)
    assert bs.rate(stamps, skip=0) == pytest.approx(11 / 6.0)


def test_rate_needs_two_events_and_a_span():
    with pytest.raises(ValueError, match="two"):
        bs.rate([1.0, 2.0])
    with pytest.raises(ValueError, match="span"):
        bs.rate([1.0, 2.0, 2.0], skip=1)


def test_formatting():
    s = _summary(1.1, 1.234, 1.3)
    assert bs.fmt_ratio(s) == "1.23 (IQR 1.10–1.30)"
    assert bs.fmt_ms_summary(_summary(100.0, 123.45, 130.0)) == "123.5 ms (IQR 100.0–130.0)"


@pytest.mark.parametrize(
    ("q1", "median", "q3", "expected"),
    [
        (0.90, 0.95, 0.98, "faster"),
        (1.01, 1.04, 1.10, "slower"),
        (0.97, 1.01, 1.03, "within noise"),
        (0.97, 0.99, 1.00, "within noise"),  # an IQR touching 1.0 does not decide
        (1.00, 1.00, 1.00, "within noise"),
    ],
)
def test_compare_reads_the_ratio_iqr_against_one(q1, median, q3, expected):
    ratio = bs.Summary(n=9, median=median, q1=q1, q3=q3, low=q1, high=q3)
    assert bs.compare(ratio) == expected
