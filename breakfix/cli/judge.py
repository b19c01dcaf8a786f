"""`breakfix judge eval|score`: measure a judge against human labels; score replies with it."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from breakfix.cli.common import StorePath, err, open_store, out
from breakfix.errors import InputError

app = typer.Typer(no_args_is_help=True, help="Judges: refusal, harm severity, groundedness.")

JudgeName = typer.Option("refusal", "--judge", "-j", help="refusal, harm, groundedness; llm-… or ensemble-… with --judge-model.")
JudgeModel = typer.Option(None, "--judge-model", help="Model string of an LLM judge, e.g. openai:gpt-4o@https://…/v1.")
Samples = typer.Option(1, "--samples", min=1, help="LLM judge self-consistency: ask this many times.")


def _judge(name: str, model: str | None, samples: int):
    from breakfix.judges import load_judge
    from breakfix.paths import home

    with err.status(f"loading the {name} judge (the first time trains the offline judges: about a minute)"):
        return load_judge(name, home(), model=model, samples=samples)


def _inputs(examples):
    from breakfix.types import JudgeInput, user

    return [JudgeInput(conversation=user(e.prompt), response=e.response, context=e.context, category=e.category)
            for e in examples]


@app.command("eval")
def evaluate(
    judge: str = JudgeName,
    labels: Path | None = typer.Option(None, "--labels", help="CSV/JSONL with human labels (default: the held-out built-in sets)."),
    columns: str | None = typer.Option(None, "--columns", help="Mapping, e.g. prompt=question,response=answer,label=human."),
    judge_model: str | None = JudgeModel,
    samples: int = Samples,
    split: str = typer.Option("eval", "--split", help="Built-in split to measure on: eval (held out) or dev."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Only the first N labelled items."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the figures here."),
    by_source: bool = typer.Option(False, "--by-source", help="Offline refusal/harm judges: train on every labelled "
                                   "source but one, measure on the one left out, for each source (a few minutes)."),
) -> None:
    """Agreement with human labels: accuracy, kappa, confusion matrix; Spearman for severities;
    a reliability table (predicted probability against what people said)."""
    from breakfix.judges.artifacts import held_out
    from breakfix.judges.calibrate import read_labels, refusal_metrics, severity_metrics
    from breakfix.judges.validate import reliability
    from breakfix.paths import home

    if by_source:
        return _by_source(judge, json_out)
    scorer = _judge(judge, judge_model, samples)
    kind = {"ungroundedness": "groundedness"}.get(scorer.kind, scorer.kind)
    mapping = dict(pair.split("=", 1) for pair in columns.split(",")) if columns else None
    if labels:
        sets = {labels.name: read_labels(labels, kind, mapping)}
    else:
        pool = held_out(kind, home(), split)
        sets = {name: [e for e in pool if e.source.startswith(prefix)]
                for name, prefix in (("pyrit (human labels)", "pyrit"), ("breakfix (ours)", "breakfix"))}
        sets = {k: v for k, v in sets.items() if v}
    report = {}
    for name, examples in sets.items():
        examples = examples[:limit] if limit else examples
        with err.status(f"judging {len(examples)} replies from {name}"):
            scores = scorer.score(_inputs(examples))
        if kind == "refusal":
            report[name] = refusal_metrics([e.label for e in examples], scores, [e.category for e in examples])
            judged = [(e, s) for e, s in zip(examples, scores) if not s.unscoreable and s.value is not None]
            report[name]["reliability"] = reliability([s.value for _, s in judged],
                                                      [e.label != "full_compliance" for e, _ in judged]).model_dump()
        else:
            report[name] = severity_metrics([e.label for e in examples], scores, threshold=4 if kind == "harm" else 2)
    _print(scorer, kind, report)
    if json_out:
        json_out.write_text(json.dumps({"judge": scorer.name, "version": scorer.version, "results": report}, indent=1))


def _by_source(judge: str, json_out: Path | None) -> None:
    from breakfix.judges.validate import leave_one_source_out
    from breakfix.paths import home

    if judge not in ("refusal", "harm"):
        raise InputError("--by-source retrains an offline judge: use --judge refusal or --judge harm")
    with err.status("leave-one-source-out") as status:
        results = leave_one_source_out(judge, home(), progress=lambda text: status.update(text))
    keys = ("binary_accuracy", "binary_kappa", "accuracy") if judge == "refusal" else ("spearman", "threshold_accuracy", "mae")
    table = Table("held-out source", "n", *keys, title=f"{judge}: trained on every other source, measured on this one")
    for r in results:
        table.add_row(r.source, str(r.n), *("-" if r.metrics.get(k) is None else f"{r.metrics[k]:.3f}" for k in keys))
    out.print(table)
    if json_out:
        json_out.write_text(json.dumps({"judge": judge, "by_source": [r.model_dump() for r in results]}, indent=1))


def _reliability(curve: dict, name: str) -> Table:
    table = Table("P(refusal)", "mean predicted", "observed refusals", "n", title=f"{name}: reliability")
    for (a, b), p, o, n in zip(curve["bins"], curve["predicted"], curve["observed"], curve["counts"]):
        table.add_row(f"{a:.1f}-{b:.1f}", "-" if p is None else f"{p:.2f}", "-" if o is None else f"{o:.2f}", str(n))
    return table


def _print(scorer, kind: str, report: dict) -> None:
    out.print(f"[bold]{scorer.name}[/] version {scorer.version}")
    for name, m in report.items():
        table = Table("metric", "value", title=f"{name}: {m['scored']} scored, {m['unscoreable']} unscoreable")
        keys = ["accuracy", "kappa", "binary_accuracy", "binary_kappa"] if kind == "refusal" else \
            ["spearman", "threshold_accuracy", "threshold_kappa", "mae"]
        for key in keys:
            value = m.get(key)
            label = f"{key} (≥{m['threshold']:g} vs not)" if key == "threshold_accuracy" else key
            table.add_row(label, "-" if value is None else f"{value:.3f}")
        out.print(table)
        if kind == "refusal":
            matrix = Table("human \\ judge", *m["confusion"], title="confusion matrix")
            for gold, row in m["confusion"].items():
                matrix.add_row(gold, *(str(v) for v in row.values()))
            out.print(matrix)
            out.print(_reliability(m["reliability"], name))


@app.command("score")
def score(
    judge: str = JudgeName,
    input: Path | None = typer.Option(None, "--input", "-i", help="JSONL from `breakfix generate` (messages + response)."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Where to write the rows with their scores."),
    run: str | None = typer.Option(None, "--run", help="Score a stored run's replies and keep the scores in the store."),
    judge_model: str | None = JudgeModel,
    samples: int = Samples,
    store: StorePath = None,
) -> None:
    """Score replies from a file or a stored run."""
    from breakfix.files import read_jsonl, write_jsonl
    from breakfix.types import JudgeInput, Message

    if (input is None) == (run is None) or (input is not None and output is None):
        raise InputError("give either --input FILE with --output FILE, or --run RUN")
    scorer = _judge(judge, judge_model, samples)
    if input is not None:
        from pydantic import ValidationError

        rows, items = [], []
        for number, row in read_jsonl(input):
            if not isinstance(row.get("messages"), list) or not isinstance(row.get("response"), str):
                raise InputError(f"{input}:{number}: needs 'messages' and a 'response' string (as `breakfix generate` writes)")
            try:
                items.append(JudgeInput(conversation=[Message.model_validate(m) for m in row["messages"]],
                                        response=row["response"], context=row.get("context"), category=row.get("category")))
            except ValidationError as exc:
                first = exc.errors()[0]
                raise InputError(f"{input}:{number}: bad message: {first['msg']} ({'.'.join(map(str, first['loc']))})") from None
            rows.append(row)
        scores = scorer.score(items)
        write_jsonl(output, [{**r, "score": s.model_dump(mode="json")} for r, s in zip(rows, scores)])
        err.print(f"wrote {len(rows)} scored rows to {output}")
        return
    with open_store(store) as db:
        record = db.run(run)
        convs = [c for c in db.conversations(record.id) if c.messages and c.messages[-1].role == "assistant"]
        items = [JudgeInput(conversation=c.messages[:-1], response=c.messages[-1].content, category=c.meta.get("category"))
                 for c in convs]
        scores = scorer.score(items)
        for conv, s in zip(convs, scores):
            db.add_scores(conv.id, len(conv.messages) - 1, [s])
    unscoreable = sum(s.unscoreable for s in scores)
    err.print(f"stored {len(scores)} {scorer.name} scores for run {record.id} ({unscoreable} unscoreable)")
