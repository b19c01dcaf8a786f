"""A loop's ledger: one JSON manifest that says what went into a run and what came out of
it — the base model's weights hash, every pinned asset, the judges, the seeds, the resolved
config, the data catalog, and each checkpoint's lineage — enough to run it again."""

from __future__ import annotations

import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from breakfix.assets import pinned_wheels
from breakfix.errors import BreakfixError

_PACKAGES = ("breakfix", "torch", "transformers", "trl", "peft", "accelerate", "datasets", "sentence-transformers")


def ledger(loop) -> dict[str, Any]:
    """The manifest of a loop (`cycle.Loop`) as it stands now."""
    store, run_id, config = loop.store, loop.run_id, loop.config
    record = store.run(run_id)
    steps = store.steps(run_id)
    rounds: dict[int, dict[str, Any]] = {}
    for s in steps:
        rounds.setdefault(s.round, {"round": s.round})[s.phase] = {
            "status": s.status, "run": s.child_run_id, "tries": s.tries, "started": s.started_at,
            "finished": s.finished_at, **_essentials(s.phase, s.output or {})}
    lineage = [c for s in steps if s.phase.split("-try")[0] == "train" for c in store.checkpoints(s.child_run_id)]
    return {
        "run": run_id,
        "status": record.status,
        "created": record.created_at,
        "finished": record.finished_at,
        "base_model": _model(config.model),
        "seeds": {"loop": config.seed, "per_round": "redteam, curate and train seeds are loop seed + round"},
        "config": config.model_dump(mode="json"),
        "assets": [{"wheel": w.file, "version": w.version, "sha256": w.sha256, "licence": w.licence}
                   for w in pinned_wheels().values()],
        "judges": {j.name: j.version for j in (loop.judges.refusal, loop.judges.harm, loop.groundedness) if j is not None},
        "data": {"catalog": loop.catalog.key, "salt": config.data.salt, "ratios": config.data.ratios,
                 "sources": [{"name": s.name, "items": s.count, "licence": s.licence} for s in loop.catalog.sources]},
        "software": {"python": platform.python_version(), **{p: _version(p) for p in _PACKAGES}},
        "rounds": [rounds[k] for k in sorted(rounds)],
        "checkpoints": [{"id": c["id"], "parent": c["parent_id"], "path": c["path"], "sha256": c["sha256"],
                         "stage": c["meta"].get("stage"), "round": c["meta"].get("round"), "base": c["meta"].get("base"),
                         "data": c["meta"].get("data"), "data_sha256": c["meta"].get("data_sha256"),
                         "steps": c["meta"].get("steps")} for c in lineage],
    }


def _essentials(phase: str, output: dict[str, Any]) -> dict[str, Any]:
    """What the ledger keeps of a step's output (the store has the rest). A retried round's
    phases are named like `train-try2`."""
    phase = phase.split("-try")[0]
    if phase == "select" and "choice" in output:
        choice = output["choice"]
        held = choice.get("incumbent")
        return {"chosen": choice.get("chosen"), "why": choice.get("why"), "skipped": output.get("skipped"),
                "kept": choice.get("kept", False), "held_back": choice.get("held_back", []),
                "incumbent": {k: held.get(k) for k in ("harmful", "vprr", "capability", "helpfulness")} if held else None,
                "candidates": [{k: v.get(k) for k in ("name", "harmful", "vprr", "capability", "helpfulness", "eligible")}
                               | {"broken": [g["why"] for g in v.get("guards", []) if not g.get("passed")]}
                               for v in choice.get("verdicts", [])]}
    if phase == "train":
        return {"model": output.get("model"), "stages": output.get("stages"), "failures": output.get("failures"),
                "candidates": [{k: c.get(k) for k in ("name", "path", "weights_sha256")} for c in output.get("candidates", [])]}
    if phase == "redteam":
        return {k: output.get(k) for k in ("attempts", "successes", "findings", "errored")}
    if phase == "curate":
        return {k: output.get(k) for k in ("nothing_to_fix", "files", "counts")}
    if phase == "eval":
        return {k: output.get(k) for k in ("model", "fingerprint", "scorecard")}
    return output


def _model(spec: str) -> dict[str, Any]:
    """The base model's identity: for a local checkpoint, its weights hash from its manifest."""
    from breakfix.targets.base import local_path, recorded_manifest

    entry: dict[str, Any] = {"spec": spec}
    try:
        folder = Path(local_path(spec))
    except BreakfixError:  # a served model: no local weights to hash
        return entry
    manifest = recorded_manifest(folder)
    if manifest:
        entry.update(path=str(folder), weights_sha256=manifest.get("weights_sha256"), source=manifest.get("source"))
    return entry


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None
