"""A refusal gate: the model's own reading of a request, turned into a refusal where it reads harmful.

A linear probe on SmolLM2-135M's hidden states at the last prompt token tells harmful requests
from their benign look-alikes better than the model's behaviour does (bench/gate.py prints the
probe's out-of-fold figures per set of layers and the gated model's on dev), while a round of
SFT and DPO at this size raises refusal of both about alike: the model represents the difference,
training does not make it act on it. The gate acts on it: a logistic regression over a few
layers' states (fitted by `breakfix.train.gate` on fix-split requests), and, for a request it
puts at or above its threshold, one of our refusal texts instead of a generated reply. It is
conditional activation steering in its simplest form (Lee et al., arXiv 2409.05907: condition on
a direction in the prompt's state, then refuse).

It lives beside the weights as `gate.json` and `HFTarget` applies it, so every breakfix stage
that loads the model in process (eval, red team, chat, serve) sees the gated model. A runtime
that loads only the weights does not, nor does a recipe's `serve:` command (vLLM, Ollama): the
gate is one dot product over a few layers' states, and its file says how to apply it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydantic import BaseModel, model_validator

GATE_FILE = "gate.json"


class Gate(BaseModel):
    """Refuse when sigmoid(weights · h + bias) >= threshold, h the hidden states after decoder
    layers `layers` (hidden_states[layer] in transformers) at the prompt's last token, one after
    another."""

    layers: list[int]
    weights: list[float]          # len(layers) x hidden size
    bias: float
    threshold: float
    flag_rate: float              # share of the fix split's benign look-alikes it flagged out of fold
    recall: float                 # share of the fix split's harmful requests it flagged out of fold
    replies: list[str]            # our refusal texts, one chosen per request by its hash
    fitted: dict[str, int] = {}   # requests of each kind it was fitted on
    how: str = ("p = 1 / (1 + exp(-(weights . h + bias))), h = hidden_states[l][last prompt token] of the "
                "chat-templated conversation for each l in layers, concatenated in that order; refuse with one of "
                "`replies` when p >= threshold")

    @model_validator(mode="before")
    @classmethod
    def _one_layer(cls, data):  # a gate.json written before gates read several layers
        if isinstance(data, dict) and "layer" in data and "layers" not in data:
            data = {**{k: v for k, v in data.items() if k != "layer"}, "layers": [data["layer"]]}
        return data

    def probability(self, states: np.ndarray) -> np.ndarray:
        """p for each request, from states of shape (n, len(layers), hidden) or (n, len(layers) x hidden)."""
        flat = states.reshape(len(states), len(self.weights))
        return 1.0 / (1.0 + np.exp(-(flat @ np.asarray(self.weights, dtype=np.float32) + self.bias)))

    def summary(self) -> str:
        return (f"threshold {self.threshold:.3f}; out of fold on fix it flags {100 * self.recall:.0f}% of harmful "
                f"requests and {100 * self.flag_rate:.1f}% of benign look-alikes")

    def reply(self, prompt_ids: Sequence[int]) -> str:
        digest = hashlib.sha256(np.asarray(prompt_ids, dtype=np.int64).tobytes()).digest()
        return self.replies[int.from_bytes(digest[:4], "big") % len(self.replies)]

    def digest(self) -> str:
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:16]

    def write(self, folder: Path) -> None:
        (folder / GATE_FILE).write_text(self.model_dump_json(indent=1), encoding="utf-8")


def load_gate(folder: str | Path) -> Gate | None:
    path = Path(folder) / GATE_FILE
    return Gate.model_validate(json.loads(path.read_text(encoding="utf-8"))) if path.is_file() else None


def prompt_states(model, tokenizer, encoded: Sequence[Sequence[int]], layers: Sequence[int],
                  batch_tokens: int = 16384) -> np.ndarray:
    """(n, len(layers), hidden) states at each prompt's last token, in left-padded batches
    (longest first, rows x length within `batch_tokens`)."""
    import torch

    out = np.zeros((len(encoded), len(layers), model.config.hidden_size), dtype=np.float32)
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
    start = 0
    while start < len(order):
        rows = max(1, min(64, batch_tokens // max(1, len(encoded[order[start]]))))
        batch = order[start:start + rows]
        start += rows
        enc = tokenizer.pad({"input_ids": [list(encoded[i]) for i in batch]}, padding_side="left",
                            return_tensors="pt").to(model.device)
        with torch.inference_mode():  # left-padded: every row's last position is its last prompt token
            hidden = model(**enc, output_hidden_states=True, logits_to_keep=1).hidden_states
        for k, i in enumerate(batch):
            out[i] = torch.stack([hidden[layer][k, -1] for layer in layers]).float().cpu().numpy()
    return out
