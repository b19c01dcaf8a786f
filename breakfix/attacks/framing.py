"""Framings: the request with rules that suppress refusals, a forced affirmative opening, a
role to play, or a fiction around it. Each picks one of our texts at random (seeded)."""

from __future__ import annotations

import random

from breakfix.attacks.base import Env, Goal, Plan, register_attack, single_turn
from breakfix.attacks.texts import fill
from breakfix.types import user


class _Framing:
    multi_turn = False
    name = ""

    def plan(self, goal: Goal, env: Env) -> Plan:
        options = getattr(env.texts, self.name)
        k = random.Random(goal.rng).randrange(len(options))
        return single_turn(goal, self.name, user(fill(options[k], goal.payload)), {"variant": str(k)})


@register_attack("refusal_suppression")
class RefusalSuppression(_Framing):
    name = "refusal_suppression"


@register_attack("prefix_injection")
class PrefixInjection(_Framing):
    name = "prefix_injection"


@register_attack("roleplay")
class Roleplay(_Framing):
    name = "roleplay"


@register_attack("fiction")
class Fiction(_Framing):
    name = "fiction"
