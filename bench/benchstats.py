"""Pure statistics for the benchmark: medians, quartiles, paired ratios, verdicts.

Kept free of I/O so `tests/unit/test_bench_stats.py` can pin it down. The machines we
measure on are small and shared, so every figure is a median with its interquartile range
(IQR), and A/B comparisons are *paired*: each round runs every variant once, back to back,
and the ratio is taken within the round, so drift in background load cancels.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Direction = Literal["max", "min"]


def quantile(values: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile (numpy's default, `statistics.quantiles` "inclusive")."""
    if not values:
        raise ValueError("quantile of an empty sample")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must be within [0, 1], not {q}")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = math.ceil(position)
    if low == high:
        return float(ordered[low])
    weight = position - low
    return float(ordered[low] * (1 - weight) + ordered[high] * weight)


def median(values: Sequence[float]) -> float:
    return quantile(values, 0.5)


@dataclass(frozen=True)
class Summary:
    """Median and spread of one sample."""

    n: int
    median: float
    q1: float
    q3: float
    low: float
    high: float

    @property
    def iqr(self) -> float:
        return self.q3 - self.q1

    def as_dict(self) -> dict[str, float | int]:
        return {
            "n": self.n,
            "median": self.median,
            "q1": self.q1,
            "q3": self.q3,
            "min": self.low,
            "max": self.high,
        }


def summarize(values: Sequence[float]) -> Summary:
    return Summary(
        n=len(values),
        median=median(values),
        q1=quantile(values, 0.25),
        q3=quantile(values, 0.75),
        low=float(min(values)),
        high=float(max(values)),
    )


def paired_ratios(baseline: Sequence[float], candidate: Sequence[float]) -> list[float]:
    """candidate[i] / baseline[i] for each round (both measured in the same round)."""
    if len(baseline) != len(candidate):
        raise ValueError(f"unpaired samples: {len(baseline)} vs {len(candidate)}")
    if any(b <= 0 for b in baseline):
        raise ValueError("baseline values must be positive")
    return [c / b for b, c in zip(baseline, candidate, strict=True)]


def ratio_summary(baseline: Sequence[float], candidate: Sequence[float]) -> Summary:
    """Median and IQR of the per-round ratio candidate/baseline."""
    return summarize(paired_ratios(baseline, candidate))


@dataclass(frozen=True)
class Verdict:
    """Whether a median meets its target, and whether the spread makes that uncertain."""

    status: Literal["met", "not met", "borderline"]
    value: float
    target: float
    direction: Direction

    def as_dict(self) -> dict[str, object]:
        return {
            "status": self.status,
            "value": self.value,
            "target": self.target,
            "direction": self.direction,
        }


def verdict(summary: Summary, target: float, direction: Direction) -> Verdict:
    """`max`: the median must be <= target; `min`: >= target.

    "borderline" when the median meets the target but the IQR reaches past it, or misses
    it while the IQR reaches back: more rounds (or a quieter machine) would be needed to
    call it either way.
    """
    value = summary.median
    if direction == "max":
        met = value <= target
        straddles = summary.q1 <= target <= summary.q3
    else:
        met = value >= target
        straddles = summary.q1 <= target <= summary.q3
    if straddles and summary.q1 != summary.q3:
        status: Literal["met", "not met", "borderline"] = "borderline"
    else:
        status = "met" if met else "not met"
    return Verdict(status, value, target, direction)


Comparison = Literal["faster", "slower", "within noise"]


def compare(ratio: Summary) -> Comparison:
    """A candidate/baseline time ratio, read against 1.0 with its spread.

    "within noise" when the IQR of the per-round ratios contains 1.0 (the rounds disagree
    on which is faster); otherwise the whole IQR says "faster" (below 1) or "slower".
    """
    if ratio.q3 < 1.0:
        return "faster"
    if ratio.q1 > 1.0:
        return "slower"
    return "within noise"


def schedule(variants: Sequence[str], rounds: int, seed: int = 0) -> list[list[str]]:
    """The order of variants in each round: shuffled, and every second round reversed.

    Shuffling stops one variant from always following another (a cold cache, a daemon
    that just woke up); the reversal makes each pair run in both orders equally often.
    """
    rng = random.Random(seed)  # noqa: S311 - an ordering, not a secret
    order: list[list[str]] = []
    for index in range(rounds):
        if index % 2 == 0:
            current = list(variants)
            rng.shuffle(current)
        else:
            current = list(reversed(order[-1]))
        order.append(current)
    return order


def abba(rounds: int) -> list[str]:
    """`A B B A A B B A ...` for configurations that are expensive to switch."""
    pattern = ["A", "B", "B", "A"]
    return [pattern[i % 4] for i in range(rounds)]


def rate(timestamps: Sequence[float], skip: int = 1) -> float:
    """Events per second between the first kept and the last timestamp.

    The first `skip` events are dropped (the connection that woke everything up).
    """
    kept = sorted(timestamps)[skip:]
    if len(kept) < 2:
        raise ValueError("a rate needs at least two timestamps")
    span = kept[-1] - kept[0]
    if span <= 0:
        raise ValueError("timestamps do not span any time")
    return (len(kept) - 1) / span


def fmt_ms(value: float) -> str:
    return f"{value:.1f}"


def fmt_ratio(summary: Summary) -> str:
    """`1.23 (IQR 1.10–1.31)`."""
    return f"{summary.median:.2f} (IQR {summary.q1:.2f}–{summary.q3:.2f})"


def fmt_ms_summary(summary: Summary) -> str:
    """`123.4 ms (IQR 110.0–130.2)`."""
    return f"{summary.median:.1f} ms (IQR {summary.q1:.1f}–{summary.q3:.1f})"
