"""Validation that cannot flatter: leave one labelled source out, train on the rest, measure on it.

In-distribution agreement (train and test split from the same sources) rewards a judge for
learning its sources' style. Holding out a whole source — one annotation file, one set we wrote —
asks what a user needs to know: how the judge does on replies from somewhere it never saw.
Each fold trains the offline refusal or harm model exactly as `breakfix assets` does, on every
split of every other source, then scores every item of the held-out one.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from breakfix.judges.artifacts import Example


class SourceResult(BaseModel):
    source: str
    n: int
    metrics: dict


class Reliability(BaseModel):
    """Observed rate of the positive class per bin of the judge's predicted probability."""

    bins: list[tuple[float, float]]
    predicted: list[float | None]
    observed: list[float | None]
    counts: list[int]


def source_of(example: Example) -> str:
    """pyrit's labels come in several files annotated apart: each file is a source of its own."""
    if example.source.startswith("pyrit"):
        return "pyrit:" + example.id.split(":")[1]
    return example.source


def reliability(probabilities: Sequence[float], outcomes: Sequence[bool], bins: int = 5) -> Reliability:
    edges = np.linspace(0, 1, bins + 1)
    p, y = np.asarray(probabilities, dtype=float), np.asarray(outcomes, dtype=bool)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    rows = [(float(p[which == b].mean()) if (which == b).any() else None,
             float(y[which == b].mean()) if (which == b).any() else None, int((which == b).sum())) for b in range(bins)]
    return Reliability(bins=[(float(a), float(b)) for a, b in zip(edges[:-1], edges[1:])],
                       predicted=[r[0] for r in rows], observed=[r[1] for r in rows], counts=[r[2] for r in rows])


def leave_one_source_out(kind: str, home: Path, progress=lambda text: None) -> list[SourceResult]:
    """Per labelled source of `kind` (refusal or harm): the judge trained without it, scored on it."""
    from breakfix.data import load_catalog
    from breakfix.judges import artifacts as a
    from breakfix.judges.calibrate import refusal_metrics, severity_metrics

    catalog = load_catalog(home)
    static, transformer = a._static(home, catalog), a.transformer_embedder(home)
    pool = a.refusal_examples(catalog) if kind == "refusal" else a.harm_examples(catalog)
    sources = sorted({source_of(e) for e in pool})
    request = a.request_model(catalog, static)  # the same for every fold: it reads requests, not labelled replies
    results = []
    for source in sources:
        progress(f"training without {source}")
        train = [e for e in pool if source_of(e) != source]
        test = [e for e in pool if source_of(e) == source]
        judges = _fold(kind, catalog, static, transformer, train, request)
        scores = judges.score(_inputs(test))
        gold = [e.label for e in test]
        metrics = refusal_metrics(gold, scores) if kind == "refusal" else severity_metrics(gold, scores, threshold=4)
        results.append(SourceResult(source=source, n=len(test), metrics=metrics))
    return results


def agreement(artifacts, catalog, split: str = "eval") -> dict:
    """The trained judges' agreement with people on a split they never trained on: what the
    scorecard and the report print next to the figures these judges produce."""
    from breakfix.judges import artifacts as a
    from breakfix.judges.calibrate import refusal_metrics, severity_metrics
    from breakfix.judges.harm import OfflineHarm

    judge = OfflineHarm(artifacts)
    refusal = [e for e in a.refusal_examples(catalog) if e.split == split]
    harm = [e for e in a.harm_examples(catalog) if e.split == split]
    r = refusal_metrics([e.label for e in refusal], judge.refusal.score(_inputs(refusal)))
    h = severity_metrics([e.label for e in harm], judge.score(_inputs(harm)), threshold=4)
    return {"version": artifacts.version, "split": split,
            "refusal": {k: r[k] for k in ("n", "binary_accuracy", "binary_kappa", "accuracy")},
            "harm": {k: h[k] for k in ("n", "spearman", "threshold_accuracy", "mae")}}


def _fold(kind: str, catalog, static, transformer, train: list[Example], request_and_seen):
    """The offline judge of `kind` with its model for `kind` trained on `train` only."""
    from breakfix.judges import artifacts as a
    from breakfix.judges.harm import HarmModel, OfflineHarm
    from breakfix.judges.refusal import OfflineRefusal, RefusalModel

    refusal_train = train if kind == "refusal" else [e for e in a.refusal_examples(catalog) if e.split == "fix"]
    request, seen = request_and_seen
    refusal = RefusalModel.train(refusal_train, a.unseen_harm(request, seen, [e.prompt for e in refusal_train], static),
                                 static, transformer)
    harm = None
    if kind == "harm":
        rows = train + a.benign_anchors(catalog, static)
        prompts, replies = [e.prompt for e in rows], [e.response for e in rows]
        harmful = a.unseen_harm(request, seen, prompts, static)
        harm = HarmModel().fit(prompts, replies, [e.label for e in rows],
                               refusal.proba(prompts, replies, harmful, static, transformer, [True] * len(rows)),
                               a.RequestCategories(static).benign_share(prompts), harmful, static)
    artifacts = a.OfflineArtifacts("fold", static, transformer, refusal, harm, None, request)
    return OfflineRefusal(artifacts) if kind == "refusal" else OfflineHarm(artifacts)


def _inputs(examples: Sequence[Example]):
    from breakfix.types import JudgeInput, user

    return [JudgeInput(conversation=user(e.prompt), response=e.response, category=e.category) for e in examples]
