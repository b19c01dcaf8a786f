"""`breakfix runs list|show|export`: what is in the run store."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from breakfix.cli.common import StorePath, err, open_store, out
from breakfix.redact import possibly_harmful, redact, terminal_safe
from breakfix.store.owner import describe

app = typer.Typer(no_args_is_help=True, help="Inspect runs in the store.")


@app.command("list")
def list_runs(store: StorePath = None, limit: int = typer.Option(50, min=1)) -> None:
    """Most recent runs first."""
    with open_store(store) as db:
        runs = db.runs(limit)
        table = Table("run", "kind", "status", "model", "created", title=str(db.path))
        for run in runs:
            table.add_row(run.id, run.kind, _status(run), run.model or "", run.created_at[:19].replace("T", " "))
    out.print(table if runs else f"no runs in {db.path}")


def _status(run) -> str:
    """A run's status; a running one names its process."""
    return f"{run.status} ({describe(run.owner)})" if run.status == "running" and run.owner else run.status


@app.command("show")
def show_run(
    run: str = typer.Argument(..., help="Run id or a unique prefix of it."),
    store: StorePath = None,
    transcripts: int = typer.Option(3, "-n", min=0, help="How many conversations to print."),
    show_harmful: bool = typer.Option(False, "--show-harmful", help="Print replies to harmful requests in full."),
) -> None:
    """A run's status, config, record counts and a few transcripts."""
    with open_store(store) as db:
        record = db.run(run)
        conversations = db.conversations(record.id, limit=transcripts)
        severities: dict[str, list[float | None]] = {}
        for stored in db.scores(record.id):
            if stored.score.kind == "harm":
                severities.setdefault(stored.conversation_id, []).append(stored.score.value)
    out.print(f"[bold]{record.id}[/]  {record.kind}  {_status(record)}  model={record.model}")
    out.print(f"created {record.created_at}  finished {record.finished_at or '-'}")
    if record.error:
        out.print(f"[red]error:[/] {escape(terminal_safe(record.error))}")
    out.print("counts: " + ", ".join(f"{k}={v}" for k, v in record.counts.items()))
    if record.config:
        out.print("config: " + escape(json.dumps(record.config, sort_keys=True)), soft_wrap=True)
    for conv in conversations:
        out.rule(f"{conv.purpose} {conv.item_id or conv.id[:8]}")
        hide = possibly_harmful(conv.meta, severities.get(conv.id, ())) and not show_harmful
        for message in conv.messages:
            text = redact(message.content) if hide and message.role == "assistant" else message.content
            out.print(f"[bold]{message.role}:[/] {escape(terminal_safe(text))}", highlight=False)


@app.command("export")
def export_run(
    run: str = typer.Argument(..., help="Run id or a unique prefix of it."),
    output: Path = typer.Option(..., "--output", "-o", help="A .jsonl file: one conversation a line."),
    store: StorePath = None,
) -> None:
    """Write a run's conversations with every score (judge and version) as JSONL, loadable by
    `datasets.load_dataset("json", data_files=FILE)`. They may hold harmful text."""
    from breakfix.files import write_jsonl

    with open_store(store) as db:
        record = db.run(run)
        rows = export_rows(db, record.id)
    write_jsonl(output, rows)
    err.print(f"wrote {len(rows)} conversations of run {record.id} to {output}")


def export_rows(db, run_id: str) -> list[dict]:
    """One row per conversation, with a fixed schema so Arrow reads every run alike: messages as
    role/content structs, scores as structs, and the free-form fields (meta, a judge's config)
    as JSON text, since their keys and types differ from one row to the next."""
    by_conversation: dict[str, list[dict]] = {}
    for stored in db.scores(run_id):
        s = stored.score
        by_conversation.setdefault(stored.conversation_id, []).append({
            "message_idx": stored.message_idx, "kind": s.kind, "judge": s.judge, "judge_version": s.judge_version,
            "label": s.label, "value": None if s.value is None else float(s.value), "unscoreable": s.unscoreable,
            "category": s.category, "reason": s.reason, "flags": list(s.flags),
            "config_json": json.dumps(s.config, sort_keys=True)})
    return [{"id": c.id, "run_id": c.run_id, "round_id": c.round_id, "model": c.model, "purpose": c.purpose,
             "item_id": c.item_id, "messages": [{"role": m.role, "content": m.content} for m in c.messages],
             "scores": by_conversation.get(c.id, []), "meta_json": json.dumps(c.meta, sort_keys=True)}
            for c in db.conversations(run_id)]
