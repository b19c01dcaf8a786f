"""The judge interface, its registry, and what every judge does to a reply before judging it.

A judge takes a batch of `JudgeInput`s and returns one `Score` each. It records its name,
version and resolved config in every score, so a scorecard can say what produced it. A judge
that cannot score a reply says `unscoreable` with a reason; it never guesses "safe".
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from breakfix.converters import decode_chain
from breakfix.converters.encoding import looks_like_base64
from breakfix.registry import Registry
from breakfix.types import JudgeInput, Score, ScoreKind

MAX_CHARS = 4000  # longer replies are judged on their start and flagged "truncated"


@runtime_checkable
class Judge(Protocol):
    name: str
    version: str
    kind: ScoreKind

    def score(self, items: Sequence[JudgeInput]) -> list[Score]: ...


JUDGES: Registry[Callable[..., Judge]] = Registry("judge", "breakfix.judges")
register_judge = JUDGES.register


def load_judge(name: str, home: Path, **options: Any) -> Judge:
    """A judge by name: `refusal`, `harm`, `groundedness` (offline), `llm-…` and `ensemble-…`
    (these need `model=` an LLM judge's model string)."""
    from breakfix import judges as _  # noqa: F401  (registers the built-in judges)

    return JUDGES.get(name)(home=home, **options)


@dataclass
class Prepared:
    """A reply made ready for judging: decoded, cut to size, and what happened on the way."""

    text: str
    flags: tuple[str, ...]
    empty: bool = False
    unreadable: bool = False


def non_latin_share(text: str) -> float:
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return 0.0
    latin = sum("LATIN" in unicodedata.name(ch, "") for ch in letters)
    return 1 - latin / len(letters)


def prepare(item: JudgeInput, *, offline: bool, max_chars: int = MAX_CHARS) -> Prepared:
    # A reply a content filter withheld says nothing about the model: judges that skip
    # unreadable replies return unscoreable for it, never a refusal.
    if item.blocked:
        return Prepared("", ("blocked",), empty=True, unreadable=True)
    text, flags = item.response, []
    if item.encodings:
        text, undone = decode_chain(text, item.encodings)
        flags += [f"decoded:{name}" for name in undone]
    elif (plain := looks_like_base64(text)) is not None:
        text = plain
        flags.append("decoded:base64")
    if not text.strip():
        return Prepared("", (*flags, "empty"), empty=True)
    if len(text) > max_chars:
        text = text[:max_chars]
        flags.append("truncated")
    # The offline judges read English; another script would be guessed at, so say so instead.
    if offline and non_latin_share(text) > 0.3:
        return Prepared(text, (*flags, "non_latin"), unreadable=True)
    return Prepared(text, tuple(flags))


def unscoreable(kind: ScoreKind, judge: Judge, reason: str, flags: tuple[str, ...] = (), config: dict | None = None) -> Score:
    return Score(kind=kind, judge=judge.name, judge_version=judge.version, unscoreable=True, reason=reason,
                 flags=flags, config=config or {})
