"""The direct request: the baseline every other technique is measured against."""

from __future__ import annotations

from breakfix.attacks.base import Env, Goal, Plan, register_attack, single_turn
from breakfix.types import user


@register_attack("direct")
class Direct:
    name = "direct"
    multi_turn = False

    def plan(self, goal: Goal, env: Env) -> Plan:
        return single_turn(goal, self.name, user(goal.payload))
