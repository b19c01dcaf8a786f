"""Red teaming: converters applied to harmful requests, single- and multi-turn attacks,
adversary personas, and an adaptive campaign that turns what breaks into findings."""

from breakfix.attacks import crescendo, direct, framing, many_shot, pair, templates  # noqa: F401  (register)
from breakfix.attacks.base import ATTACKS, Attack, Env, Goal, drive, register_attack, run


def __getattr__(name: str):
    """`Judges` and `load_judges` live in `breakfix.judges.joint`; still importable from here for
    the callers not yet moved (cli/fix.py, cli/loop.py, bench/)."""
    if name in ("Judges", "load_judges"):
        from breakfix.judges import joint

        return getattr(joint, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ATTACKS", "Attack", "Env", "Goal", "drive", "register_attack", "run"]
