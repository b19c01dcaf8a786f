"""Post-training, the one entry point: SFT, then DPO from the SFT result, each resumable, in this
process or launched (`train.launcher`), with the candidates saved along the way and, with
`train.blends`, candidates between the SFT and DPO ends. `breakfix train` and the loop both call
`post_train`, so the sequence cannot differ between them.

A stage whose loss turns non-finite is recorded in `failures` and the stages after it are skipped;
the candidates saved before it still stand (the loop scores what there is).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel

from breakfix.assets import sha256_file
from breakfix.config import TrainConfig
from breakfix.errors import BreakfixError
from breakfix.files import write_jsonl
from breakfix.targets.gate import GATE_FILE
from breakfix.train.trainer import MANIFEST, NonFiniteLoss, StageResult, complete, dpo, sft

StageProgress = Callable[[str, int, int, float | None], None]  # stage, step, total, loss


class Candidate(BaseModel):
    """A model the loop may promote: a stage's end, a point saved along training, or a blend of
    the SFT and DPO ends."""

    name: str          # sft@12 (step 12 of SFT), sft (its end), dpo@4, dpo, blend@0.5 (halfway SFT -> DPO)
    stage: str
    step: int
    path: str          # a merged, loadable model folder
    weights_sha256: str


class PostTrainResult(BaseModel):
    model: str | None                   # the last finished stage's model folder (None: none finished)
    stages: dict[str, StageResult]
    candidates: list[Candidate]
    failures: list[str] = []


def post_train(base: str | Path, sft_rows: list[dict], dpo_rows: list[dict], out: Path, settings: TrainConfig,
               progress: StageProgress | None = None, say: Callable[[str], None] | None = None,
               refresh: Callable[[StageResult], list[dict]] | None = None) -> PostTrainResult:
    """SFT on `sft_rows`, then DPO on `dpo_rows` from the SFT result (a stage without rows is
    skipped), into `out/sft`, `out/dpo`, and each of `settings.blends` into `out/blend-W`. A
    finished stage is read back, not retrained. `refresh`, given the SFT end, returns more DPO
    rows (on-policy pairs: the SFT model's own mistakes); it is asked on every call, also when
    DPO is already complete, so the caller can cache and report them."""
    current, stages, candidates, failures = Path(str(base)), {}, [], []
    for stage, rows in (("sft", sft_rows), ("dpo", dpo_rows)):
        if stage == "dpo" and refresh is not None and "sft" in stages:
            rows = [*rows, *refresh(stages["sft"])]
        if not rows:
            if say:
                say(f"no {stage} examples: skipping {stage.upper()}")
            continue
        folder = out / stage
        if say and complete(folder / "model"):
            say(f"{stage}: already complete at {folder / 'model'}")
        try:
            result = _stage(stage, current, rows, folder, settings, progress)
        except NonFiniteLoss as exc:
            failures.append(str(exc))
            candidates += _saved(stage, folder)  # what was saved before the loss went bad
            break
        stages[stage] = result
        candidates += [Candidate(name=f"{stage}@{c.step}", stage=stage, step=c.step, path=c.path,
                                 weights_sha256=c.weights_sha256) for c in result.candidates]
        candidates.append(Candidate(name=stage, stage=stage, step=result.steps, path=result.path,
                                    weights_sha256=result.weights_sha256))
        current = folder / "model"
    if (settings.blends or settings.scales) and main_process():
        candidates += _between(Path(str(base)), stages, out, settings, say)
    model = str(current) if stages else None
    return PostTrainResult(model=model, stages=stages, candidates=candidates, failures=failures)


def record_blends(store, run_id: str, result: PostTrainResult, ids: dict[str, str], meta: dict) -> None:
    """Each blend and scaled update in the store's model registry, a child of the SFT end, with
    the stages' ids (the loop and `breakfix train` both record them this way)."""
    for c in result.candidates:
        if c.stage in ("blend", "scaled"):
            store.add_checkpoint(run_id, Path(c.path), c.weights_sha256, {
                "stage": c.stage, "name": c.name, "ends": {"sft": ids.get("sft"), "dpo": ids.get("dpo")}, **meta},
                parent_id=ids.get("sft"))


def main_process() -> bool:
    """Under `accelerate launch` every process runs the same code; only the first writes what
    is shared (records, blends)."""
    return os.environ.get("RANK", "0") == "0"


class End(BaseModel):
    """One end of a line in weight space: the model a training started from, or a stage's end."""

    stage: str
    path: str
    weights_sha256: str
    steps: int = 0
    precision: str = "fp32"

    def identity(self) -> dict:
        """What the blend's manifest records of this end: a retrained end has another hash."""
        return self.model_dump(include={"stage", "path", "weights_sha256"})

    @classmethod
    def of(cls, stage: StageResult) -> End:
        return cls(**stage.model_dump(include=set(cls.model_fields)))


def _between(start: Path, stages: dict[str, StageResult], out: Path, settings: TrainConfig, say) -> list[Candidate]:
    """`blends` on the line from the SFT end to the DPO end; `scales` on the line from the start
    to the last stage's end (only part of the round's update, as in WiSE-FT)."""
    found = []
    if settings.blends:
        if "sft" in stages and "dpo" in stages:
            found += [blend(End.of(stages["sft"]), End.of(stages["dpo"]), w, out / f"blend-{w:g}", "blend")
                      for w in settings.blends]
        elif say:
            say("no blends: they need both an SFT and a DPO end")
    if settings.scales and stages:
        from breakfix.targets.base import recorded_manifest

        last, weights = End.of(list(stages.values())[-1]), start / "model.safetensors"
        if weights.is_file():  # the hash breakfix recorded beside the start, if it made it, else read now
            sha = (recorded_manifest(start) or {}).get("weights_sha256") or sha256_file(weights)
            origin = End(stage="start", path=str(start), weights_sha256=sha)
            found += [blend(origin, last, w, out / f"scaled-{w:g}", "scaled") for w in settings.scales]
        elif say:
            say(f"no scaled updates: {start} has no single model.safetensors to interpolate from")
    return found


def blend(first: End, second: End, weight: float, out: Path, kind: str = "blend") -> Candidate:
    """A model on the line between two ends, tensor by tensor `(1 - weight)·first + weight·second`
    (a weight-space ensemble: the trade-off between the two moves along the line), written as a
    loadable model folder with a manifest of its own. `kind` names it: `blend@w` between the SFT
    and DPO ends, `scaled@w` from the start towards the end of training. One written from the
    same two ends is read back; ends retrained since are blended again. Integer tensors
    (buffers) come from `second`."""
    name, ends = f"{kind}@{weight:g}", {"first": first.identity(), "second": second.identity()}
    if complete(out) and json.loads((out / MANIFEST).read_text()).get("blend", {}).get("ends") == ends:
        return _blended(name, kind, out, second)
    from safetensors.torch import load_file, save_file

    a, b = load_file(Path(first.path) / "model.safetensors"), load_file(Path(second.path) / "model.safetensors")
    if a.keys() != b.keys() or any(a[k].shape != b[k].shape for k in a):
        raise BreakfixError(f"cannot blend {first.path} and {second.path}: their weights differ in shape")
    for key in list(b):  # in place, freeing `first`'s copy as it goes
        if b[key].is_floating_point():
            b[key] = ((1 - weight) * a.pop(key).float() + weight * b[key].float()).to(b[key].dtype)
    tmp = out.with_name(f".{out.name}.tmp")  # one process blends (the main one): a fixed name, cleared first
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        shutil.copytree(second.path, tmp, ignore=shutil.ignore_patterns("model.safetensors", MANIFEST, GATE_FILE))
        save_file(b, tmp / "model.safetensors", metadata={"format": "pt"})
        manifest = {"stage": kind, "candidate": True, "path": str(out), "parent": first.path,
                    "blend": {"weight": weight, "ends": ends}, "weights_sha256": sha256_file(tmp / "model.safetensors"),
                    "precision": second.precision}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))  # last: it marks completion
        shutil.rmtree(out, ignore_errors=True)
        tmp.replace(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return _blended(name, kind, out, second)


def _blended(name: str, kind: str, out: Path, second: End) -> Candidate:
    manifest = json.loads((out / MANIFEST).read_text())
    return Candidate(name=name, stage=kind, step=second.steps, path=str(out), weights_sha256=manifest["weights_sha256"])


def _stage(stage: str, base: Path, rows: list[dict], folder: Path, settings: TrainConfig, progress) -> StageResult:
    if complete(folder / "model"):
        manifest = json.loads((folder / "model" / MANIFEST).read_text())
        return StageResult.model_validate({"path": str(folder / "model"), **manifest})
    if settings.launcher:
        return launch(stage, base, rows, folder, settings)
    report = (lambda step, total, loss: progress(stage, step, total, loss)) if progress else None
    return (sft if stage == "sft" else dpo)(base, rows, folder, settings, report)


def _saved(stage: str, folder: Path) -> list[Candidate]:
    """Candidates a stage merged before it failed (their manifests are complete)."""
    out = []
    for model in sorted((folder / "candidates").glob("step-*/model"), key=lambda p: int(p.parent.name.split("-")[1])):
        if complete(model):
            m = json.loads((model / MANIFEST).read_text())
            out.append(Candidate(name=f"{stage}@{m['step']}", stage=stage, step=m["step"], path=str(model),
                                 weights_sha256=m["weights_sha256"]))
    return out


def launch(stage: str, base: Path, rows: list[dict], out: Path, settings: TrainConfig) -> StageResult:
    """Train one stage in processes of its own (`train.launcher`, e.g. accelerate on GPUs)."""
    out.mkdir(parents=True, exist_ok=True)
    config, data = out / "train-config.json", out / "data.jsonl"
    config.write_text(settings.model_dump_json())
    write_jsonl(data, rows)
    argv = [*shlex.split(settings.launcher), "-m", "breakfix.train", stage, str(base), str(data), str(out), str(config)]
    status = subprocess.run(argv).returncode
    if status != 0 or not complete(out / "model"):
        raise BreakfixError(f"training {stage} failed (exit status {status}): {' '.join(argv)}")
    return StageResult.model_validate({"path": str(out / "model"), **json.loads((out / "model" / MANIFEST).read_text())})
