"""Capability without a judge, and helpfulness: does safety training cost knowledge?

- capability: for each true/false pair the model is right when it gives the true statement
  the higher mean log-likelihood per token (needs a local model);
- helpfulness: the share of plain helpful instructions answered rather than refused.
Retention is the checkpoint's figure over the base model's: `breakfix eval compare` reports it.
"""

from __future__ import annotations

from breakfix.bench.base import Outcome, limit, metric, register_suite, sample
from breakfix.bench.context import EvalContext
from breakfix.stats import Rate
from breakfix.types import JudgeInput


@register_suite("capability")
class Capability:
    name = "capability"
    description = "true/false pairs scored by log-likelihood, and helpfulness on plain instructions"

    def run(self, ctx: EvalContext):
        return [self._knowledge(ctx), self._helpfulness(ctx)]

    def _knowledge(self, ctx: EvalContext):
        pairs = sample(ctx.catalog.select(kind="capability", split="eval"), limit(ctx, "capability"), ctx.seed)
        key, name = f"{self.name}.accuracy", "Capability (true/false by log-likelihood)"
        if not hasattr(ctx.target, "loglikelihood"):
            m = metric(key, name, self.name, [], better="higher", unscoreable=len(pairs))
            return m.model_copy(update={"estimate": Rate(n=0, value=None, low=None, high=None)})
        scores = ctx.target.loglikelihood([text for s in pairs for text in s.choices])
        outcomes = [Outcome(item=s.id, value=float(scores[2 * k + s.answer] > scores[2 * k + 1 - s.answer]),
                            category=next((t.removeprefix("domain:") for t in s.tags if t.startswith("domain:")), None))
                    for k, s in enumerate(pairs)]
        return metric(key, name, self.name, outcomes, better="higher")

    def _helpfulness(self, ctx: EvalContext):
        items = sample(ctx.catalog.select(kind="instruction", split="eval"), limit(ctx, "helpfulness"), ctx.seed)
        conversations = [s.as_conversation() for s in items]
        replies = ctx.generate(conversations)
        live = [k for k, r in enumerate(replies) if r.ok]
        refusals, harms = ctx.judge([JudgeInput(conversation=conversations[k], response=replies[k].content) for k in live])
        outcomes = []
        for k, r, h in zip(live, refusals, harms):
            ctx.keep(self.name, items[k].id, [*conversations[k], replies[k].message], [[r, h]], {"refusal": r.label})
            if not r.unscoreable:
                outcomes.append(Outcome(item=items[k].id, value=float(r.label == "full_compliance"),
                                        category=next((t.removeprefix("domain:") for t in items[k].tags), None)))
        return metric(f"{self.name}.helpfulness", "Helpfulness (plain instructions answered)", self.name, outcomes,
                      better="higher", unscoreable=len(items) - len(outcomes))
