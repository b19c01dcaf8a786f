"""`breakfix run`: the break-fix loop; `breakfix report`: its HTML report."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from breakfix.cli.common import StorePath, err, load, one_line, open_store, out
from breakfix.errors import InputError
from breakfix.store.owner import describe


def run(
    config: Path | None = typer.Option(None, "--config", "-c", help="A recipe YAML (see recipes/); default settings otherwise."),
    model: str | None = typer.Option(None, "--model", "-m", help="The model to make safer (overrides the recipe)."),
    rounds: int | None = typer.Option(None, "--rounds", min=1, help="Break-fix rounds (overrides the recipe)."),
    resume: str | None = typer.Option(None, "--resume", help="Continue a run (id or prefix) from its last completed step."),
    report_out: Path | None = typer.Option(None, "--report", help="Where to write the HTML report (default: in the run's folder)."),
    store: StorePath = None,
) -> None:
    """Measure, then round after round: red team, curate, train, measure again; write a report."""
    from breakfix.config import CycleConfig, load_yaml

    with open_store(store) as db:
        if resume:
            record = db.run(resume)
            if record.kind != "cycle":
                raise InputError(f"run {record.id} is a {record.kind} run; --resume takes a `breakfix run` run")
            if config is not None or (model and model != record.model):
                raise InputError("a resumed run keeps its recipe and model; only --rounds may change")
            settings = CycleConfig.model_validate(record.config)
            run_id = record.id
        else:
            settings = load_yaml(config, CycleConfig) if config else CycleConfig()
            run_id = None
        updates = {k: v for k, v in (("model", model), ("rounds", rounds)) if v is not None}
        settings = CycleConfig.model_validate({**settings.model_dump(mode="json"), **updates})
        _trainable(settings.model)
        from breakfix import bench

        bench.expand(settings.eval.suites)  # an unknown suite fails before a run row exists
        if run_id is None:
            run_id = db.create_run("cycle", model=settings.model, config=settings.model_dump(mode="json"))
            err.print(f"run {run_id}: {settings.rounds} rounds on {settings.model} (store {db.path})")
        else:
            if not db.resume_run(run_id, config=settings.model_dump(mode="json")):
                raise InputError(f"run {run_id} is running now ({describe(db.run(run_id).owner)}); wait for it, "
                                 "or stop it and resume it then")
            err.print(f"resuming run {run_id} from its last completed step")
        try:
            loop = _loop(db, run_id, settings)
            decisions = loop.run()
        except BaseException as exc:
            db.finish_run(run_id, "failed", one_line(exc))
            err.print(f"[red]run {run_id} stopped[/]; continue it with: breakfix run --resume {run_id}")
            raise
        db.finish_run(run_id)
        from breakfix.cycle import write_ledger
        from breakfix.report import write_report

        ledger = write_ledger(loop)
        path = write_report(db, run_id, report_out or loop.folder / "report.html")
        out.print(_rounds_table(db, run_id))
    from breakfix.policy import choice_rule, guard_rule

    for d in decisions:
        chosen = f" [{escape(d.candidate)}]" if d.candidate else ""
        out.print(f"round {d.round}{chosen}: {escape(d.why)}")
        for attempt in d.attempts:
            out.print(f"  {escape(attempt)}")
    out.print(f"[dim]{escape(choice_rule(settings.select.over_refusal_weight, settings.select.vprr_confidence))} {escape(guard_rule(settings.guards))}[/]")
    out.print(f"ledger: {ledger}\nreport: {path}")


def report(
    run_ref: str = typer.Argument(..., metavar="RUN", help="A `breakfix run` run (id or prefix)."),
    output: Path | None = typer.Option(None, "--output", "-o", help="HTML file to write (default: in the run's folder)."),
    show_harmful: bool = typer.Option(False, "--show-harmful", help="Show harmful completions instead of redacting them."),
    store: StorePath = None,
) -> None:
    """Write a self-contained HTML report of a run (opens nothing by itself)."""
    from breakfix.report import write_report

    with open_store(store) as db:
        record = db.run(run_ref)
        if record.kind != "cycle":
            raise InputError(f"run {record.id} is a {record.kind} run; report takes a `breakfix run` run")
        path = write_report(db, record.id, output or db.path.parent / record.id / "report.html", show_harmful=show_harmful)
        out.print(_rounds_table(db, record.id))
    out.print(f"report: {path}" + ("  [yellow](harmful completions shown)[/]" if show_harmful else ""))


def _trainable(model: str) -> None:
    """The loop post-trains the model: it needs local weights (checked before anything runs)."""
    from breakfix.targets.base import local_path

    if not model.startswith("mock:"):  # the scripted mock runs the loop up to "nothing to fix" in tests
        local_path(model)


def _loop(db, run_id: str, settings):
    from breakfix import bench
    from breakfix.attacks import load_judges
    from breakfix.cycle import Loop
    from breakfix.data import load_catalog
    from breakfix.judges import load_judge
    from breakfix.paths import home

    suites = bench.expand(settings.eval.suites)  # unknown suites fail before anything loads
    with err.status("loading data and judges"):
        catalog = load_catalog(home(), settings.data)
        e = settings.eval
        judges = load_judges(home(), harm=e.judge, refusal=e.refusal_judge, model=e.judge_model)
        grounded = load_judge("groundedness", home()) if "ungroundedness" in suites else None
    return Loop(store=db, run_id=run_id, config=settings, folder=db.path.parent / run_id, catalog=catalog, judges=judges,
                groundedness=grounded, home=home(), load=load, hooks=_RichHooks())


class _RichHooks:
    def say(self, text: str) -> None:
        err.print(f"[bold]{escape(text)}[/]")

    @contextmanager
    def track(self, label: str):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[note]}"), TimeElapsedColumn())
        with Progress(*columns, console=err) as progress:
            task = progress.add_task(label, total=None, note="")
            yield lambda done, total, note="": progress.update(task, completed=done, total=total, note=note)


def _rounds_table(db, run_id: str) -> Table:
    from breakfix.report import rounds

    table = Table("round", "model", "harmful-response rate", "VPRR", "capability", "decision",
                  title=f"run {run_id}: eval split, rates in % [95% interval]")
    for r in rounds(db, run_id):
        table.add_row(str(r.round), escape(r.model_label), r.cell("harmful"), r.cell("vprr"), r.cell("capability"),
                      escape(r.decision or ""))
    return table
