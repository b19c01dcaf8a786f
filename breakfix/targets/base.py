"""The one interface every model sits behind, and how a model string becomes a target.

A model is named by one string everywhere:

- `smollm2-135m`: the embedded model, prepared from its pinned wheel on first use;
- `hf:PATH` (or a bare directory path): any local HF causal-LM with a chat template;
  `hf:ORG/NAME` loads from the hub only when `BREAKFIX_ONLINE=1`;
- `openai:MODEL@URL`: any OpenAI-compatible `/v1` endpoint (vLLM, Ollama, llama.cpp, hosted);
- `mock:BEHAVIOUR`: scripted replies for fast tests (`echo`, `refuse`, `comply`).

Third-party packages add schemes through the `breakfix.targets` entry-point group: the entry
point's name is the scheme and it loads a factory `(rest_of_spec, **options) -> Target`.
"""

from __future__ import annotations

import json

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from breakfix.errors import TargetError
from breakfix.registry import Registry
from breakfix.types import Conversation, GenerationConfig, Message, Reply


@runtime_checkable
class Target(Protocol):
    """A chat model. `chat` answers a batch of conversations, one reply each, in order.

    Batching is the unit of speed on both backends (padded batches locally, concurrent
    requests remotely), so callers hand over as many conversations as they have.
    """

    name: str
    fingerprint: str  # identifies the weights (a hash, or the endpoint): keys the reply cache

    def chat(self, conversations: Sequence[Conversation], config: GenerationConfig) -> list[Reply]:
        ...


SCHEMES: Registry[Callable[..., Target]] = Registry("model scheme", "breakfix.targets")
register_target = SCHEMES.register  # factory(rest, **options) for model strings `scheme:rest`


def load_target(spec: str, **options: Any) -> Target:
    """Turn a model string into a ready target. Raises `TargetError` with the accepted forms."""
    from breakfix import targets as _  # noqa: F401  (registers the built-in schemes)

    scheme, _, rest = spec.partition(":")
    if (factory := SCHEMES.find(scheme)) is not None:
        return factory(rest, **options)
    if not rest and spec in _ALIASES:
        return _ALIASES[spec](**options)
    if not rest and Path(spec).expanduser().is_dir():
        return SCHEMES.get("hf")(spec, **options)
    raise TargetError(
        f"unknown model {spec!r}: use {', '.join(_ALIASES)}, hf:PATH, openai:MODEL@URL, "
        "mock:echo|refuse|comply, or an existing model directory"
    )


MANIFESTS = ("breakfix-model.json", "breakfix-checkpoint.json")  # the embedded model's, a trained checkpoint's


def recorded_manifest(folder: str | Path) -> dict[str, Any] | None:
    """The manifest breakfix wrote beside a model it prepared or trained (with its weights
    hash), or None for any other folder."""
    for name in MANIFESTS:
        path = Path(folder) / name
        if path.is_file():
            return json.loads(path.read_text())
    return None


def local_path(spec: str) -> Path:
    """The directory of a local model string, for training (remote models cannot be trained here)."""
    if spec in _ALIASES:
        from breakfix.assets import ensure_embedded_model
        from breakfix.paths import home

        return ensure_embedded_model(home())
    path = Path(spec.removeprefix("hf:")).expanduser()
    if not path.is_dir():
        raise TargetError(f"{spec}: training needs a local model directory (smollm2-135m, hf:PATH or a path)")
    return path


def _embedded(**options: Any) -> Target:
    from breakfix.assets import EMBEDDED_MODEL, ensure_embedded_model
    from breakfix.paths import home

    path = ensure_embedded_model(home())
    return SCHEMES.get("hf")(str(path), name=options.pop("name", EMBEDDED_MODEL), **options)


_ALIASES: dict[str, Callable[..., Target]] = {"smollm2-135m": _embedded}


# --- helpers shared by the backends -------------------------------------------------------------


def with_system(conversation: Conversation, config: GenerationConfig) -> Conversation:
    """Prepend the configured system prompt unless the conversation brings its own."""
    if config.system_prompt is None or (conversation and conversation[0].role == "system"):
        return list(conversation)
    return [Message(role="system", content=config.system_prompt), *conversation]


def cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """Cut `text` before the earliest stop string; say whether one was found."""
    cuts = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return (text[: min(cuts)], True) if cuts else (text, False)


def check_conversation(conversation: Conversation) -> None:
    if not conversation or conversation[-1].role != "user":
        raise TargetError("a conversation must end with a user message")


BLOCKED = "blocked by the provider's content filter"


def blocked(detail: str) -> Reply:
    """A reply a provider's content filter withheld: finish reason "blocked", as PyRIT records it.
    It also carries `error`, so no caller stores it as the model's answer or scores it as a
    refusal; `is_blocked` tells it from a failure, so reports can count the platform's refusals
    apart from the model's."""
    return Reply(finish_reason="blocked", error=f"{BLOCKED} ({detail})")


def is_blocked(reply: Reply) -> bool:
    """True for a filtered reply, including one rebuilt from an older record (an error reply
    whose message names the filter)."""
    return reply.finish_reason == "blocked" or (reply.error is not None and reply.error.startswith(BLOCKED))
