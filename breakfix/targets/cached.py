"""A target whose replies are remembered in the run store, keyed by (weights fingerprint,
backend, conversation, generation config). The backend (e.g. `torch:cpu:bfloat16`) is in the
key because the same weights give different replies in bf16 and fp32: they must never mix. A phase that is run again after an interruption (the loop's
`--resume`) gets the same replies back without generating them, so it makes the same attempts
and writes the same records, once.

A model with a refusal gate beside its weights (targets/gate.py) answers the requests its gate
lets through with those weights, as the ungated model does: those replies are looked up, and
stored, under the weights' own fingerprint, so the loop's gated candidates generate only what
their ungated candidate did not. Reused, not regenerated: a reply also depends on the batch it was
generated in (padding, the batch's seed), so it is the ungated model's reply from its own batch.
The weights' fingerprint does not cover the tokenizer or chat template: `breakfix gate` and the
loop (`train.gate.gated_copy`) write a gate beside links to its own model's files, so they are
the weights' own; a gate.json copied by hand into another model's folder is not supported."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence

from breakfix.store.db import canonical_json
from breakfix.types import Conversation, GenerationConfig, Reply


def reply_key(fingerprint: str, conversation: Conversation, config: GenerationConfig, backend: str = "") -> str:
    """The cache key of one reply. A target without a `backend` (remote, mock) keeps the key it
    always had; a local one is keyed by the dtype it runs in too."""
    parts = ["reply", fingerprint, [m.model_dump() for m in conversation], config.model_dump()]
    if backend:
        parts.insert(2, backend)
    return hashlib.sha256(canonical_json(parts).encode()).hexdigest()


class CachedTarget:
    def __init__(self, target, store):
        self.target, self.store = target, store
        self.name, self.fingerprint = target.name, target.fingerprint
        self.backend = getattr(target, "backend", "")
        self.generated = self.cached = 0
        self.seconds = 0.0

    def __getattr__(self, attribute):  # batch_size, loglikelihood, model ... of the wrapped target
        return getattr(self.target, attribute)

    def chat(self, conversations: Sequence[Conversation], config: GenerationConfig) -> list[Reply]:
        keys = [reply_key(self.fingerprint, c, config, self.backend) for c in conversations]
        found = self.store.cached(keys)
        todo = [k for k in dict.fromkeys(keys) if k not in found]
        errored: dict[str, Reply] = {}
        reused = 0
        if todo:
            started = time.perf_counter()
            replies, reused = self._answer([conversations[keys.index(k)] for k in todo], config)
            self.seconds += time.perf_counter() - started
            fresh = {k: r.model_dump_json() for k, r in zip(todo, replies) if r.ok}  # failures are not remembered
            self.store.cache("reply", fresh)
            found.update(fresh)
            errored = {k: r for k, r in zip(todo, replies) if not r.ok}
        self.generated += len(todo) - reused
        self.cached += len(keys) - len(todo) + reused
        return [errored[k] if k in errored else Reply.model_validate_json(found[k]) for k in keys]

    def _answer(self, conversations: list[Conversation], config: GenerationConfig) -> tuple[list[Reply], int]:
        """Fresh replies, and how many of them the ungated weights' cache supplied."""
        if getattr(self.target, "gate", None) is None or not hasattr(self.target, "gate_replies"):
            return self.target.chat(conversations, config), 0
        replies = self.target.gate_replies(conversations, config)
        through = [i for i, r in enumerate(replies) if r is None]
        weights = CachedTarget(_Weights(self.target), self.store)
        for i, reply in zip(through, weights.chat([conversations[i] for i in through], config)):
            replies[i] = reply
        return replies, weights.cached


class _Weights:
    """A gated model's weights on their own: its name, the weights' fingerprint, no gate."""

    def __init__(self, target):
        self.target, self.name = target, target.name
        self.fingerprint, self.backend = target.weights_fingerprint, getattr(target, "backend", "")

    def chat(self, conversations: Sequence[Conversation], config: GenerationConfig) -> list[Reply]:
        return self.target.chat(conversations, config, gated=False)
