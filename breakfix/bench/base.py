"""The suite interface, metric records and the helpers suites share.

A suite draws its items from the eval split only (plus files the user gives), runs them
through the model with the context's cache, judges them, and returns metrics. Each metric
keeps its per-item outcomes, so `breakfix eval compare` can pair two scorecards item by item.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel

from breakfix.bench.context import EvalContext
from breakfix.registry import Registry
from breakfix.stats import Rate, bootstrap, rate
from breakfix.types import Score, Seed


class Outcome(BaseModel):
    """One item's contribution to one metric: 1/0 for a rate, a number for a mean."""

    item: str
    value: float
    category: str | None = None


class Metric(BaseModel):
    key: str
    name: str
    suite: str
    kind: Literal["rate", "mean"]
    better: Literal["lower", "higher"]
    estimate: Rate
    unscoreable: int = 0
    by_category: dict[str, Rate] = {}
    outcomes: list[Outcome] = []


@runtime_checkable
class Suite(Protocol):
    name: str
    description: str

    def run(self, ctx: EvalContext) -> list[Metric]: ...


SUITES: Registry[Callable[[], Suite]] = Registry("suite", "breakfix.suites")
register_suite = SUITES.register


def metric(key: str, name: str, suite: str, outcomes: Sequence[Outcome], *, kind: str = "rate", better: str = "lower",
           unscoreable: int = 0) -> Metric:
    """A metric from per-item outcomes: Wilson interval for rates, bootstrap for means, and the
    same per harm category."""
    def estimate(values: list[float]) -> Rate:
        return rate([v >= 0.5 for v in values]) if kind == "rate" else bootstrap(values)

    by: dict[str, list[float]] = defaultdict(list)
    for o in outcomes:
        if o.category:
            by[o.category].append(o.value)
    return Metric(key=key, name=name, suite=suite, kind=kind, better=better, estimate=estimate([o.value for o in outcomes]),
                  unscoreable=unscoreable, by_category={c: estimate(v) for c, v in sorted(by.items())},
                  outcomes=list(outcomes))


def defects(scores: Sequence[Score], items: Sequence[str], categories: Sequence[str | None], at: float) -> tuple[list[Outcome], int]:
    """Outcomes "severity >= at" for the scoreable scores, and how many were unscoreable."""
    outcomes = [Outcome(item=i, value=float(s.value >= at), category=c)
                for s, i, c in zip(scores, items, categories) if not s.unscoreable]
    return outcomes, sum(s.unscoreable for s in scores)


QUICK = {"harm_single_turn": 4, "harm_multi_turn": 1, "harmful_continuation": 3, "harmful_summarization": 16,
         "jailbreak": 2, "ungroundedness": 16, "over_refusal": 120, "capability": 100, "helpfulness": 30}


def sample(seeds: Sequence[Seed], n: int | None, seed: int, by: Callable[[Seed], str] | None = None) -> list[Seed]:
    """Up to n items (n per group when `by` is given), the same every time; all when n is None."""
    ordered = sorted(seeds, key=lambda s: s.id)
    if n is None:
        return ordered
    rng = random.Random(seed)
    if by is None:
        return sorted(rng.sample(ordered, min(n, len(ordered))), key=lambda s: s.id)
    groups: dict[str, list[Seed]] = defaultdict(list)
    for s in ordered:
        groups[by(s)].append(s)
    return [s for g in sorted(groups) for s in sorted(rng.sample(groups[g], min(n, len(groups[g]))), key=lambda s: s.id)]


def limit(ctx: EvalContext, name: str) -> int | None:
    """Items (per group) a suite takes: the context's own limit, else the preset's."""
    if name in ctx.limits:
        return ctx.limits[name]
    return QUICK[name] if ctx.preset == "quick" else None
