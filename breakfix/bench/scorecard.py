"""The scorecard (JSON, and Markdown shaped like the Phi-3 report's table: rows are metrics,
columns are models) and the paired comparison of two scorecards.

`compare` pairs the items both scorecards measured. Rates: McNemar's exact test on the
discordant pairs. Means: a paired bootstrap. A difference is significant at p < 0.05 (each
metric on its own; with many metrics, a few "significant" ones can be chance). Capability
metrics also report retention: the new figure over the base figure, with a paired-bootstrap
interval.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel

from breakfix.bench.base import Metric
from breakfix.stats import Rate, mcnemar  # noqa: F401  (mcnemar lives in stats; imported here by older code)

SCHEMA_VERSION = 1


class Scorecard(BaseModel):
    schema_version: int = SCHEMA_VERSION
    run_id: str
    model: str
    fingerprint: str
    preset: str
    suites: list[str]
    judges: dict[str, str]
    created_at: str
    metrics: list[Metric]
    timing: dict[str, float] = {}
    # Each judge's measured agreement with people on labels it never trained on, so a figure is
    # never read without how far the judge behind it can be trusted.
    judge_agreement: dict[str, dict] = {}

    def metric(self, key: str) -> Metric | None:
        return next((m for m in self.metrics if m.key == key), None)


def cell(rate: Rate, percent: bool) -> str:
    if rate.value is None:
        return f"– (n={rate.n})"
    scale, fmt = (100, "{:.1f}") if percent else (1, "{:.2f}")
    return f"{fmt.format(rate.value * scale)} [{fmt.format(rate.low * scale)}, {fmt.format(rate.high * scale)}] (n={rate.n})"


def rows(cards: list[Scorecard]) -> list[tuple[Metric, list[str]]]:
    """Each metric any card has (as first measured) with its cell per card: "" where a card lacks
    it, unscoreable items noted. Markdown, the CLI table and the HTML report all show these."""
    keys = list(dict.fromkeys(m.key for card in cards for m in card.metrics))
    out = []
    for key in keys:
        first = next(card.metric(key) for card in cards if card.metric(key))
        cells = []
        for card in cards:
            m = card.metric(key)
            cells.append("" if m is None else cell(m.estimate, m.kind == "rate") + (f", {m.unscoreable} unscoreable" if m.unscoreable else ""))
        out.append((first, cells))
    return out


def label(metric: Metric) -> str:
    """A row's name: the metric, its unit, and which way is better."""
    return f"{metric.name}{' (%)' if metric.kind == 'rate' else ''} {'↓' if metric.better == 'lower' else '↑'}"


def agreement_line(card: Scorecard) -> str:
    """The judges' held-out agreement with people, in one line ("" when not measured)."""
    parts = []
    for name, a in card.judge_agreement.items():
        if "binary_accuracy" in a:
            parts.append(f"{name}: refusal vs compliance agrees with people {a['binary_accuracy']:.1%} (n={a['n']})")
        elif "spearman" in a:
            parts.append(f"{name}: Spearman {a['spearman']:.2f} with people, harmful (>= 4) or not agrees "
                         f"{a['threshold_accuracy']:.1%} (n={a['n']})")
    return ("Judges, on held-out human labels: " + "; ".join(parts)) if parts else ""


def markdown(cards: list[Scorecard]) -> str:
    """Rates in percent with 95% intervals and counts; unscoreable items noted per cell; the
    judges' measured agreement under the table."""
    lines = ["| Metric | " + " | ".join(card.model for card in cards) + " |", "|---" * (len(cards) + 1) + "|"]
    lines += [f"| {label(first)} | " + " | ".join(cells) + " |" for first, cells in rows(cards)]
    notes = list(dict.fromkeys(line for card in cards if (line := agreement_line(card))))
    return "\n".join(lines + [""] + notes if notes else lines) + "\n"


class Comparison(BaseModel):
    key: str
    name: str
    better: str
    a: Rate
    b: Rate
    paired: int
    difference: float | None
    low: float | None
    high: float | None
    p: float | None
    significant: bool
    verdict: str
    retention: Rate | None = None


def compare(a: Scorecard, b: Scorecard, samples: int = 2000, seed: int = 0) -> list[Comparison]:
    out = []
    for ma in a.metrics:
        mb = b.metric(ma.key)
        if mb is None:
            continue
        left = {o.item: o.value for o in ma.outcomes}
        right = {o.item: o.value for o in mb.outcomes}
        items = sorted(left.keys() & right.keys())
        x, y = np.array([left[i] for i in items]), np.array([right[i] for i in items])
        out.append(_compare(ma, mb, x, y, samples, seed))
    return out


def _compare(ma: Metric, mb: Metric, x: np.ndarray, y: np.ndarray, samples: int, seed: int) -> Comparison:
    common = dict(key=ma.key, name=ma.name, better=ma.better, a=ma.estimate, b=mb.estimate, paired=len(x))
    if len(x) == 0:
        return Comparison(**common, difference=None, low=None, high=None, p=None, significant=False,
                          verdict="no items in common")
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(x), size=(samples, len(x)))
    diffs = (y[draws] - x[draws]).mean(1)
    low, high = np.percentile(diffs, [2.5, 97.5])
    difference = float(y.mean() - x.mean())
    if ma.kind == "rate":
        p = mcnemar(int(((x >= 0.5) & (y < 0.5)).sum()), int(((x < 0.5) & (y >= 0.5)).sum()))
    else:
        p = float(min(1.0, 2 * min((diffs <= 0).mean(), (diffs >= 0).mean())))
    significant = p < 0.05 and difference != 0
    improved = (difference < 0) == (ma.better == "lower")
    verdict = ("better" if improved else "worse") if significant else "no significant difference"
    retention = None
    if ma.suite == "capability" and x.mean() > 0:
        ratios = y[draws].mean(1) / np.maximum(x[draws].mean(1), 1e-9)
        lo, hi = np.percentile(ratios, [2.5, 97.5])
        retention = Rate(n=len(x), value=float(y.mean() / x.mean()), low=float(lo), high=float(hi))
    return Comparison(**common, difference=difference, low=float(low), high=float(high), p=p, significant=significant,
                      verdict=verdict, retention=retention)
