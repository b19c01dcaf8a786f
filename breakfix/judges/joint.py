"""Refusal and harm judges used together, as red teaming, the benchmark and curation use them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from breakfix.types import JudgeInput, Score


class Judges:
    """Refusal and harm judges used together; one pass when both are the offline judges."""

    def __init__(self, refusal, harm):
        self.refusal, self.harm = refusal, harm

    def score(self, items: Sequence[JudgeInput]) -> tuple[list[Score], list[Score]]:
        if not items:
            return [], []
        if hasattr(self.harm, "score_pair") and self.refusal.name == self.harm.refusal.name:
            return self.harm.score_pair(items)
        return self.refusal.score(items), self.harm.score(items)


def load_judges(home: Path, harm: str = "harm", refusal: str = "refusal", model: str | None = None) -> Judges:
    from breakfix.judges import load_judge

    return Judges(load_judge(refusal, home, model=model), load_judge(harm, home, model=model))
