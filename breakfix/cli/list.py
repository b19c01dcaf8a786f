"""`breakfix list`: what can be chosen by name, one line each (as garak's --list_probes)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from enum import Enum
from functools import cache
from typing import Any

import typer


class Kind(str, Enum):
    attacks = "attacks"
    converters = "converters"
    judges = "judges"
    suites = "suites"
    personas = "personas"


@cache
def _described() -> dict[str, dict[str, str]]:
    from importlib import resources

    import yaml

    return yaml.safe_load(resources.files("breakfix.resources").joinpath("descriptions.yaml").read_text("utf-8"))


def _doc(item: Any) -> str:
    lines = (inspect.getdoc(item) or "").strip().splitlines()
    return lines[0] if lines else ""


def _registry(kind: str, registry: Any, describe: Callable[[str, Any], str] | None = None) -> list[tuple[str, str]]:
    """Every name in `registry`, plugins included, with its line: ours from descriptions.yaml,
    else what the item says about itself."""
    from importlib.metadata import entry_points

    for ep in entry_points(group=registry.group):
        registry.find(ep.name)
    ours = _described().get(kind, {})
    return [(name, ours.get(name) or (describe(name, registry.items[name]) if describe else "")
             or _doc(registry.items[name]) or "(no description)") for name in registry.names()]


def entries(kind: Kind) -> list[tuple[str, str]]:
    """(name, one-line description) for every item of one kind, sorted by name."""
    if kind is Kind.attacks:
        from breakfix.attacks import ATTACKS

        return _registry("attacks", ATTACKS)
    if kind is Kind.converters:
        from breakfix.converters import CONVERTERS

        return _registry("converters", CONVERTERS)
    if kind is Kind.judges:
        import breakfix.judges  # noqa: F401  (registers the built-in judges)
        from breakfix.judges.base import JUDGES

        return _registry("judges", JUDGES)
    if kind is Kind.suites:
        import breakfix.bench  # noqa: F401  (registers the built-in suites)
        from breakfix.bench.base import SUITES

        return _registry("suites", SUITES, lambda name, make: getattr(make, "description", "") or make().description)
    from breakfix.attacks.personas import builtin_personas, load_persona

    return [(name, load_persona(name).description) for name in builtin_personas()]


def list_(kind: Kind = typer.Argument(..., help="attacks, converters, judges, suites or personas.")) -> None:
    """List what can be chosen by name, one line each."""
    rows = entries(kind)
    width = max(len(name) for name, _ in rows)
    for name, line in rows:
        typer.echo(f"{name.ljust(width)}  {line}")
