"""Adversary personas: which techniques an adversary of a given skill uses. A persona is
configuration (resources/personas/*.yaml, or your own YAML file), never code."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from breakfix.config import load_yaml
from breakfix.errors import InputError


class Recipe(BaseModel):
    """One technique: an attack and the converter chain applied to the request first."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    attack: str
    converters: tuple[str, ...] = ()

    @property
    def technique(self) -> str:
        return "+".join((self.attack, *self.converters))


class Persona(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    recipes: tuple[Recipe, ...] = Field(min_length=1)
    template_sources: tuple[str, ...] = ()
    max_turns: int = Field(7, ge=1, le=20)
    pair_iterations: int = Field(3, ge=1, le=20)

    @model_validator(mode="after")
    def _known(self) -> Persona:
        from breakfix.attacks import ATTACKS
        from breakfix.converters import CONVERTERS

        for recipe in self.recipes:
            ATTACKS.get(recipe.attack)
            for name in recipe.converters:
                CONVERTERS.get(name)
        return self


def builtin_personas() -> list[str]:
    folder = resources.files("breakfix.resources").joinpath("personas")
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


TECHNIQUES = "techniques:"  # a persona string naming its techniques: techniques:crescendo,template+base64


def technique_persona(spec: str) -> Persona:
    """An ad-hoc persona from a comma-separated list of techniques, each an attack followed by
    its converters joined with "+" (`crescendo,pair,template+base64`), so a campaign can be
    chosen on the command line without a YAML file. Templates come from every source the
    built-in intermediate persona uses."""
    from breakfix.attacks import ATTACKS
    from breakfix.converters import CONVERTERS

    recipes = []
    for technique in (t.strip() for t in spec.split(",") if t.strip()):
        attack, *converters = (part.strip() for part in technique.split("+"))
        if ATTACKS.find(attack) is None:
            raise InputError(f"unknown technique {technique!r}: {attack!r} is not an attack; attacks: "
                             f"{', '.join(ATTACKS.names())} (each may add +converters: {', '.join(CONVERTERS.names())})")
        for name in converters:
            if CONVERTERS.find(name) is None:
                raise InputError(f"unknown technique {technique!r}: {name!r} is not a converter; converters: "
                                 f"{', '.join(CONVERTERS.names())}")
        recipes.append(Recipe(attack=attack, converters=tuple(converters)))
    if not recipes:
        raise InputError(f"no techniques given; attacks: {', '.join(ATTACKS.names())}")
    sources = load_persona("intermediate").template_sources
    return Persona(name="techniques", description=f"chosen techniques: {spec}",
                   recipes=tuple(dict.fromkeys(recipes)), template_sources=sources)


def load_persona(name_or_path: str) -> Persona:
    """A built-in persona by name, `techniques:LIST` (see `technique_persona`), or a persona YAML file."""
    if name_or_path.startswith(TECHNIQUES):
        return technique_persona(name_or_path.removeprefix(TECHNIQUES))
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise InputError(f"{path}: no such persona file")
        return load_yaml(path, Persona)  # type: ignore[return-value]
    if name_or_path not in builtin_personas():
        raise InputError(f"unknown persona {name_or_path!r}; built in: {', '.join(builtin_personas())}, or a YAML file")
    with resources.as_file(resources.files("breakfix.resources").joinpath("personas", f"{name_or_path}.yaml")) as p:
        return load_yaml(p, Persona)  # type: ignore[return-value]
