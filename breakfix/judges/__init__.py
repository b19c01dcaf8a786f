"""Judges: refusal, harm severity 0-7 and ungroundedness 0-4; offline by default, an LLM judge
or an ensemble when a judge model is given; guard models (Llama Guard,
ShieldGemma, WildGuard) read in their own formats. Every score names its judge and version."""

from breakfix.judges import ensemble, groundedness, guard, harm, llm, refusal  # noqa: F401  (register the judges)
from breakfix.judges.base import JUDGES, Judge, load_judge, register_judge

__all__ = ["JUDGES", "Judge", "load_judge", "register_judge"]
