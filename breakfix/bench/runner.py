"""Running suites into a scorecard, and keeping scorecards with their runs."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from breakfix.bench.base import SUITES
from breakfix.bench.context import EvalContext
from breakfix.bench.scorecard import Scorecard
from breakfix.errors import InputError
from breakfix.files import atomic_writer

RAI = ["harm_single_turn", "harm_multi_turn", "harmful_continuation", "harmful_summarization", "jailbreak",
       "ungroundedness", "over_refusal", "capability"]


def expand(names: list[str]) -> list[str]:
    """Suite names, with `rai` standing for the Phi-3-style set; unknown names are errors."""
    out: list[str] = []
    for name in names:
        for suite in RAI if name == "rai" else [name]:
            SUITES.get(suite)
            if suite not in out:
                out.append(suite)
    return out


def run(ctx: EvalContext, suites: list[str], progress: Callable[[str], None] | None = None) -> Scorecard:
    metrics = []
    for name in suites:
        if progress:
            progress(name)
        metrics += SUITES.get(name)().run(ctx)
    judges = {j.name: j.version for j in (ctx.judges.refusal, ctx.judges.harm, ctx.groundedness) if j is not None}
    return Scorecard(judge_agreement=agreement(ctx.judges), run_id=ctx.run_id, model=ctx.target.name, fingerprint=ctx.target.fingerprint, preset=ctx.preset,
                     suites=suites, judges=judges, created_at=datetime.now(UTC).isoformat(timespec="seconds"),
                     metrics=metrics, timing={"generation_s": ctx.timing.generation_s, "judging_s": ctx.timing.judging_s,
                                              "generated": ctx.timing.generated, "cached": ctx.timing.cached})


def agreement(judges) -> dict[str, dict]:
    """What the offline judges measured of themselves when trained (their held-out split)."""
    out = {}
    for judge, kind in ((judges.refusal, "refusal"), (judges.harm, "harm")):
        measured = getattr(getattr(judge, "artifacts", None), "agreement", None) or {}
        if kind in measured:
            out[judge.name] = measured[kind]
    return out


def save(card: Scorecard, store) -> Path:
    """Write the scorecard beside the store and register it with its run."""
    path = store.path.parent / "scorecards" / f"{card.run_id}.json"
    text = card.model_dump_json(indent=1)
    with atomic_writer(path) as handle:
        handle.write(text)
    store.add_dataset(card.run_id, "scorecard", path, hashlib.sha256(text.encode()).hexdigest(), len(card.metrics),
                      {"model": card.model, "preset": card.preset})
    return path


def load(ref: str, store) -> Scorecard:
    """A scorecard from a JSON file, or from the run (id or prefix) it belongs to."""
    path = Path(ref)
    if not path.is_file():
        record = store.run(ref)
        path = store.dataset_path(record.id, "scorecard")
        if path is None:
            raise InputError(f"run {record.id} has no scorecard")
    try:
        return Scorecard.model_validate_json(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise InputError(f"{path}: not a breakfix scorecard ({str(exc).splitlines()[0]})") from None
