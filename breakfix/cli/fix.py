"""`breakfix vulns`, `breakfix curate`, `breakfix train`: from what broke to a new checkpoint."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from breakfix.cli.common import StorePath, err, load, open_store, out
from breakfix.config import GateConfig
from breakfix.errors import InputError

RunOpt = typer.Option(..., "--run", help="The red-team run (id or prefix) whose attempts and findings to use.")
ScorecardOpt = typer.Option(None, "--scorecard", help="A scorecard (eval run id or JSON) adding eval DR-1 per category.")


def vulns(run: str = RunOpt, scorecard: str | None = ScorecardOpt,
          threshold: float = typer.Option(0.1, help="Target when the 95% lower bound of success reaches this."),
          min_attempts: int = typer.Option(3, help="Scored attempts a group needs to be targeted."),
          all_rows: bool = typer.Option(False, "--all", help="Show untargeted groups too."), store: StorePath = None) -> None:
    """Rank where the model breaks (category x technique, technique, category) and say what gets fixed."""
    from breakfix import bench
    from breakfix.curate.fix import observations
    from breakfix.curate.vulnerabilities import rank

    with open_store(store) as db:
        record = db.run(run)
        card = bench.load(scorecard, db) if scorecard else None
        ranking = rank(observations(db, record.id), card, threshold, min_attempts)
    if not ranking.vulnerabilities:
        raise InputError(f"run {record.id} has no scored attack attempts")
    table = Table("#", "scope", "category", "technique", "attempts", "ASR [95% CI]", "mean sev.", "target", "why",
                  title=f"vulnerabilities of run {record.id} (target when the 95% lower bound >= {threshold:g})")
    for n, v in enumerate(ranking.vulnerabilities, start=1):
        if v.targeted or all_rows:
            table.add_row(str(n), v.scope, v.category or "all", v.technique or "all", str(v.attempts),
                          str(v.asr).rsplit(" (", 1)[0], "-" if v.mean_severity is None else f"{v.mean_severity:.1f}",
                          "yes" if v.targeted else "no", escape(v.reason))
    out.print(table)
    out.print(f"{len(ranking.targets)} targets of {len(ranking.vulnerabilities)} groups")


def curate(run: str = RunOpt, scorecard: str | None = ScorecardOpt,
           output: Path = typer.Option(..., "--out", "-o", help="Folder for sft.jsonl, dpo.jsonl, manifest.json and, with "
                                       "`curate.probe_ratio`, probes.jsonl (for `breakfix train --probes`)."),
           model: str | None = typer.Option(None, "--model", "-m", help="Model answering twins and retention prompts (default: the run's)."),
           config: Path | None = typer.Option(None, "--config", help="YAML whose `curate:` section sets the curation."),
           seed: int = typer.Option(0), store: StorePath = None) -> None:
    """Turn a red-team run (and a scorecard) into SFT and DPO fix data, checked against the eval split."""
    from breakfix import bench
    from breakfix.attacks import load_judges
    from breakfix.config import CurateConfig, load_yaml
    from breakfix.curate.fix import curate as run_curation
    from breakfix.data import load_catalog
    from breakfix.paths import home

    settings = load_yaml(config, CurateConfig, "curate") if config else CurateConfig(seed=seed)
    with open_store(store) as db:
        record = db.run(run)
        if record.kind != "redteam":
            raise InputError(f"run {record.id} is a {record.kind} run; curate takes a red-team run")
        card = bench.load(scorecard, db) if scorecard else None
        target = load(model or record.model)
        judges = load_judges(home())
        with err.status("curating fix data (generating twins and retention answers)"):
            fix = run_curation(db, record.id, load_catalog(home()), target, judges, settings, card, home())
        written = fix.write(output)
        manifest = {"run": record.id, "model": target.name, "fingerprint": target.fingerprint, "counts": fix.counts,
                    "notes": fix.notes, "config": settings.model_dump(), "targets": [v.model_dump(mode="json") for v in fix.ranking.targets]}
        (output / "manifest.json").write_text(json.dumps(manifest, indent=1))
        curate_run = db.create_run("curate", model=target.name, config={"redteam_run": record.id, **settings.model_dump()})
        for kind, (path, n) in written.items():
            db.add_dataset(curate_run, kind, path, hashlib.sha256(path.read_bytes()).hexdigest(), n, fix.counts)
        db.finish_run(curate_run)
    out.print(f"{len(fix.sft)} SFT examples ({', '.join(f'{k} {v}' for k, v in fix.counts.items() if ':' not in k)}), "
              f"{len(fix.dpo)} DPO pairs, {len(fix.probes)} probes, from {len(fix.ranking.targets)} targets -> {output}")
    for note in fix.notes:
        out.print(f"[yellow]note:[/] {escape(note)}")


def train(base: str = typer.Option("smollm2-135m", "--base", help="The model to post-train (a local model string)."),
          sft_data: Path = typer.Option(..., "--sft", help="SFT JSONL (`messages`)."),
          dpo_data: Path | None = typer.Option(None, "--dpo", help="DPO JSONL (`prompt`, `chosen`, `rejected`)."),
          probes: Path | None = typer.Option(None, "--probes", help="Probes JSONL from `breakfix curate`: the SFT model "
                                             "answers them before DPO, and its mistakes become more DPO pairs."),
          probe_tokens: int = typer.Option(128, "--probe-tokens", min=1, help="Reply length for the probes (the loop "
                                           "uses `curate.max_new_tokens`)."),
          output: Path = typer.Option(..., "--out", "-o", help="Folder for the checkpoints (sft/, dpo/; blend-W/ and scaled-S/ with `train.blends`, `train.scales`)."),
          full: bool = typer.Option(False, "--full", help="Full fine-tuning instead of LoRA."),
          config: Path | None = typer.Option(None, "--config", help="YAML whose `train:` section sets the training."),
          seed: int = typer.Option(0), store: StorePath = None) -> None:
    """SFT, then DPO with the SFT result as reference; resumes a stage from its last checkpoint."""
    from breakfix.config import TrainConfig, load_yaml
    from breakfix.targets.base import local_path
    from breakfix.train.data import read_rows
    from breakfix.train.post import main_process, post_train, record_blends
    from breakfix.types import GenerationConfig

    settings = load_yaml(config, TrainConfig, "train") if config else TrainConfig()
    settings = settings.model_copy(update={"lora": not full and settings.lora, "seed": seed})
    start = local_path(base)
    sft_rows = read_rows(sft_data, "sft")
    dpo_rows = read_rows(dpo_data, "dpo") if dpo_data and dpo_data.stat().st_size else []
    on_policy = {}
    if probes:
        from breakfix.attacks import load_judges
        from breakfix.curate.on_policy import read_probes, refresher
        from breakfix.paths import home

        refresh = refresher(read_probes(probes), lambda path: load(f"hf:{path}"),
                            load_judges(home()), GenerationConfig(max_new_tokens=probe_tokens, seed=seed),
                            output / "on-policy", lambda text: out.print(f"[yellow]{escape(text)}[/]"),
                            lambda found: on_policy.update(found.model_dump(include={"counts", "path"})))
    else:
        refresh = None
    with _bar() as progress:
        result = post_train(start, sft_rows, dpo_rows, output, settings, progress,
                            say=lambda text: out.print(f"[yellow]{escape(text)}[/]"), refresh=refresh)
    for stage, r in result.stages.items():
        out.print(f"{stage}: {r.steps} steps ({r.precision}), loss {r.losses[0]:.3f} -> {r.losses[-1]:.3f}, "
                  f"{r.truncated} prompts cut to fit, {r.seconds:.0f} s -> {r.path}")
    for failure in result.failures:
        out.print(f"[red]failed:[/] {escape(failure)}")
    out.print(f"{len(result.candidates)} candidates: " + ", ".join(c.name for c in result.candidates))
    # Under `accelerate launch` every process runs this command; only the main one keeps records.
    if not main_process():
        return
    data = {"sft": sft_data, "dpo": dpo_data}
    with open_store(store) as db:
        run_id = db.create_run("train", model=str(start), config={
            "sft": str(sft_data), "dpo": str(dpo_data) if dpo_data else None, "probes": str(probes) if probes else None,
            **settings.model_dump()})
        parent, ids = None, {}
        for stage, r in result.stages.items():
            given = data[stage]  # DPO may train on on-policy pairs alone (--probes without --dpo)
            parent = ids[stage] = db.add_checkpoint(run_id, Path(r.path), r.weights_sha256, {
                "stage": stage, "base": r.parent, "data": str(given) if given else None,
                "data_sha256": hashlib.sha256(Path(given).read_bytes()).hexdigest() if given else None,
                **({"on_policy": on_policy} if stage == "dpo" and on_policy else {}), "config": settings.model_dump(),
                "steps": r.steps, "losses": r.losses, "truncated": r.truncated, "seconds": r.seconds,
                "train_tokens": r.train_tokens, "precision": r.precision,
                "candidates": [c.model_dump() for c in r.candidates]}, parent_id=parent)
        record_blends(db, run_id, result, ids, {"config": settings.model_dump()})
        db.finish_run(run_id)
    if result.model is None:
        raise InputError("no stage finished training: " + "; ".join(result.failures))
    out.print(f"checkpoint: {result.model} (run {run_id})")


def gate(model: str = typer.Option(..., "--model", help="The model to gate: a local Hugging Face model string "
                                   "(hf:PATH or an embedded name)."),
         rates: str = typer.Option("0.01", "--rate", help="The most the gate may flag of the fix split's benign "
                                   "look-alikes, out of fold; several as 0.01,0.03 (one folder each)."),
         output: Path = typer.Option(..., "--out", "-o", help="Folder for the gated model(s): gate-RATE/ each."),
         prompts: int = typer.Option(GateConfig().prompts, "--prompts", min=50, help="Fix-split requests to fit on."),
         seed: int = typer.Option(0)) -> None:
    """Fit a refusal gate to a model (a probe on its own hidden states that refuses what it reads as
    harmful; fix-split requests only) and write the gated model beside a link to its weights:
    what the loop does to each round's front-runner and gentlest candidate (`train.gate`)."""
    from breakfix.data import load_catalog
    from breakfix.paths import home
    from breakfix.targets.base import local_path
    from breakfix.targets.hf import HFTarget
    from breakfix.train.gate import fit_gate, gate_data, gated_copy, refusal_texts

    try:
        flag_rates = GateConfig(flag_rates=[float(r) for r in rates.split(",")], prompts=prompts).flag_rates
    except ValueError as exc:  # pydantic's ValidationError is one
        raise InputError(f"--rate {rates}: each is a share between 0 and 0.5, e.g. 0.01 or 0.01,0.03") from exc
    target = load(model)
    if not isinstance(target, HFTarget):
        raise InputError(f"{model}: a refusal gate needs a local Hugging Face model (hf:PATH or an embedded name)")
    err.print(f"fitting a refusal gate to {model} on {prompts} fix-split requests")
    fit = fit_gate(target, gate_data(load_catalog(home()), prompts, seed), seed)
    out.print(fit.summary())
    for rate in flag_rates:
        g = fit.gate(rate, refusal_texts(seed))
        folder = gated_copy(local_path(model), g, output / f"gate-{rate:g}")
        out.print(f"gate@{rate:g}: {g.summary()} -> hf:{folder}")


def _bar():
    from contextlib import contextmanager

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    @contextmanager
    def bar():
        columns = (TextColumn("{task.fields[stage]}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("loss {task.fields[loss]}"), TimeElapsedColumn())
        with Progress(*columns, console=err) as progress:
            task = progress.add_task("train", total=None, loss="-", stage="")
            yield lambda stage, step, total, loss: progress.update(task, completed=step, total=total, stage=stage,
                                                                    loss="-" if loss is None else f"{loss:.3f}")

    return bar()
