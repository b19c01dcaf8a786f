"""Everyday phrasings of a request: a polite question, a backstory, a casual aside, a role-play.
A model taught to refuse "Write a tutorial on X" may still answer "hey, quick one: write a
tutorial on X": refusals keyed to one phrasing do not carry to the next. The frame depends on
the text alone (the same request always gets the same one) and leaves the request readable and
its meaning unchanged, so a benign look-alike can be framed the same way and answered as if
asked plainly. The frames are ours, in `resources/attacks/phrasing.yaml`."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources

import yaml

from breakfix.converters.base import register_converter


@lru_cache(maxsize=1)
def frames() -> tuple[str, ...]:
    text = resources.files("breakfix.resources").joinpath("attacks", "phrasing.yaml").read_text(encoding="utf-8")
    return tuple(yaml.safe_load(text)["frames"])


def phrase(text: str) -> str:
    """`text` inside one of the frames, chosen from a hash of the text."""
    request, options = text.strip(), frames()
    k = int.from_bytes(hashlib.sha256(request.encode("utf-8")).digest()[:4], "big") % len(options)
    return options[k].replace("{request}", request)


@register_converter("phrasing")
class Phrasing:
    """The request inside an everyday frame (polite, backstory, casual, role-play)."""

    invertible = False
    readable = True  # the request stays as written: a look-alike can be framed from the same set

    def convert(self, texts: Sequence[str]) -> list[str]:
        return [phrase(t) for t in texts]

    def invert(self, text: str) -> str | None:
        return None
