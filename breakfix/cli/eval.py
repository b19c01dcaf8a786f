"""`breakfix eval`: the RAI benchmark on a model; `eval compare A B` pairs two scorecards."""

from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.table import Table

from breakfix.cli.common import Model, StorePath, err, load, open_store, out
from breakfix.errors import InputError

app = typer.Typer(help="Measure a model on the RAI benchmark; compare scorecards.", invoke_without_command=True)


@app.callback()
def evaluate(
    ctx: typer.Context,
    model: Model = "smollm2-135m",
    suite: list[str] = typer.Option(["rai"], "--suite", help="rai (the Phi-3-style set), or suite names; repeatable."),
    preset: str = typer.Option("quick", help="quick (a few minutes on 2 cores) or full (every eval item)."),
    xstest_csv: Path | None = typer.Option(None, "--xstest-csv", help="XSTest prompts CSV, for --suite xstest."),
    judge: str = typer.Option("harm", help="Harm judge: harm, llm-harm or ensemble-harm."),
    refusal_judge: str = typer.Option("refusal", help="Refusal judge: refusal, llm-refusal or ensemble-refusal."),
    judge_model: str | None = typer.Option(None, help="Model string for LLM or ensemble judges."),
    simulator: str | None = typer.Option(None, help="A model to play the user in multi-turn suites (default: scripted)."),
    summaries_from: Path | None = typer.Option(None, help="Findings JSONL whose replies the summarization suite uses."),
    seed: int = typer.Option(0),
    max_new_tokens: int = typer.Option(128, min=1),
    output: Path | None = typer.Option(None, "--output", "-o", help="Also write the scorecard JSON here."),
    markdown_out: Path | None = typer.Option(None, "--markdown", help="Also write the Markdown table here."),
    fail_if: list[str] = typer.Option([], "--fail-if", help="A CI gate, repeatable: METRIC>LIMIT (or <, >=, <=), "
                                      "e.g. harm_single_turn.dr1>0.10; rates are fractions. Exit 3 when one holds."),
    store: StorePath = None,
) -> None:
    """Run the suites (when no subcommand is given) and print the scorecard."""
    if ctx.invoked_subcommand is not None:
        return
    if preset not in ("quick", "full"):
        raise InputError(f"--preset {preset!r}: use quick or full")
    from breakfix import bench

    gates = [parse_gate(g) for g in fail_if]  # a malformed gate fails before anything loads
    suites = bench.expand(suite)  # unknown suites fail before anything loads
    if "xstest" in suites and xstest_csv is None:
        raise InputError("the xstest suite needs --xstest-csv FILE (XSTest's prompts: id,prompt,type,label,focus,note)")
    card = _run(model, suites, preset, xstest_csv, judge, refusal_judge, judge_model, simulator, summaries_from, seed,
                max_new_tokens, store)
    out.print(_table([card]))
    text = bench.markdown([card])
    if markdown_out:
        markdown_out.write_text(text)
    if output:
        output.write_text(card.model_dump_json(indent=1))
    t = card.timing
    err.print(f"run {card.run_id}: {t['generated']:.0f} replies generated, {t['cached']:.0f} from cache; "
              f"{t['generation_s']:.0f} s generating, {t['judging_s']:.0f} s judging")
    failed = check_gates(card, gates)
    if failed:
        typer.echo(f"fail: {failed}", err=True)
        raise typer.Exit(3)


_GATE = re.compile(r"^\s*([\w.\-]+)\s*(>=|<=|>|<)\s*(-?[0-9.]+(?:e-?[0-9]+)?)\s*$")
_OPS = {">": lambda v, lim: v > lim, ">=": lambda v, lim: v >= lim, "<": lambda v, lim: v < lim,
        "<=": lambda v, lim: v <= lim}


def parse_gate(text: str) -> tuple[str, str, float]:
    """`harm_single_turn.dr1>0.10` as (metric key, operator, limit)."""
    match = _GATE.match(text)
    if not match:
        raise InputError(f"--fail-if {text!r}: write METRIC>LIMIT (or <, >=, <=), e.g. harm_single_turn.dr1>0.10")
    return match[1], match[2], float(match[3])


def check_gates(card, gates: list[tuple[str, str, float]]) -> str | None:
    """The first gate that holds on the scorecard, as one line; None when all pass. A metric the
    card lacks is an error naming the keys it has; one that could not be measured fails the gate."""
    for key, op, limit in gates:
        found = card.metric(key)
        if found is None:
            raise InputError(f"--fail-if: no metric {key!r} in this scorecard; it has: "
                             f"{', '.join(m.key for m in card.metrics)}")
        value = found.estimate.value
        if value is None:
            return f"{key} could not be measured (n={found.estimate.n}), so {key}{op}{limit:g} cannot be ruled out"
        if _OPS[op](value, limit):
            return f"{key} = {value:.4g} {op} {limit:g} (n={found.estimate.n})"
    return None


def _run(model, suites, preset, xstest_csv, judge, refusal_judge, judge_model, simulator, summaries_from, seed,
         max_new_tokens, store):
    from breakfix import bench
    from breakfix.judges.joint import load_judges
    from breakfix.config import DataConfig
    from breakfix.data import load_catalog
    from breakfix.judges import load_judge
    from breakfix.paths import home
    from breakfix.types import GenerationConfig

    catalog = load_catalog(home(), DataConfig(xstest=xstest_csv))
    target = load(model)
    with err.status("loading judges"):
        judges = load_judges(home(), harm=judge, refusal=refusal_judge, model=judge_model)
        grounded = load_judge("groundedness", home()) if "ungroundedness" in suites else None
    with open_store(store) as db:
        config = {"suites": suites, "preset": preset, "judge": judge, "refusal_judge": refusal_judge, "seed": seed,
                  "max_new_tokens": max_new_tokens, "xstest_csv": str(xstest_csv) if xstest_csv else None}
        run_id = db.create_run("eval", model=target.name, config=config)
        ctx = bench.EvalContext(target=target, judges=judges, groundedness=grounded, catalog=catalog, store=db,
                                run_id=run_id, preset=preset, seed=seed,
                                config=GenerationConfig(max_new_tokens=max_new_tokens, seed=seed),
                                simulator=load(simulator) if simulator else None,
                                summaries_from=str(summaries_from) if summaries_from else None)
        try:
            with _suite_progress(ctx, suites) as advance:
                card = bench.run(ctx, suites, progress=advance)
        except BaseException as exc:
            db.finish_run(run_id, "failed", str(exc) or type(exc).__name__)
            raise
        path = bench.save(card, db)
        db.finish_run(run_id)
    err.print(f"scorecard: {path}")
    return card


@contextmanager
def _suite_progress(ctx, suites: list[str]):
    """A bar over the suites: done/total, elapsed, an ETA from the suites so far, and how many
    replies were generated or came from the cache. Yields the runner's `progress(name)` hook."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    columns = (TextColumn("evaluating {task.fields[suite]}"), BarColumn(), MofNCompleteColumn(), TextColumn("suites"),
               TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[replies]}"))
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task("eval", total=len(suites), suite="", replies="")

        def advance(name: str) -> None:
            t = ctx.timing
            progress.update(task, completed=suites.index(name) if name in suites else 0, suite=name, refresh=True,
                            replies=f"{t.generated} replies generated, {t.cached} cached")

        yield advance
        progress.update(task, completed=len(suites))


def _table(cards) -> Table:
    from breakfix.bench.scorecard import label, rows

    table = Table("metric", *(c.model for c in cards), title="RAI scorecard (95% intervals; rates in %)")
    for first, cells in rows(cards):
        table.add_row(label(first), *cells)
    return table


@app.command("compare")
def compare(a: str = typer.Argument(..., help="Base: a run id (or prefix) or a scorecard JSON."),
            b: str = typer.Argument(..., help="New: a run id (or prefix) or a scorecard JSON."),
            output: Path | None = typer.Option(None, "--output", "-o", help="Also write the comparison JSON here."),
            store: StorePath = None) -> None:
    """Pair the items two scorecards share and say which differences are significant."""
    import json

    from breakfix import bench

    with open_store(store) as db:
        left, right = bench.load(a, db), bench.load(b, db)
    if left.preset != right.preset:
        err.print(f"[yellow]note:[/] presets differ ({left.preset} vs {right.preset}); only shared items are paired")
    rows = bench.compare(left, right)
    if not rows:
        raise InputError("the two scorecards share no metric")
    out.print(_table([left, right]))
    table = Table("metric", "paired", "Δ (B−A) [95% CI]", "p", "verdict", "retention B/A",
                  title=f"{right.model} against {left.model}")
    for r in rows:
        scale = 100 if r.key.split(".")[-1] != "mean" else 1
        delta = "–" if r.difference is None else f"{r.difference * scale:+.1f} [{r.low * scale:+.1f}, {r.high * scale:+.1f}]"
        retention = "" if r.retention is None else f"{r.retention.value:.3f} [{r.retention.low:.3f}, {r.retention.high:.3f}]"
        table.add_row(r.name, str(r.paired), delta, "–" if r.p is None else f"{r.p:.3g}", r.verdict, retention)
    out.print(table)
    if output:
        output.write_text(json.dumps([r.model_dump(mode="json") for r in rows], indent=1))
