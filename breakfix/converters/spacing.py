"""Spacing tricks: letters spread apart, and zero-width characters hidden between them."""

from __future__ import annotations

import re
from collections.abc import Sequence

from breakfix.converters.base import register_converter

_ZERO_WIDTH = "\u200b"
_SPREAD = re.compile(r"(?:\b\w (?=\w\b)){3,}\w\b")


@register_converter("spacing")
class Spacing:
    invertible = True

    def convert(self, texts: Sequence[str]) -> list[str]:
        return [" / ".join(" ".join(word) for word in t.split()) for t in texts]

    def invert(self, text: str) -> str | None:
        if not _SPREAD.search(text):
            return None
        words = [w.replace(" ", "") for w in text.split(" / ")]
        return " ".join(words)


@register_converter("zero_width")
class ZeroWidth:
    invertible = True

    def convert(self, texts: Sequence[str]) -> list[str]:
        return [_ZERO_WIDTH.join(t) for t in texts]

    def invert(self, text: str) -> str | None:
        return text.replace(_ZERO_WIDTH, "") if _ZERO_WIDTH in text else None
