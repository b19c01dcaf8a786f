"""From fix data (TRL columns) to trainer datasets, with prompts cut to fit.

SFT `messages` become prompt/completion pairs split at the final assistant turn, so the loss
falls on that reply alone whatever the model's chat template says. When an example is longer
than `max_length`, the prompt loses its oldest messages first (then the start of its oldest
remaining message); the reply is never cut. TRL itself only cuts the end, which would cut the
reply, so this happens here, and the count of cut examples is reported.
"""

from __future__ import annotations

from collections.abc import Sequence

from breakfix.errors import InputError
from breakfix.files import read_jsonl


def read_rows(path, kind: str) -> list[dict]:
    needed = ("messages",) if kind == "sft" else ("prompt", "chosen", "rejected")
    rows = []
    for number, row in read_jsonl(path):
        missing = [k for k in needed if not isinstance(row.get(k), list) or not row[k]]
        if missing:
            raise InputError(f"{path}:{number}: a {kind} example needs {', '.join(needed)} (missing {', '.join(missing)})")
        rows.append(row)
    return rows


def _length(tokenizer, prompt: list[dict], completion: list[dict]) -> int:
    return len(tokenizer.apply_chat_template([*prompt, *completion], tokenize=True, return_dict=True)["input_ids"])


def fit(tokenizer, prompt: list[dict], completion: list[dict], max_length: int) -> tuple[list[dict], bool]:
    """The prompt cut (oldest first) so prompt and completion fit in max_length."""
    prompt = [dict(m) for m in prompt]
    if _length(tokenizer, prompt, completion) <= max_length:
        return prompt, False
    while len(prompt) > 1 and _length(tokenizer, prompt, completion) > max_length:
        prompt.pop(0 if prompt[0]["role"] != "system" or len(prompt) < 3 else 1)
    while _length(tokenizer, prompt, completion) > max_length and len(prompt[0]["content"]) > 40:
        text = prompt[0]["content"]
        prompt[0]["content"] = "…" + text[len(text) // 4 :]
    if _length(tokenizer, prompt, completion) > max_length:
        raise InputError(f"an example's reply alone is longer than max_length={max_length}: raise it")
    return prompt, True


def sft_records(rows: Sequence[dict], tokenizer, max_length: int) -> tuple[list[dict], int]:
    records, cut = [], 0
    for row in rows:
        messages = [{"role": m["role"], "content": m["content"]} for m in row["messages"]]
        if messages[-1]["role"] != "assistant":
            raise InputError("an SFT example must end with the assistant's reply")
        prompt, trimmed = fit(tokenizer, messages[:-1], messages[-1:], max_length)
        records.append({"prompt": prompt, "completion": messages[-1:]})
        cut += trimmed
    return records, cut


def dpo_records(rows: Sequence[dict], tokenizer, max_length: int) -> tuple[list[dict], int]:
    records, cut = [], 0
    for row in rows:
        strip = lambda ms: [{"role": m["role"], "content": m["content"]} for m in ms]  # noqa: E731
        chosen, rejected = strip(row["chosen"]), strip(row["rejected"])
        longer = max((chosen, rejected), key=lambda c: _length(tokenizer, [], c))
        prompt, trimmed = fit(tokenizer, strip(row["prompt"]), longer, max_length)
        records.append({"prompt": prompt, "chosen": chosen, "rejected": rejected})
        cut += trimmed
    return records, cut
