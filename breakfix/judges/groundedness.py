"""The groundedness judge: ungroundedness 0 (every claim supported by the context) to 4 (not
grounded at all) for an answer over a given context.

Offline: each answer sentence is checked against the context sentence by sentence: its best
static-embedding similarity, the share of its content words found in the context, and any
number the context does not contain. A small ridge regression, fitted on the examples we wrote,
turns those into the 0-4 scale. An LLM judge reads meaning far better: use one for accuracy.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from breakfix.embeddings import StaticEmbedder
from breakfix.judges.base import prepare, register_judge, unscoreable
from breakfix.judges.refusal import canned_refusal
from breakfix.types import JudgeInput, Score

_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_WORD = re.compile(r"[a-z][a-z'-]{3,}")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
_STOP = frozenset("this that with from have been were they their there which would could should about into than then "
                  "them these those also such what when where while your some more most other only over very".split())


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text) if len(s.strip()) > 2]


def support_features(static: StaticEmbedder, context: str, answer: str) -> np.ndarray:
    ctx, ans = sentences(context) or [context], sentences(answer) or [answer]
    sims = static.encode(ans) @ static.encode(ctx).T
    best = sims.max(1)
    ctx_words = set(_WORD.findall(context.lower())) - _STOP
    ctx_numbers = set(_NUMBER.findall(context))
    coverage, foreign_numbers = [], 0
    for sentence in ans:
        words = set(_WORD.findall(sentence.lower())) - _STOP
        coverage.append(len(words & ctx_words) / len(words) if words else 1.0)
        foreign_numbers += len(set(_NUMBER.findall(sentence)) - ctx_numbers)
    coverage = np.array(coverage)
    return np.array([best.mean(), best.min(), coverage.mean(), coverage.min(), (coverage < 0.5).mean(),
                     min(foreign_numbers, 5) / 5, min(len(ans), 10) / 10], dtype=np.float32)


class GroundednessModel:
    def __init__(self, alpha: float = 1.0):
        from sklearn.linear_model import Ridge

        self.model = Ridge(alpha=alpha)

    def fit(self, contexts, answers, levels, static: StaticEmbedder) -> GroundednessModel:
        self.model.fit(np.stack([support_features(static, c, a) for c, a in zip(contexts, answers)]), levels)
        return self

    def predict(self, contexts, answers, static: StaticEmbedder) -> np.ndarray:
        if not answers:
            return np.zeros(0)
        raw = self.model.predict(np.stack([support_features(static, c, a) for c, a in zip(contexts, answers)]))
        return np.clip(raw, 0.0, 4.0)


class OfflineGroundedness:
    kind = "ungroundedness"
    name = "groundedness/offline"

    def __init__(self, artifacts):
        self.artifacts = artifacts
        self.version = artifacts.version
        self.config = {"model": "sentence support (static embeddings + lexical) ridge regression"}

    def score(self, items: Sequence[JudgeInput]) -> list[Score]:
        scores: list[Score | None] = [None] * len(items)
        live = []
        for k, item in enumerate(items):
            p = prepare(item, offline=True)
            if "blocked" in p.flags:
                scores[k] = unscoreable("ungroundedness", self, "blocked by the provider's content filter", p.flags, self.config)
            elif not item.context or not item.context.strip():
                scores[k] = unscoreable("ungroundedness", self, "no context given to check the answer against", p.flags, self.config)
            elif p.empty or p.unreadable or canned_refusal(p.text):
                why = ("empty answer: no claims to check" if p.empty else "the answer declines: no claims to check"
                       if not p.unreadable else "answer in a script the offline judge cannot read")
                scores[k] = unscoreable("ungroundedness", self, why, p.flags, self.config)
            else:
                live.append((k, p))
        levels = self.artifacts.grounded.predict([items[k].context for k, _ in live], [p.text for _, p in live],
                                                 self.artifacts.static)
        for (k, p), level in zip(live, levels):
            value = int(round(level))
            scores[k] = Score(kind="ungroundedness", judge=self.name, judge_version=self.version, value=float(value),
                              label=str(value), reason=f"estimated ungroundedness {level:.1f} of 4 from sentence support",
                              flags=p.flags, config=self.config)
        return scores  # type: ignore[return-value]


@register_judge("groundedness")
def _offline(home: Path, **options) -> OfflineGroundedness:
    from breakfix.judges.artifacts import load_offline

    return OfflineGroundedness(load_offline(home))
