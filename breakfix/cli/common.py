"""Options and helpers shared by the subcommands."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from breakfix.errors import BreakfixError
from breakfix.paths import default_store
from breakfix.types import Conversation, GenerationConfig, Reply

if TYPE_CHECKING:
    from breakfix.store import Store
    from breakfix.targets import Target

out = Console()
err = Console(stderr=True)

Model = Annotated[str, typer.Option("--model", "-m", help="smollm2-135m, hf:PATH, openai:MODEL@URL or mock:echo|refuse|comply.")]
MaxNewTokens = Annotated[int, typer.Option("--max-new-tokens", min=1, help="Upper bound on tokens per reply.")]
Temperature = Annotated[float, typer.Option("--temperature", min=0.0, help="0 decodes greedily.")]
Seed = Annotated[int, typer.Option("--seed", help="Sampling seed.")]
System = Annotated[str | None, typer.Option("--system", help="System prompt for conversations without one.")]
StorePath = Annotated[Path | None, typer.Option("--store", envvar="BREAKFIX_STORE", help="Run store (default ./breakfix-runs/breakfix.db).")]


def open_store(path: Path | None) -> Store:
    from breakfix.store import Store

    return Store(path or default_store())


def load(spec: str, batch_size: int | None = None) -> Target:
    """Load a model with a spinner; `batch_size` applies to targets that batch locally."""
    from breakfix.targets import load_target

    with err.status(f"loading {spec}"):
        target = load_target(spec)
    if batch_size and hasattr(target, "batch_size"):
        target.batch_size = batch_size
    return target


def chat_with_progress(target: Target, conversations: Sequence[Conversation], config: GenerationConfig,
                       label: str = "generating",
                       on_batch: Callable[[int, list[Reply]], None] | None = None) -> list[Reply]:
    """Answer in chunks of one batch, advancing a progress bar after each; `on_batch(start, replies)`
    sees each chunk as it comes (to store it before the next, so a kill loses one batch at most)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    chunk = getattr(target, "batch_size", 16)
    replies: list[Reply] = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task(label, total=len(conversations))
        for start in range(0, len(conversations), chunk):
            part = conversations[start : start + chunk]
            answered = target.chat(part, config)
            if on_batch is not None:
                on_batch(start, answered)
            replies.extend(answered)
            progress.advance(task, len(part))
    return replies


def reply_meta(reply: Reply) -> dict:
    return reply.model_dump(exclude={"content"}, exclude_none=True)


def one_line(exc: BaseException) -> str:
    """An error as one line, for a run's `error` column."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    text = str(exc).strip().splitlines()
    return text[0] if text and isinstance(exc, BreakfixError) else f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")
