"""One small registry for every extension point: a name -> factory map filled by a decorator,
extended by third-party packages through an entry-point group (`breakfix.<kind>s`)."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from breakfix.errors import InputError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, group: str):
        self.kind = kind
        self.group = group
        self.items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorate(item: T) -> T:
            self.items[name] = item
            return item

        return decorate

    def __contains__(self, name: str) -> bool:
        return name in self.items

    def find(self, name: str) -> T | None:
        """The registered item, loading a plugin's entry point on first use; None if unknown."""
        if name not in self.items:
            for ep in entry_points(group=self.group):
                if ep.name == name:
                    self.items[name] = ep.load()
        return self.items.get(name)

    def get(self, name: str) -> T:
        item = self.find(name)
        if item is None:
            raise InputError(f"unknown {self.kind} {name!r}; known: {', '.join(sorted(self.items))}")
        return item

    def names(self) -> list[str]:
        return sorted(self.items)
