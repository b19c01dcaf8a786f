"""Many-shot: a fabricated history in which the assistant already complied several times, then
the real request. Our fabricated answers are placeholders, never real instructions."""

from __future__ import annotations

import random

from breakfix.attacks.base import Env, Goal, Plan, register_attack, single_turn
from breakfix.types import Message

SHOTS = 6


@register_attack("many_shot")
class ManyShot:
    name = "many_shot"
    multi_turn = False

    def plan(self, goal: Goal, env: Env) -> Plan:
        shots = random.Random(goal.rng).sample(list(env.texts.many_shot), min(SHOTS, len(env.texts.many_shot)))
        history = [m for s in shots for m in (Message(role="user", content=s.question),
                                              Message(role="assistant", content=s.answer))]
        return single_turn(goal, self.name, [*history, Message(role="user", content=goal.payload)],
                           {"shots": str(len(shots))})
