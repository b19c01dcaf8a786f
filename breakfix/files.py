"""Reading user files with errors that name file and line, and writing files atomically."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, ValidationError

from breakfix.errors import InputError
from breakfix.types import Conversation, Message


def read_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for each non-blank line; a bad line names file:line."""
    path = Path(path)
    try:
        handle = open(path, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or exc}") from None
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{number}: not valid JSON ({exc.msg} at column {exc.colno})") from None
            if not isinstance(value, dict):
                raise InputError(f"{path}:{number}: expected a JSON object, got {type(value).__name__}")
            yield number, value


class PromptItem(BaseModel):
    id: str
    conversation: Conversation
    meta: dict[str, Any] = {}


def read_prompts(path: str | Path) -> list[PromptItem]:
    """Prompts from JSONL (`prompt` or `messages`, optional `id`, other keys kept as meta) or
    from a `.txt` file with one prompt per line."""
    path = Path(path)
    if path.suffix == ".txt":
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise InputError(f"{path}: {exc.strerror or exc}") from None
        items = [PromptItem(id=str(n), conversation=[Message(role="user", content=t.strip())])
                 for n, t in enumerate(lines, start=1) if t.strip()]
    else:
        items = [_prompt_item(path, n, row) for n, row in read_jsonl(path)]
    if not items:
        raise InputError(f"{path}: no prompts")
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            raise InputError(f"{path}: id {item.id!r} appears more than once")
        seen.add(item.id)
    return items


def _prompt_item(path: Path, number: int, row: dict[str, Any]) -> PromptItem:
    where = f"{path}:{number}"
    if isinstance(row.get("prompt"), str) and row["prompt"].strip():
        conversation = [Message(role="user", content=row["prompt"])]
    elif isinstance(row.get("messages"), list) and row["messages"]:
        try:
            conversation = [Message.model_validate(m) for m in row["messages"]]
        except ValidationError as exc:
            first = exc.errors()[0]
            raise InputError(f"{where}: bad message: {first['msg']} ({'.'.join(map(str, first['loc']))})") from None
        if conversation[-1].role != "user":
            raise InputError(f"{where}: the last message must come from the user")
    else:
        raise InputError(f"{where}: needs a non-empty 'prompt' string or a 'messages' list")
    meta = {k: v for k, v in row.items() if k not in ("id", "prompt", "messages")}
    return PromptItem(id=str(row.get("id", number)), conversation=conversation, meta=meta)


@contextmanager
def atomic_writer(path: str | Path) -> Iterator[IO[str]]:
    """Write to a temp file beside `path` and rename over it only when the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> None:
    with atomic_writer(path) as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
