"""The converter interface, its registry, and chains of converters."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from breakfix.registry import Registry

if TYPE_CHECKING:
    from breakfix.targets import Target


@runtime_checkable
class Converter(Protocol):
    """`convert` rewrites requests (batched: LLM-based converters ask their model once per
    batch); `invert` undoes it on a reply, or returns None when the reply does not look
    converted or the converter has no inverse. A converter may also set `readable = True` when
    its output keeps the request as written (a frame around it, not an encoding): curation then
    frames benign look-alikes the same way, so the framing alone does not read as "refuse"."""

    name: str
    invertible: bool

    def convert(self, texts: Sequence[str]) -> list[str]: ...

    def invert(self, text: str) -> str | None: ...


CONVERTERS: Registry[Callable[..., Converter]] = Registry("converter", "breakfix.converters")


def register_converter(name: str) -> Callable[[type], type]:
    def decorate(cls: type) -> type:
        cls.name = name
        return CONVERTERS.register(name)(cls)

    return decorate


def get_converter(name: str, attacker: Target | None = None) -> Converter:
    """An instance; LLM-based converters (those with `needs_attacker`) get the attacker model."""
    cls = CONVERTERS.get(name)
    return cls(attacker=attacker) if hasattr(cls, "needs_attacker") else cls()


_COMMON = frozenset("the a an and to of in is it you that for on with as are this be or your i can how what".split())


def english_score(text: str) -> float:
    """Share of words that are very common English words: enough to tell decoded text from noise."""
    words = re.findall(r"[a-z']+", text.lower())
    return sum(w in _COMMON for w in words) / len(words) if words else 0.0


def better_english(original: str, decoded: str) -> str | None:
    """The decoded text when it reads as English clearly better than the original."""
    return decoded if english_score(decoded) > english_score(original) + 0.05 else None


class Chain:
    """Converters applied in order; replies are undone in reverse order."""

    def __init__(self, names: Sequence[str], attacker: Target | None = None):
        self.names = tuple(names)
        self.converters = [get_converter(n, attacker) for n in self.names]

    @property
    def name(self) -> str:
        return "+".join(self.names) or "none"

    def convert(self, texts: Sequence[str]) -> list[str]:
        out = list(texts)
        for converter in self.converters:
            out = converter.convert(out)
        return out


def decode_chain(text: str, names: Sequence[str]) -> tuple[str, tuple[str, ...]]:
    """Undo a chain of converters on a reply, last first; returns the text and what was undone."""
    undone = []
    for name in reversed(names):
        cls = CONVERTERS.get(name)
        plain = cls().invert(text) if cls.invertible else None  # inverses never need a model
        if plain is not None:
            text = plain
            undone.append(name)
    return text, tuple(undone)
