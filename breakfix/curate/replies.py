"""Safe replies for fix data: a short refusal and a redirection suited to the harm category,
from texts we wrote (resources/fix/safe_replies.yaml), varied so the model learns to decline
and help safely rather than to repeat one string; and the ways of declining a harmless question
that contrastive pairs push down."""

from __future__ import annotations

import random
from functools import lru_cache
from importlib import resources

import yaml


@lru_cache(maxsize=1)
def _texts() -> dict:
    return yaml.safe_load(resources.files("breakfix.resources").joinpath("fix", "safe_replies.yaml").read_text(encoding="utf-8"))


def safe_reply(category: str | None, rng: random.Random) -> tuple[str, str]:
    """A reply and its provenance tag (`safe_reply:<opener>:<redirect>`)."""
    texts = _texts()
    redirects = texts["redirects"].get(category or "", texts["redirects"]["dangerous_advice"])
    i, j = rng.randrange(len(texts["openers"])), rng.randrange(len(redirects))
    return f"{texts['openers'][i]} {redirects[j]}", f"safe_reply:{i}:{category}:{j}"


def deflection(rng: random.Random) -> tuple[str, str]:
    """A capability disclaimer that declines a harmless question (never a training target, only
    the rejected side of a contrastive pair), and its provenance tag (`deflection:<k>`)."""
    texts = _texts()["deflections"]
    k = rng.randrange(len(texts))
    return texts[k], f"deflection:{k}"


def deflected(reply: tuple[str, str], deflect: random.Random, share: float) -> tuple[str, str]:
    """`reply` (one of our refusals and its tag), or for `share` of the calls one of our capability
    disclaimers instead, drawn from `deflect`: a stream of its own, so the rest of the fix data
    stays as it was whatever the share."""
    return deflection(deflect) if deflect.random() < share else reply
