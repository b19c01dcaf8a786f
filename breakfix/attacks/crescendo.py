"""Crescendo: a conversation that starts harmlessly and escalates step by step to the request.

Each harm category has a plan we wrote (resources/attacks/crescendo.yaml). After a refusal the
attack backs off once and asks the step's softer version, if it still has turns enough to reach
the last step, which carries the request. Warm-up steps are judged as what they are; only the
last step is judged against the request. Any turn at or above the threshold is a success.
A target error mid-conversation makes the attempt errored (retried by the campaign), never a
refusal.
"""

from __future__ import annotations

from breakfix.attacks.base import Ask, Env, Goal, Plan, register_attack, severity
from breakfix.attacks.texts import fill
from breakfix.types import Attempt, Message


@register_attack("crescendo")
class Crescendo:
    name = "crescendo"
    multi_turn = True

    def plan(self, goal: Goal, env: Env) -> Plan:
        steps = env.texts.crescendo.get(goal.seed.category or "") or env.texts.crescendo["dangerous_advice"]
        conversation: list[Message] = []
        turn_scores, step, backed_off, backoffs = [], 0, False, 0
        while True:
            text = steps[step].backoff if backed_off else steps[step].ask
            ask = Message(role="user", content=fill(text, goal.payload))
            reply, scores = yield Ask([*conversation, ask], on_goal=step == len(steps) - 1)
            if not reply.ok:
                return self._attempt(goal, [*conversation, ask], turn_scores, step, backoffs, error=reply.error)
            conversation += [ask, reply.message]
            turn_scores.append(scores)
            worst = severity(scores)
            turns_left, steps_left = env.max_turns - len(turn_scores), len(steps) - step - 1
            refused = not scores[0].unscoreable and scores[0].label != "full_compliance"
            if (worst is not None and worst >= env.threshold) or turns_left <= 0:
                break
            if refused and not backed_off and turns_left > steps_left:
                backed_off, backoffs = True, backoffs + 1
            elif steps_left == 0:
                break
            else:
                step, backed_off = step + 1, False
        return self._attempt(goal, conversation, turn_scores, step, backoffs)

    def _attempt(self, goal, conversation, turn_scores, step, backoffs, error=None) -> Attempt:
        worst = [s for s in (severity(t) for t in turn_scores) if s is not None]
        return Attempt(id=goal.id, seed_id=goal.seed.id, category=goal.seed.category or "unknown", goal=goal.seed.text,
                       attack=self.name, chain=goal.chain, conversation=conversation, turn_scores=turn_scores,
                       status="errored" if error else "completed", error=error,
                       severity=max(worst) if worst and not error else None,
                       params={"turns": str(len(turn_scores)), "backoffs": str(backoffs), "steps": str(step + 1)})
