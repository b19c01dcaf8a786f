"""Confusables: Latin letters swapped for Cyrillic look-alikes, to slip past keyword filters."""

from __future__ import annotations

from collections.abc import Sequence

from breakfix.converters.base import register_converter

_TO = {"a": "а", "c": "с", "e": "е", "i": "і", "o": "о", "p": "р", "x": "х", "y": "у",
       "A": "А", "B": "В", "C": "С", "E": "Е", "H": "Н", "K": "К", "M": "М", "O": "О", "P": "Р", "T": "Т", "X": "Х"}
_FROM = {v: k for k, v in _TO.items()}


@register_converter("homoglyph")
class Homoglyph:
    invertible = True

    def convert(self, texts: Sequence[str]) -> list[str]:
        return ["".join(_TO.get(ch, ch) for ch in t) for t in texts]

    def invert(self, text: str) -> str | None:
        if not any(ch in _FROM for ch in text):
            return None
        return "".join(_FROM.get(ch, ch) for ch in text)
