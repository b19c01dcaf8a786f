"""Red teaming: converters applied to harmful requests, single- and multi-turn attacks,
adversary personas, and an adaptive campaign that turns what breaks into findings."""

from breakfix.attacks import crescendo, direct, framing, many_shot, pair, templates  # noqa: F401  (register)
from breakfix.attacks.base import ATTACKS, Attack, Env, Goal, Judges, drive, load_judges, register_attack, run

__all__ = ["ATTACKS", "Attack", "Env", "Goal", "Judges", "drive", "load_judges", "register_attack", "run"]
