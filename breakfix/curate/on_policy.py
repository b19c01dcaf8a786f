"""On-policy DPO pairs: the SFT model's own mistakes on requests it never trained on.

SFT on refusals teaches "refuse" more broadly than it should, and how broadly shows only in what
the SFT model then does. So before DPO it answers the round's probes (fresh benign look-alikes
and harmful requests, of the same categories and shapes as the fix data): where it refuses a
benign one (fully or in part), its refusal is rejected in favour of the helpful answer the
round's starting model gave; where it still complies with a harmful one, its reply is rejected in
favour of a safe reply. The pairs push on exactly the errors the SFT model makes, in its own
words, whichever way it errs (the preference data of POROver, arXiv 2410.12999, drawn from the
policy being trained).

`refresher` is the one way the loop, `breakfix train --probes` and `bench/fix.py` make them. The
pairs are kept in a folder, named by the SFT model's weights, the probes and the generation
settings, so a resumed round reads them back instead of generating again.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from pydantic import BaseModel

from breakfix.curate.fix import DPOExample, Probe
from breakfix.files import atomic_writer, read_records
from breakfix.store.db import canonical_json
from breakfix.train.post import main_process
from breakfix.train.trainer import StageResult
from breakfix.types import GenerationConfig, JudgeInput


class OnPolicy(BaseModel):
    """What the SFT model did with the probes, and the pairs made of its mistakes."""

    pairs: list[DPOExample]
    # probes per kind; the SFT model's errors (benign_refused, harmful_complied); replies that
    # failed or could not be judged (no evidence either way)
    counts: dict[str, int]
    path: str | None = None   # where they are kept


def read_probes(path: Path) -> list[Probe]:
    """Probes from a `probes.jsonl` that `breakfix curate` or the loop wrote; a bad row names its line."""
    return read_records(path, Probe, "probe")


def on_policy_pairs(target, judges, probes: Sequence[Probe], config: GenerationConfig) -> OnPolicy:
    """`target` (the SFT model) answers every probe in one batch; each error is a pair.
    A benign probe errs when refused fully or in part (VPRR counts both); a harmful one when the
    reply attempts it or is harmful at all, and does not fully refuse (as curation's safety pairs
    take it). A failed or unscoreable reply is no evidence either way, and is counted as such."""
    replies = target.chat([p.prompt for p in probes], config)
    live = [k for k, r in enumerate(replies) if r.ok]
    refusal, harm = judges.score([JudgeInput(conversation=probes[k].prompt, response=replies[k].content) for k in live])
    pairs, counts = [], Counter(p.kind for p in probes)
    counts["failed"] = len(probes) - len(live)
    for k, r, h in zip(live, refusal, harm):
        probe = probes[k]
        if r.unscoreable:
            counts["unscoreable"] += 1
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
    return OnPolicy(pairs=pairs, counts={k: v for k, v in counts.items() if v})


def refreshed(model: Path, weights_sha256: str, load: Callable[[Path], object], judges, probes: Sequence[Probe],
              config: GenerationConfig, folder: Path) -> OnPolicy:
    """`on_policy_pairs` for the model at `model`, kept in `folder`: read back when the same
    weights already answered the same probes with the same settings and judges, else generated
    (`load(model)` gives the target). Under `accelerate launch` only the main process generates
    and writes; the others wait for its file."""
    key = canonical_json([[p.model_dump(mode="json") for p in probes], config.model_dump(mode="json"), _identity(judges)])
    path = folder / f"on-policy-{weights_sha256[:12]}-{hashlib.sha256(key.encode()).hexdigest()[:12]}.json"
    if not path.is_file() and not main_process():
        _wait_for(path)
    if path.is_file():
        return OnPolicy.model_validate_json(path.read_text(encoding="utf-8"))
    found = on_policy_pairs(load(model), judges, probes, config).model_copy(update={"path": str(path)})
    with atomic_writer(path) as handle:
        handle.write(found.model_dump_json(indent=1))
    return found


def refresher(probes: Sequence[Probe], load: Callable[[Path], object], judges, config: GenerationConfig, folder: Path,
              say: Callable[[str], None] = lambda text: None, done: Callable[[OnPolicy], None] = lambda found: None
              ) -> Callable[[StageResult], list[dict]] | None:
    """`post_train`'s `refresh`: given the SFT end, its on-policy pairs as DPO rows. `done` sees
    what was found (to record it, or let go of the model). None when there are no probes."""
    if not probes:
        return None

    def refresh(sft: StageResult) -> list[dict]:
        say(f"the SFT model answers {len(probes)} probes")
        found = refreshed(Path(sft.path), sft.weights_sha256, load, judges, probes, config, folder)
        done(found)
        say(f"on-policy pairs: {len(found.pairs)} ({', '.join(f'{k} {v}' for k, v in found.counts.items())})")
        return [p.model_dump(mode="json") for p in found.pairs]

    return refresh


def _identity(judges) -> list[str]:
    """The judges' names and versions: other judges may call other replies mistakes."""
    return [f"{j.name}@{getattr(j, 'version', '')}" for j in (judges.refusal, judges.harm)]


def _wait_for(path: Path, timeout: float = 3600.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not path.is_file():
        if time.monotonic() > deadline:
            from breakfix.errors import BreakfixError

            raise BreakfixError(f"the main process never wrote {path}")
        time.sleep(1.0)
