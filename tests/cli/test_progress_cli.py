"""`eval` shows how far it is: suites done of the total, an ETA and the replies generated so far."""

import io
import re
from types import SimpleNamespace

from rich.console import Console

import breakfix.cli.eval as eval_cli


def test_the_eval_bar_counts_suites_and_replies(monkeypatch):
    screen = io.StringIO()
    monkeypatch.setattr(eval_cli, "err", Console(file=screen, force_terminal=True, width=200))
    ctx = SimpleNamespace(timing=SimpleNamespace(generated=0, cached=0))
    with eval_cli._suite_progress(ctx, ["harm_single_turn", "over_refusal", "capability"]) as advance:
        advance("harm_single_turn")
        ctx.timing.generated, ctx.timing.cached = 40, 2
        advance("over_refusal")
        shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.getvalue())
    assert "0/3" in shown and "1/3 suites" in shown and "evaluating over_refusal" in shown
    assert "40 replies generated, 2 cached" in shown and "eta" in shown
