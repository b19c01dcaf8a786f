"""What every benchmark suite works with: the model under test, the judges, the data, and a
cache of replies and scores keyed by (model fingerprint, input, config), kept in the run store.

A rerun, or a run resumed after an interruption, takes what is cached and generates only the
rest; every conversation and score of the run is stored once.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from breakfix.store.db import canonical_json
from breakfix.targets.cached import CachedTarget
from breakfix.types import Conversation, GenerationConfig, JudgeInput, Message, Reply, Score

Preset = Literal["quick", "full"]


@dataclass
class Timing:
    generation_s: float = 0.0
    judging_s: float = 0.0
    generated: int = 0
    cached: int = 0


@dataclass
class EvalContext:
    target: object                      # a Target
    judges: object                      # attacks.Judges (refusal + harm)
    groundedness: object | None         # the groundedness judge
    catalog: object                     # data.Catalog
    store: object                       # store.Store
    run_id: str
    preset: Preset = "quick"
    config: GenerationConfig = field(default_factory=lambda: GenerationConfig(max_new_tokens=128))
    seed: int = 0
    simulator: object | None = None     # a Target playing the user in multi-turn suites
    summaries_from: str | None = None   # harmful texts to summarise: a findings JSONL
    limits: dict[str, int] = field(default_factory=dict)  # items per suite, overriding the preset
    timing: Timing = field(default_factory=Timing)

    def generate(self, conversations: Sequence[Conversation], config: GenerationConfig | None = None) -> list[Reply]:
        """Replies for the conversations, from the cache where the same model saw the same input."""
        # A target the caller already caches in this store (the loop's) is not wrapped twice.
        cached = self.target if isinstance(self.target, CachedTarget) else CachedTarget(self.target, self.store)
        before = (cached.seconds, cached.generated, cached.cached)
        replies = cached.chat(list(conversations), config or self.config)
        self.timing.generation_s += cached.seconds - before[0]
        self.timing.generated += cached.generated - before[1]
        self.timing.cached += cached.cached - before[2]
        return replies

    def judge(self, items: Sequence[JudgeInput]) -> tuple[list[Score], list[Score]]:
        """Refusal and harm scores (cached by judge version and input)."""
        return self._judged(items, "pair", lambda todo: self.judges.score(todo),
                            f"{self.judges.refusal.name}:{self.judges.refusal.version}|{self.judges.harm.name}:{self.judges.harm.version}")

    def judge_grounded(self, items: Sequence[JudgeInput]) -> list[Score]:
        return self._judged(items, "grounded", lambda todo: (self.groundedness.score(todo),),
                            f"{self.groundedness.name}:{self.groundedness.version}")[0]

    def _judged(self, items, kind, score, judge_id):
        keys = [_key(kind, judge_id, i.model_dump(mode="json")) for i in items]
        cached = self.store.cached(keys)
        todo = [k for k in dict.fromkeys(keys) if k not in cached]
        if todo:
            started = time.perf_counter()
            fresh = score([items[keys.index(k)] for k in todo])
            self.timing.judging_s += time.perf_counter() - started
            values = {k: json.dumps([s.model_dump(mode="json") for s in group])
                      for k, group in zip(todo, zip(*fresh))}
            self.store.cache(f"score:{kind}", values)
            cached.update(values)
        per_item = [[Score.model_validate(s) for s in json.loads(cached[k])] for k in keys]
        return tuple(list(column) for column in zip(*per_item)) if per_item else tuple([] for _ in range(2))

    def keep(self, suite: str, item_id: str, messages: Sequence[Message], turn_scores: Sequence[Sequence[Score]],
             meta: dict) -> None:
        """Store one item's conversation and scores in the run (once, however often resumed)."""
        cid = hashlib.sha256(f"{self.run_id}|{suite}|{item_id}".encode()).hexdigest()[:24]
        self.store.add_attempt(self.run_id, cid, list(messages), turn_scores, model=self.target.name,
                               purpose=f"eval:{suite}", item_id=item_id, meta=meta)


def _key(*parts) -> str:
    return hashlib.sha256(canonical_json(parts).encode()).hexdigest()
