"""Rates and intervals, the same way everywhere.

Every rate is reported with its sample count and a 95% interval. Binary rates (defect rates,
refusal rates, attack success) use the Wilson score interval: a percentile bootstrap collapses
to [0, 0] at 0/n, which is exactly what a well-fixed model produces, and would claim certainty
it does not have. Other statistics (means, ratios, paired differences) use a seeded percentile
bootstrap.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from pydantic import BaseModel

Z95 = 1.959963984540054


class Rate(BaseModel):
    """`value` of `n` with a 95% interval; `value` is None when nothing could be scored."""

    n: int
    k: float = 0
    value: float | None
    low: float | None
    high: float | None

    def __str__(self) -> str:
        if self.value is None:
            return f"- (n={self.n})"
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}] (n={self.n})"


def wilson(successes: int, n: int, z: float = Z95) -> Rate:
    if n == 0:
        return Rate(n=0, value=None, low=None, high=None)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return Rate(n=n, k=successes, value=p, low=max(0.0, centre - half), high=min(1.0, centre + half))


def rate(flags: Sequence[bool]) -> Rate:
    return wilson(int(sum(bool(f) for f in flags)), len(flags))


def bootstrap(values: Sequence[float], statistic: Callable[[np.ndarray], float] = np.mean, *,
              samples: int = 2000, seed: int = 0) -> Rate:
    """A statistic of `values` with a 95% percentile-bootstrap interval."""
    data = np.asarray(values, dtype=float)
    if len(data) == 0:
        return Rate(n=0, value=None, low=None, high=None)
    rng = np.random.default_rng(seed)
    draws = np.array([statistic(data[rng.integers(0, len(data), len(data))]) for _ in range(samples)])
    low, high = np.percentile(draws, [2.5, 97.5])
    return Rate(n=len(data), value=float(statistic(data)), low=float(low), high=float(high))


def mcnemar(only_a: int, only_b: int) -> float:
    """Exact two-sided McNemar p-value from the discordant pair counts (items only the first
    measurement flagged, items only the second flagged)."""
    from scipy.stats import binomtest

    n = only_a + only_b
    return 1.0 if n == 0 else float(binomtest(min(only_a, only_b), n, 0.5).pvalue)


def paired_upper(only_a: int, only_b: int, n: int, confidence: float) -> float:
    """One-sided upper bound, at `confidence`, of the paired difference in rates (second minus
    first) from the discordant counts of `n` shared items: the normal approximation to the
    difference of paired proportions, its variance ((b + c) - (b - c)^2 / n) / n^2."""
    from statistics import NormalDist

    if n <= 0 or not 0.5 <= confidence < 1:
        raise ValueError(f"paired_upper needs shared items and a confidence in [0.5, 1) (n={n}, confidence={confidence})")
    d = (only_b - only_a) / n
    var = max(0.0, (only_a + only_b) - (only_b - only_a) ** 2 / n) / (n * n)
    return d + NormalDist().inv_cdf(confidence) * math.sqrt(var)
