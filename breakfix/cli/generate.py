"""`breakfix generate`: answer a prompts file with a model, record the run, write JSONL."""

from __future__ import annotations

from pathlib import Path

import typer

from breakfix.cli.common import (MaxNewTokens, Model, Seed, StorePath, System, Temperature,
                                 chat_with_progress, err, load, open_store, reply_meta)
from breakfix.errors import BreakfixError
from breakfix.files import read_prompts, write_jsonl
from breakfix.types import GenerationConfig


def generate(
    input: Path = typer.Option(..., "--input", "-i", help="JSONL with 'prompt' or 'messages' (optional 'id'), or .txt with one prompt per line."),
    output: Path = typer.Option(..., "--output", "-o", help="Where to write the replies (JSONL)."),
    model: Model = "smollm2-135m",
    system: System = None,
    max_new_tokens: MaxNewTokens = 256,
    temperature: Temperature = 0.0,
    seed: Seed = 0,
    batch_size: int = typer.Option(32, min=1, help="Prompts per batch for local models."),
    store: StorePath = None,
) -> None:
    """Generate replies for every prompt in a file; the run and its conversations go to the store."""
    items = read_prompts(input)  # fail on a bad file before loading any model
    config = GenerationConfig(max_new_tokens=max_new_tokens, temperature=temperature, seed=seed,
                              system_prompt=system)
    target = load(model, batch_size)
    with open_store(store) as db:
        run_id = db.create_run("generate", model=target.name,
                               config={"input": str(input), "generation": config.model_dump()})
        replies = chat_with_progress(target, [i.conversation for i in items], config)
        failed = [r for r in replies if not r.ok]
        if len(failed) == len(replies):
            db.finish_run(run_id, "failed", failed[0].error)
            raise BreakfixError(f"all {len(replies)} requests failed: {failed[0].error}")
        rows = []
        for item, reply in zip(items, replies):
            if reply.ok:
                db.add_conversation(run_id, [*item.conversation, reply.message], model=target.name,
                                    purpose="generate", item_id=item.id, meta=item.meta,
                                    message_meta=[None] * len(item.conversation) + [reply_meta(reply)])
            rows.append({"id": item.id, **item.meta,
                         "messages": [m.model_dump() for m in item.conversation],
                         "response": reply.content if reply.ok else None, **reply_meta(reply)})
        write_jsonl(output, rows)
        db.finish_run(run_id, "failed" if failed else "completed",
                      f"{len(failed)} requests failed" if failed else None)
    err.print(f"wrote {len(rows)} replies to {output} (run {run_id})")
    if failed:
        raise BreakfixError(f"{len(failed)} of {len(replies)} requests failed (marked in {output}): {failed[0].error}")
