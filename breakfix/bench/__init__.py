"""The RAI benchmark: suites over the eval split, a scorecard with intervals, paired comparison."""

from breakfix.bench import capability, groundedness, harm, refusal  # noqa: F401  (register the suites)
from breakfix.bench.base import SUITES, Metric, Suite, register_suite
from breakfix.bench.context import EvalContext
from breakfix.bench.runner import RAI, expand, load, run, save
from breakfix.bench.scorecard import Scorecard, compare, markdown

__all__ = ["RAI", "SUITES", "EvalContext", "Metric", "Scorecard", "Suite", "compare", "expand", "load", "markdown",
           "register_suite", "run", "save"]
