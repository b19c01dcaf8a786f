"""A scripted target for fast tests: no model, deterministic, records every call."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence

from breakfix.targets.base import check_conversation, cut_at_stop, register_target
from breakfix.types import Conversation, GenerationConfig, Reply

REFUSAL = "I can't help with that. If you're working on something related, I'm glad to help in a safer way."
COMPLIANCE = "Sure, here is exactly what you asked for, step by step."

_BEHAVIOURS = {
    "echo": lambda conv: conv[-1].content,
    "refuse": lambda conv: REFUSAL,
    "comply": lambda conv: COMPLIANCE,
}


class MockTarget:
    """Answers from a queue of scripted replies, then from a fixed behaviour.

    `enqueue` takes strings, `Reply` objects, or exceptions (raised from `chat`, to test how
    callers handle a failing target). `batches` records the size of every `chat` call.
    """

    def __init__(self, behaviour: str = "echo", *, delay_s: float = 0.0, name: str | None = None):
        if behaviour not in _BEHAVIOURS:
            from breakfix.errors import TargetError

            raise TargetError(f"unknown mock behaviour {behaviour!r}: use {', '.join(_BEHAVIOURS)}")
        self.name = name or f"mock:{behaviour}"
        self.fingerprint = self.name
        self.behaviour = behaviour
        self.delay_s = delay_s
        self.batches: list[int] = []
        self.seen: list[Conversation] = []
        self._queue: deque[str | Reply | Exception] = deque()

    def enqueue(self, *replies: str | Reply | Exception) -> None:
        self._queue.extend(replies)

    def chat(self, conversations: Sequence[Conversation], config: GenerationConfig) -> list[Reply]:
        self.batches.append(len(conversations))
        if self.delay_s:
            time.sleep(self.delay_s)
        replies = []
        for conv in conversations:
            check_conversation(conv)
            self.seen.append(list(conv))
            scripted = self._queue.popleft() if self._queue else _BEHAVIOURS[self.behaviour](conv)
            if isinstance(scripted, Exception):
                raise scripted
            if isinstance(scripted, str):
                text, stopped = cut_at_stop(scripted, config.stop)
                words = text.split()
                finish = "length" if len(words) > config.max_new_tokens and not stopped else "stop"
                text = " ".join(words[: config.max_new_tokens]) if finish == "length" else text
                scripted = Reply(content=text, finish_reason=finish,
                                 prompt_tokens=sum(len(m.content.split()) for m in conv),
                                 completion_tokens=min(len(words), config.max_new_tokens))
            replies.append(scripted)
        return replies


@register_target("mock")
def _factory(rest: str, **options) -> MockTarget:
    return MockTarget(rest or "echo", **options)
