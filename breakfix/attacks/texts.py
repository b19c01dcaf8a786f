"""The texts our attacks are made of (resources/attacks/*.yaml), written by us, read once."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import yaml
from pydantic import BaseModel, ConfigDict

from breakfix.types import TEMPLATE_SLOT


class Shot(BaseModel):
    question: str
    answer: str


class Step(BaseModel):
    ask: str
    backoff: str


class AttackTexts(BaseModel):
    model_config = ConfigDict(frozen=True)

    refusal_suppression: tuple[str, ...]
    prefix_injection: tuple[str, ...]
    roleplay: tuple[str, ...]
    fiction: tuple[str, ...]
    many_shot: tuple[Shot, ...]
    crescendo: dict[str, tuple[Step, ...]]


def fill(template: str, payload: str) -> str:
    """Put the request into a text's `{{ prompt }}` slot."""
    return template.replace(TEMPLATE_SLOT, payload)


@lru_cache(maxsize=1)
def load_texts() -> AttackTexts:
    base = resources.files("breakfix.resources").joinpath("attacks")
    single = yaml.safe_load(base.joinpath("single_turn.yaml").read_text(encoding="utf-8"))
    plans = yaml.safe_load(base.joinpath("crescendo.yaml").read_text(encoding="utf-8"))
    single.pop("templates")  # the templates are a data source in the catalog, split like any other
    return AttackTexts(**single, crescendo=plans)
