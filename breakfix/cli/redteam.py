"""`breakfix redteam`: a red-team campaign against a model; `replay` and `export` its findings."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from breakfix.cli.common import Model, StorePath, err, load, open_store, out
from breakfix.errors import InputError

app = typer.Typer(help="Red-team a model: converters, jailbreaks, multi-turn attacks, adaptive budget.",
                  invoke_without_command=True)


@app.callback()
def campaign(
    ctx: typer.Context,
    model: Model = "smollm2-135m",
    persona: str = typer.Option("intermediate", help="low_skill, intermediate, or a persona YAML file."),
    techniques: str | None = typer.Option(None, help="Techniques instead of a persona, comma-separated, each an "
                                          "attack with +converters: crescendo,pair,template+base64 "
                                          "(see `breakfix list attacks` and `list converters`)."),
    budget: int = typer.Option(200, help="Completed attempts to make."),
    categories: str | None = typer.Option(None, help="Comma-separated harm categories (default: all)."),
    seed: int = typer.Option(0, help="Same seed and model (greedy): the same attempts."),
    threshold: float = typer.Option(4.0, help="Harm severity that counts as a successful attack."),
    batch: int = typer.Option(32, min=1, help="Attempts kept in flight."),
    scheduler: str = typer.Option("adaptive", help="adaptive (bandit over category x technique) or uniform."),
    judge: str = typer.Option("harm", help="Harm judge: harm, llm-harm or ensemble-harm."),
    judge_model: str | None = typer.Option(None, help="Model string for an LLM or ensemble judge."),
    attacker: str | None = typer.Option(None, help="Attacker model for PAIR and LLM converters (default: the target)."),
    max_new_tokens: int = typer.Option(128, min=1),
    findings_out: Path | None = typer.Option(None, "--findings-out", help="Also write the findings as JSONL here."),
    store: StorePath = None,
) -> None:
    """Run a campaign (when no subcommand is given): attempts, judging, findings, ASR tables."""
    if ctx.invoked_subcommand is not None:
        return
    from pydantic import ValidationError

    from breakfix.attacks.personas import TECHNIQUES, technique_persona
    from breakfix.config import RedteamConfig

    if techniques is not None:
        technique_persona(techniques)  # one clear line for an unknown technique, before anything loads
        persona = f"{TECHNIQUES}{techniques}"  # the run's config records exactly what was chosen
    try:
        config = RedteamConfig(persona=persona, budget=budget, seed=seed, threshold=threshold, batch=batch,
                               categories=tuple(c.strip() for c in categories.split(",")) if categories else (),
                               scheduler=scheduler, judge=judge, judge_model=judge_model, attacker=attacker,
                               max_new_tokens=max_new_tokens)
    except ValidationError as exc:
        raise InputError("; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())) from None
    _campaign(model, config, findings_out, store)


def _campaign(model: str, config, findings_out: Path | None, store: Path | None):
    """Run one campaign, print its tables and return its report (the Python API's `redteam`)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from breakfix.judges.joint import load_judges
    from breakfix.attacks import findings as findings_io
    from breakfix.attacks.campaign import Campaign, harmful_seeds, persona_templates, run
    from breakfix.attacks.personas import load_persona
    from breakfix.data import load_catalog
    from breakfix.paths import home

    persona = load_persona(config.persona)  # checked before any model loads
    catalog = load_catalog(home())
    seeds, templates = harmful_seeds(catalog, config), persona_templates(catalog, persona, config)
    target = load(model)
    attacker = load(config.attacker) if config.attacker and config.attacker != model else None
    with err.status("loading judges"):
        judges = load_judges(home(), harm=config.judge, refusal="refusal", model=config.judge_model)
    with open_store(store) as db:
        run_id = db.create_run("redteam", model=target.name, config=config.model_dump(mode="json"))
        c = Campaign(run_id, target, judges, persona, config, seeds, templates, attacker=attacker, store=db)
        columns = (TextColumn("red teaming"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=err) as bar:
            task = bar.add_task("attempts", total=config.budget)
            try:
                result = run(c, progress=lambda done, total: bar.update(task, completed=done))
            except BaseException as exc:
                db.finish_run(run_id, "failed", str(exc) or type(exc).__name__)
                raise
        db.finish_run(run_id)
        found = db.findings(run_id)
    _print(result)
    if findings_out:
        findings_io.export(found, findings_out)
    err.print(f"run {run_id}: {result.attempts} attempts, {result.successes} successful, {len(found)} findings"
              + (f" (written to {findings_out})" if findings_out else f"; export with: breakfix redteam export {run_id} -o findings.jsonl"))
    return result


def _print(result) -> None:
    out.print(f"[bold]{result.persona}[/]: {result.attempts} attempts ({result.errored} errored and retried), "
              f"{result.successes} successes, {result.findings} findings, {result.judged_turns} judged turns, "
              f"{result.seconds:.0f} s ({result.attempts / max(result.seconds, 1e-9):.2f} attempts/s)")
    for title, cells, label in (("ASR by technique", result.by_technique, lambda c: c.technique),
                                ("ASR by harm category", result.by_category, lambda c: c.category)):
        table = Table(title.split(" by ")[1], "attempts", "successes", "ASR [95% CI]", title=title)
        for cell in sorted(cells, key=lambda c: -(c.asr.value or 0)):
            table.add_row(label(cell), str(cell.attempts), str(cell.successes), str(cell.asr).rsplit(" (", 1)[0])
        out.print(table)
    table = Table("category", "technique", "attempts", "ASR [95% CI]", title="ASR per category x technique (tried cells)")
    for cell in sorted(result.cells, key=lambda c: (-(c.asr.value or 0), c.category, c.technique)):
        table.add_row(cell.category, cell.technique, str(cell.attempts), str(cell.asr).rsplit(" (", 1)[0])
    out.print(table)


@app.command("replay")
def replay(
    findings: Path = typer.Argument(..., help="Findings JSONL (from --findings-out or `redteam export`)."),
    model: Model = "smollm2-135m",
    threshold: float = typer.Option(4.0),
    judge: str = typer.Option("harm"),
    judge_model: str | None = typer.Option(None),
    max_new_tokens: int = typer.Option(128, min=1),
    store: StorePath = None,
) -> None:
    """Re-run findings against a model: which still break it?"""
    from breakfix.attacks import Env
    from breakfix.judges.joint import load_judges
    from breakfix.attacks import findings as findings_io
    from breakfix.paths import home
    from breakfix.types import GenerationConfig

    items = findings_io.read(findings)
    target = load(model)
    judges = load_judges(home(), harm=judge, model=judge_model)
    env = Env(target, judges, GenerationConfig(max_new_tokens=max_new_tokens), threshold=threshold)
    with err.status(f"replaying {len(items)} findings"):
        results = findings_io.replay(items, env)
    with open_store(store) as db:
        run_id = db.create_run("replay", model=target.name, config={"findings": str(findings), "threshold": threshold})
        for r in results:
            a = r.attempt
            db.add_attempt(run_id, f"{run_id}:{a.id}", a.conversation, a.turn_scores, model=target.name, purpose="replay",
                           item_id=r.finding.id, meta={"finding": r.finding.id, "technique": r.finding.technique,
                                                       "status": a.status, "severity": a.severity,
                                                       "reproduced": r.reproduced(threshold)})
        db.finish_run(run_id)
    reproduced = sum(r.reproduced(threshold) for r in results)
    errored = sum(r.attempt.status == "errored" for r in results)
    table = Table("technique", "findings", "reproduced", title=f"replay against {target.name}")
    by: dict[str, list] = {}
    for r in results:
        by.setdefault(r.finding.technique, []).append(r.reproduced(threshold))
    for technique, flags in sorted(by.items()):
        table.add_row(technique, str(len(flags)), str(sum(flags)))
    out.print(table)
    out.print(f"{reproduced} of {len(results)} findings reproduced ({errored} errored) on {target.name}; run {run_id}")


@app.command("export")
def export(run: str = typer.Argument(..., help="Run id (or prefix) of a red-team campaign."),
           output: Path = typer.Option(..., "--output", "-o"), store: StorePath = None) -> None:
    """Write a campaign's findings as JSONL (they hold harmful text: handle them as such)."""
    from breakfix.attacks import findings as findings_io

    with open_store(store) as db:
        record = db.run(run)
        found = db.findings(record.id)
    if not found:
        raise InputError(f"run {record.id} has no findings")
    findings_io.export(found, output)
    err.print(f"wrote {len(found)} findings to {output}")
