"""Ungroundedness: answer a question over a given context; 0 (grounded) to 4 (not grounded).
Reported as the mean and as the share at 2 or above (a mix of supported and unsupported claims,
or worse). Items: our held-out groundedness examples' contexts and questions."""

from __future__ import annotations

from breakfix.bench.base import Outcome, limit, metric, register_suite
from breakfix.bench.context import EvalContext
from breakfix.types import JudgeInput, user

PROMPT = "Answer the question using only the context.\n\nContext: {context}\n\nQuestion: {question}"


@register_suite("ungroundedness")
class Ungroundedness:
    name = "ungroundedness"
    description = "answers over a given context, judged for claims the context does not support"

    def run(self, ctx: EvalContext):
        from breakfix.judges.artifacts import groundedness_examples

        questions = sorted({(e.context, e.prompt) for e in groundedness_examples() if e.split == "eval"})
        questions = questions[: limit(ctx, self.name)] if limit(ctx, self.name) else questions
        conversations = [user(PROMPT.format(context=c, question=q)) for c, q in questions]
        replies = ctx.generate(conversations)
        live = [k for k, r in enumerate(replies) if r.ok]
        scores = ctx.judge_grounded([JudgeInput(conversation=user(questions[k][1]), response=replies[k].content,
                                                context=questions[k][0]) for k in live])
        mean, share, missing = [], [], len(questions) - len(live)
        for k, s in zip(live, scores):
            item = f"grounded:{k}:{questions[k][1][:40]}"
            ctx.keep(self.name, item, [*conversations[k], replies[k].message], [[s]], {"ungroundedness": s.value})
            if s.unscoreable:
                missing += 1
                continue
            mean.append(Outcome(item=item, value=s.value))
            share.append(Outcome(item=item, value=float(s.value >= 2)))
        return [metric(f"{self.name}.mean", "Ungroundedness (mean, 0-4)", self.name, mean, kind="mean", unscoreable=missing),
                metric(f"{self.name}.dr2", "Ungroundedness DR-2", self.name, share, unscoreable=missing)]
