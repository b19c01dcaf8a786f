"""Reversed text, with an instruction to read it backwards."""

from __future__ import annotations

from collections.abc import Sequence

from breakfix.converters.base import better_english, register_converter


@register_converter("reverse")
class Reverse:
    invertible = True

    def convert(self, texts: Sequence[str]) -> list[str]:
        return [f"Read this backwards, then answer it:\n{t[::-1]}" for t in texts]

    def invert(self, text: str) -> str | None:
        return better_english(text, text[::-1])
