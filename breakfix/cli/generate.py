"""`breakfix generate`: answer a prompts file with a model, record the run, write JSONL.

The run is resumable: a rerun with the same model, input, output and settings continues the
unfinished run instead of starting over. Replies go to the store batch by batch under ids made
from the run and the item, so a rerun after a kill asks only what is missing and stores
nothing twice. Whatever stops the run (an exception, Ctrl-C, a full disk) marks it failed
with a one-line reason: a run is never left `running` by an error.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from breakfix.cli.common import (MaxNewTokens, Model, Seed, StorePath, System, Temperature,
                                 chat_with_progress, err, load, one_line, open_store, reply_meta)
from breakfix.errors import BreakfixError
from breakfix.files import PromptItem, check_writable, read_prompts, write_jsonl
from breakfix.types import GenerationConfig, Reply

if TYPE_CHECKING:
    from breakfix.store import Store
    from breakfix.targets import Target


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
    """Generate replies for every prompt in a file; the run and its conversations go to the store.
    Rerunning the same command resumes an unfinished run."""
    items = read_prompts(input)  # fail on a bad file, or an output that cannot be written, before loading a model
    check_writable(output)
    config = GenerationConfig(max_new_tokens=max_new_tokens, temperature=temperature, seed=seed,
                              system_prompt=system)
    target = load(model, batch_size)
    run_config = {"input": str(input), "input_sha256": _sha256(input), "output": str(output.resolve()),
                  "generation": config.model_dump()}
    with open_store(store) as db:
        run_id, done = _start(db, target.name, run_config)
        try:
            rows, failed, blocked = _answer(db, run_id, target, items, config, done)
            if len(failed) == len(items):
                raise BreakfixError(f"all {len(items)} requests failed: {failed[0]}")
            write_jsonl(output, rows)
        except BaseException as exc:
            _fail(db, run_id, exc)
            raise
        summary = f"{len(failed)} requests failed" if failed else None
        db.finish_run(run_id, "failed" if failed else "completed", summary)
    filtered = f", {blocked} blocked by the provider's content filter" if blocked else ""
    err.print(f"wrote {len(rows)} replies to {output}{filtered} (run {run_id})")
    if failed:
        raise BreakfixError(f"{len(failed)} of {len(rows)} requests failed (marked in {output}): {failed[0]}")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _start(db: Store, model: str, run_config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The unfinished run of this very command to resume (with what it has stored, by item id),
    or a new run."""
    previous = db.unfinished_run("generate", model=model, config=run_config)
    if previous is None or not db.resume_run(previous):  # none, or another process took it meanwhile
        return db.create_run("generate", model=model, config=run_config), {}
    done = {c.item_id: c for c in db.conversations(previous, purpose="generate")}
    err.print(f"resuming run {previous}: {len(done)} prompts already answered")
    return previous, done


def _fail(db: Store, run_id: str, exc: BaseException) -> None:
    try:
        db.finish_run(run_id, "failed", one_line(exc))
    except Exception:  # the store itself failing (a full disk): the original error is the one to show
        pass


def _answer(db: Store, run_id: str, target: Target, items: list[PromptItem], config: GenerationConfig,
            done: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str], int]:
    """Ask what is not answered yet, storing each batch as it comes; the output rows in input order,
    the errors, and how many replies a content filter blocked."""
    from breakfix.targets.base import is_blocked

    todo = [item for item in items if item.id not in done]

    def store_batch(start: int, replies: list[Reply]) -> None:
        for item, reply in zip(todo[start:], replies):
            if reply.ok or is_blocked(reply):
                _store(db, run_id, target.name, item, reply)

    replies = dict(zip((i.id for i in todo), chat_with_progress(target, [i.conversation for i in todo], config,
                                                                 on_batch=store_batch)))
    rows, failed, blocked = [], [], 0
    for item in items:
        reply = replies.get(item.id) or _stored_reply(done[item.id])
        rows.append(_row(item, reply))
        blocked += is_blocked(reply)
        if not reply.ok and not is_blocked(reply):
            failed.append(reply.error)
    return rows, failed, blocked


def _store(db: Store, run_id: str, model: str, item: PromptItem, reply: Reply) -> None:
    """A reply, or a blocked request without one (so no judge mistakes the filter's silence for
    the model's refusal), under an id made from the run and the item."""
    cid = hashlib.sha256(f"{run_id}|{item.id}".encode()).hexdigest()[:32]
    if reply.ok:
        db.add_conversation(run_id, [*item.conversation, reply.message], model=model, purpose="generate",
                            item_id=item.id, meta=item.meta, conversation_id=cid,
                            message_meta=[None] * len(item.conversation) + [reply_meta(reply)])
    else:
        db.add_conversation(run_id, item.conversation, model=model, purpose="generate", item_id=item.id,
                            meta={**item.meta, "blocked": reply.error}, conversation_id=cid)


def _stored_reply(conv: Any) -> Reply:
    if conv.messages[-1].role != "assistant":
        return Reply(finish_reason="error", error=conv.meta.get("blocked") or "blocked")
    return Reply(content=conv.messages[-1].content, **(conv.message_meta[-1] or {}))


def _row(item: PromptItem, reply: Reply) -> dict[str, Any]:
    from breakfix.targets.base import is_blocked

    status = "ok" if reply.ok else "blocked" if is_blocked(reply) else "error"
    return {"id": item.id, **item.meta, "messages": [m.model_dump() for m in item.conversation],
            "response": reply.content if reply.ok else None, "status": status, **reply_meta(reply)}
