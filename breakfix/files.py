"""Reading user files with errors that name file and line, and writing files atomically."""

from __future__ import annotations

import json
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, TypeVar

from pydantic import BaseModel, ValidationError

from breakfix.errors import InputError
from breakfix.types import Conversation, Message

M = TypeVar("M", bound=BaseModel)

MAX_LINE_BYTES = 8 << 20  # one JSONL record over 8 MiB is a broken file, not a prompt


def read_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for each non-blank line; a bad line names file:line.

    Read as bytes and decoded line by line, so bytes that are not UTF-8 (or a line too long to
    be a record) are reported with their line instead of as a traceback."""
    path = Path(path)
    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or exc}") from None
    with handle:
        number = 0
        while raw := _read_line(handle, path, number + 1):
            number += 1
            line = _decode(raw, path, number)
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{number}: not valid JSON ({exc.msg} at column {exc.colno})") from None
            if not isinstance(value, dict):
                raise InputError(f"{path}:{number}: expected a JSON object, got {type(value).__name__}")
            yield number, value


def _read_line(handle: IO[bytes], path: Path, number: int) -> bytes:
    try:
        raw = handle.readline(MAX_LINE_BYTES + 1)
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_LINE_BYTES:
        raise InputError(f"{path}:{number}: line longer than {MAX_LINE_BYTES >> 20} MiB")
    return raw


def _decode(raw: bytes, path: Path, number: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}:{number}: not UTF-8 text (bad byte at column {exc.start + 1})") from None


class PromptItem(BaseModel):
    id: str
    conversation: Conversation
    meta: dict[str, Any] = {}


def read_prompts(path: str | Path) -> list[PromptItem]:
    """Prompts from JSONL (`prompt` or `messages`, optional `id`, other keys kept as meta) or
    from a `.txt` file with one prompt per line."""
    path = Path(path)
    if path.suffix == ".txt":
        numbered = [(n, PromptItem(id=str(n), conversation=[Message(role="user", content=t.strip())]))
                    for n, t in enumerate(_text_lines(path), start=1) if t.strip()]
    else:
        numbered = [(n, _prompt_item(path, n, row)) for n, row in read_jsonl(path)]
    if not numbered:
        raise InputError(f"{path}: no prompts")
    seen: dict[str, int] = {}
    for number, item in numbered:
        if item.id in seen:
            raise InputError(f"{path}:{number}: id {item.id!r} appears more than once (first on line {seen[item.id]})")
        seen[item.id] = number
    return [item for _, item in numbered]


def _text_lines(path: Path) -> list[str]:
    lines = []
    try:
        with open(path, "rb") as handle:
            while raw := _read_line(handle, path, len(lines) + 1):
                lines.append(_decode(raw, path, len(lines) + 1))
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or exc}") from None
    return lines


def read_records(path: str | Path, model: type[M], noun: str) -> list[M]:
    """Each line of a JSONL file as a `model` record; a row that is not one names file:line."""
    records = []
    for number, row in read_jsonl(path):
        try:
            records.append(model.model_validate(row))
        except ValidationError as exc:
            first = exc.errors()[0]
            raise InputError(f"{path}:{number}: not a {noun} ({'.'.join(map(str, first['loc']))}: {first['msg']})") from None
    return records


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
    if "id" in row and not isinstance(row["id"], str | int):
        raise InputError(f"{where}: 'id' must be a string or an integer, not {type(row['id']).__name__}")
    meta = {k: v for k, v in row.items() if k not in ("id", "prompt", "messages")}
    return PromptItem(id=str(row.get("id", number)), conversation=conversation, meta=meta)


# --- writing ------------------------------------------------------------------------------------


def _destination(path: Path) -> Path:
    """Where writing `path` really lands: through symlinks to their target, so a link stays a link."""
    real = Path(os.path.realpath(path))
    if real.is_dir():
        raise InputError(f"{path}: is a directory; give a file path")
    return real


def _is_special(real: Path) -> bool:
    """An existing file that is not a regular file (a device such as /dev/null, a FIFO): it is
    written in place, never replaced by a renamed temp file."""
    try:
        return not stat.S_ISREG(os.stat(real).st_mode)
    except FileNotFoundError:
        return False


def _new_file_mode(real: Path) -> int:
    """Keep an existing file's permissions; a new one gets what `open()` would give (0666 - umask)."""
    try:
        return stat.S_IMODE(os.stat(real).st_mode)
    except FileNotFoundError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


def check_writable(path: str | Path) -> None:
    """Fail now, before hours of generation, if `path` cannot be written (a directory, a
    read-only folder or file system). Probes by creating and removing a temp file beside it."""
    path = Path(path)
    real = _destination(path)
    if _is_special(real):
        if not os.access(real, os.W_OK):
            raise InputError(f"{path}: cannot write (permission denied)")
        return
    folder = real.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{real.name}.", dir=folder)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise InputError(f"{path}: cannot write ({exc.strerror or exc})") from None


@contextmanager
def atomic_writer(path: str | Path) -> Iterator[IO[str]]:
    """Write to a temp file beside `path` and rename over it only when the block succeeds.

    A symlink is written through (its target is replaced, the link kept); a device or FIFO is
    written in place; the file gets the permissions `open()` would give. Errors name `path`."""
    path = Path(path)
    real = _destination(path)
    try:
        if _is_special(real):
            with open(real, "w", encoding="utf-8") as handle:
                yield handle
            return
        real.parent.mkdir(parents=True, exist_ok=True)
        mode = _new_file_mode(real)
        fd, tmp = tempfile.mkstemp(prefix=f".{real.name}.", dir=real.parent)
    except OSError as exc:
        raise _write_error(path, exc) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, real)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.filename in (None, tmp, str(real)):
            raise _write_error(path, exc) from None
        raise


def _write_error(path: Path, exc: OSError) -> InputError:
    return InputError(f"{path}: cannot write ({exc.strerror or exc})")


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> None:
    with atomic_writer(path) as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
