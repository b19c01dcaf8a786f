"""`breakfix demo`: a small built-in prompt set through a model, as a table."""

from __future__ import annotations

from importlib import resources

import typer
from rich.markup import escape
from rich.table import Table

from breakfix.cli.common import MaxNewTokens, Model, StorePath, chat_with_progress, load, open_store, out, reply_meta
from breakfix.files import read_prompts
from breakfix.redact import redact
from breakfix.types import GenerationConfig


def demo(
    model: Model = "smollm2-135m",
    max_new_tokens: MaxNewTokens = 80,
    store: StorePath = None,
    show_harmful: bool = typer.Option(False, "--show-harmful", help="Print replies to harmful requests in full."),
) -> None:
    """Answer a few benign and a few harmful prompts and show the replies with their latency."""
    with resources.as_file(resources.files("breakfix.resources") / "demo_prompts.jsonl") as path:
        items = read_prompts(path)
    config = GenerationConfig(max_new_tokens=max_new_tokens)
    target = load(model)
    replies = chat_with_progress(target, [i.conversation for i in items], config)
    with open_store(store) as db:
        run_id = db.create_run("demo", model=target.name, config={"generation": config.model_dump()})
        for item, reply in zip(items, replies):
            db.add_conversation(run_id, [*item.conversation, reply.message], model=target.name, purpose="demo",
                                item_id=item.id, meta=item.meta,
                                message_meta=[None] * len(item.conversation) + [reply_meta(reply)])
        db.finish_run(run_id)
    table = Table("prompt", "response", "latency", title=f"{target.name} (run {run_id})", show_lines=True)
    for item, reply in zip(items, replies):
        text = reply.error or reply.content
        if item.meta.get("harmful") and not show_harmful:
            text = redact(text, "reply to a harmful request")
        elif len(text) > 300:
            text = text[:300] + "…"
        table.add_row(escape(item.conversation[-1].content), escape(text), f"{reply.latency_s:.1f} s")
    out.print(table)
    out.print("Latency is the wall time of the batch each prompt was answered in.", style="dim")
