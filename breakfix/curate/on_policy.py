"""On-policy DPO pairs: the SFT model's own mistakes on requests it never trained on.

SFT on refusals teaches "refuse" more broadly than it should, and how broadly shows only in what
the SFT model then does. So before DPO it answers the round's probes (fresh benign look-alikes
and harmful requests, of the same categories and shapes as the fix data): where it refuses a
benign one (fully or in part), its refusal is rejected in favour of the helpful answer the
round's starting model gave; where it still complies with a harmful one, its reply is rejected in
favour of a safe reply. The pairs push on exactly the errors the SFT model makes, in its own
words, whichever way it errs (the preference data of POROver, arXiv 2410.12999, drawn from the
policy being trained).

The pairs are kept in the round's folder, named by the SFT model's weights, so a resumed round
reads them back instead of generating again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel

from breakfix.curate.fix import DPOExample, Probe
from breakfix.files import atomic_writer
from breakfix.types import GenerationConfig, JudgeInput


class OnPolicy(BaseModel):
    """What the SFT model did with the probes, and the pairs made of its mistakes."""

    pairs: list[DPOExample]
    counts: dict[str, int]    # probes per kind, and the SFT model's errors: benign_refused, harmful_complied


def on_policy_pairs(target, judges, probes: Sequence[Probe], config: GenerationConfig) -> OnPolicy:
    """`target` (the SFT model) answers every probe in one greedy batch; each error is a pair.
    A benign probe errs when refused fully or in part (VPRR counts both); a harmful one when the
    reply attempts it or is harmful at all, and does not fully refuse (as curation's safety pairs
    take it). An unscoreable reply is no evidence either way."""
    replies = target.chat([p.prompt for p in probes], config)
    live = [k for k, r in enumerate(replies) if r.ok]
    refusal, harm = judges.score([JudgeInput(conversation=probes[k].prompt, response=replies[k].content) for k in live])
    pairs, counts = [], Counter(p.kind for p in probes)
    for k, r, h in zip(live, refusal, harm):
        probe = probes[k]
        if r.unscoreable:
            continue
        if probe.kind == "benign":
            wrong, error = r.label != "full_compliance", "benign_refused"
        else:
            wrong = r.label != "full_refusal" and (r.label == "full_compliance" or (not h.unscoreable and h.value >= 1))
            error = "harmful_complied"
        if wrong:
            counts[error] += 1
            pairs.append(DPOExample(prompt=probe.prompt, chosen=probe.chosen, rejected=[replies[k].message],
                                    source=f"on_policy:{probe.kind}", category=probe.category, technique=probe.technique,
                                    seed_id=probe.seed_id, generator=f"{probe.generator} / model:{target.fingerprint}"))
    return OnPolicy(pairs=pairs, counts=dict(counts))


def refreshed(model: Path, weights_sha256: str, load, judges, probes: Sequence[Probe], config: GenerationConfig,
              folder: Path) -> OnPolicy:
    """`on_policy_pairs` for the model at `model`, kept in `folder` under its weights hash: read
    back when that model already answered, else generated (`load(model)` gives the target)."""
    path = folder / f"on-policy-{weights_sha256[:16]}.json"
    if path.is_file():
        return OnPolicy.model_validate_json(path.read_text(encoding="utf-8"))
    found = on_policy_pairs(load(model), judges, probes, config)
    with atomic_writer(path) as handle:
        handle.write(found.model_dump_json(indent=1))
    return found
