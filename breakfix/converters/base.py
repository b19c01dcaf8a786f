"""The converter interface and registry."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from breakfix.registry import Registry


@runtime_checkable
class Converter(Protocol):
    """`convert` rewrites a request; `invert` undoes it on a reply, or returns None when the
    text does not look converted (or the converter has no inverse)."""

    name: str
    invertible: bool

    def convert(self, text: str) -> str: ...

    def invert(self, text: str) -> str | None: ...


CONVERTERS: Registry[Callable[[], Converter]] = Registry("converter", "breakfix.converters")


def register_converter(name: str) -> Callable[[type], type]:
    def decorate(cls: type) -> type:
        cls.name = name
        return CONVERTERS.register(name)(cls)

    return decorate


def get_converter(name: str) -> Converter:
    return CONVERTERS.get(name)()


def decode_chain(text: str, names: Sequence[str]) -> tuple[str, tuple[str, ...]]:
    """Undo a chain of converters on a reply, last first; returns the text and what was undone."""
    undone = []
    for name in reversed(names):
        converter = get_converter(name)
        plain = converter.invert(text) if converter.invertible else None
        if plain is not None:
            text = plain
            undone.append(name)
    return text, tuple(undone)
