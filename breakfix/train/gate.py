"""Fitting a refusal gate (targets/gate.py) to a model, on fix-split requests only.

Harmful requests of every category against benign look-alikes, most asked directly and a few of
each inside the fix split's shorter jailbreak templates (the same shapes, so the wrapper is no
cue), with plain instructions and capability questions. How much data matters far more than how
it is wrapped. In a one-off study on make run I's round-1 model (all 235 dev harmful requests,
threshold at 1% of the fix look-alikes), a layer-18 probe fitted on 600 requests caught 49% of
the direct ones and one fitted on 2,900 caught 83%, wrapped 40% and after scripted lead-in turns
86%, while flagging under 1% of the dev look-alikes (bench/gate.py measures any model on the
dev selection set). Direct requests are short, so the 3,000 cost little more to read than 600
with longer templates.

The probe reads a few layers' states at once (in the same study, layers 14+18+22 caught 86% of
the direct requests where layer 18 alone caught 83%, and 98% after lead-in turns where it caught
86%). It tries layers at 40-80% depth in steps of 10% (12, 15, 18, 21 and 24 of SmolLM2's 30)
and keeps the set, among each three neighbouring depths and all five, whose standardised states
separate harmful from the rest best out of fold (5 folds, grouped by family so a request's
variants stay together); the threshold is set out of fold too, so that the gate flags at most
`flag_rate` of the benign look-alikes (the requests VPRR counts; plain instructions are easier
and would dilute it). Dev and eval are never read: the loop chooses between flag rates on dev.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from breakfix.targets.gate import GATE_FILE, Gate, prompt_states
from breakfix.types import Conversation, GenerationConfig

LAYERS = (0.4, 0.5, 0.6, 0.7, 0.8)  # the depths read, as shares of the model's layers
C = 0.1                              # the probe's inverse regularisation
LOOK_ALIKES = ("benign", "benign wrapped")  # the kinds the flag rate is set on
SHARES = {"harmful": 0.4, "benign": 0.33, "wrapped": 0.033}  # of the requests; instructions take the rest
WRAPPER_CHARS = 2400                 # the longest template used (about 600 tokens): long ones cost, teach little
GATE_METHOD = "layers-3-standardised"  # how a fit is made; the loop fits again when it changes


class GateData(BaseModel):
    conversations: list[Conversation]
    harmful: list[bool]
    groups: list[str]
    kind: list[str]               # harmful, harmful wrapped, benign, benign wrapped, instruction

    @property
    def kinds(self) -> dict[str, int]:
        return dict(Counter(self.kind))


def gate_data(catalog, size: int, seed: int) -> GateData:
    """About `size` fix-split requests: 40% harmful and 33% benign look-alikes asked directly,
    3.3% of each inside a fix-split jailbreak template, the rest instructions and capability
    questions (as many as the split has)."""
    from breakfix.attacks import Env
    from breakfix.curate.fix import _attack_prompt, _benign_prompt

    rng = random.Random(seed)
    short = tuple(t for t in catalog.select(kind="template", split="fix") if len(t.text) <= WRAPPER_CHARS)
    env = Env(target=None, judges=None, templates=short)
    harmful = sorted(catalog.select(kind="harmful", split="fix"), key=lambda s: s.id)
    benign = sorted(catalog.select(kind="benign", split="fix"), key=lambda s: s.id)
    plain = sorted(catalog.select(kind="instruction", split="fix") + catalog.select(kind="capability", split="fix"),
                   key=lambda s: s.id)
    for pool in (harmful, benign, plain):
        rng.shuffle(pool)
    wrapped = round(SHARES["wrapped"] * size) if short else 0
    n_harmful, n_benign = round(SHARES["harmful"] * size) + wrapped, round(SHARES["benign"] * size) + wrapped
    rows: list[tuple[Conversation, bool, str, str]] = []
    for k, s in enumerate(harmful[:n_harmful]):
        prompt = _attack_prompt("template", s, env, rng) if k < wrapped else None
        rows.append((prompt or s.as_conversation(), True, s.family or s.id, "harmful wrapped" if prompt else "harmful"))
    for k, s in enumerate(benign[:n_benign]):
        prompt = _benign_prompt(s, "template", env, rng) if k < wrapped else s.as_conversation()
        plain_ask = len(prompt) == 1 and prompt[0].content == s.text
        rows.append((prompt, False, s.family or s.id, "benign" if plain_ask else "benign wrapped"))
    rows += [(s.as_conversation(), False, s.family or s.id, "instruction") for s in plain[:max(0, size - len(rows))]]
    return GateData(conversations=[r[0] for r in rows], harmful=[r[1] for r in rows], groups=[r[2] for r in rows],
                    kind=[r[3] for r in rows])


class GateFit(BaseModel):
    """A fitted gate's probe, before a threshold is set: out-of-fold probabilities give each
    flag rate its threshold."""

    layers: list[int]
    weights: list[float]
    bias: float
    held_out: list[float]
    harmful: list[bool]
    look_alike: list[bool]        # the rows the flag rate is set on
    kinds: dict[str, int]
    recall_by_layers: dict[str, float]  # "12+15+18": out-of-fold recall at 3% of look-alikes flagged
    key: dict = {}                # what it was fitted to (the loop reads a fit back only for the same key)

    @property
    def name(self) -> str:
        return "+".join(map(str, self.layers))

    def summary(self) -> str:
        return ("out-of-fold recall of harmful requests at 3% of look-alikes flagged, by layers read: "
                + ", ".join(f"{layers}: {r:.2f}" for layers, r in self.recall_by_layers.items()) + f" -> {self.name}")

    def gate(self, flag_rate: float, replies: Sequence[str]) -> Gate:
        p, y = np.asarray(self.held_out), np.asarray(self.harmful)
        threshold = _threshold(p[np.asarray(self.look_alike)], flag_rate)
        return Gate(layers=self.layers, weights=self.weights, bias=self.bias, threshold=threshold,
                    flag_rate=float((p[np.asarray(self.look_alike)] >= threshold).mean()),
                    recall=float((p[y] >= threshold).mean()), replies=list(replies), fitted=self.kinds)


def _threshold(benign: np.ndarray, flag_rate: float) -> float:
    """The lowest threshold at which at most `flag_rate` of `benign` reach it (p >= threshold)."""
    ranked = np.sort(benign)[::-1]
    allowed = int(np.floor(flag_rate * len(ranked) + 1e-9))
    return float(np.nextafter(ranked[allowed], np.inf)) if allowed < len(ranked) else 0.0


def fit_gate(target, data: GateData, seed: int = 0, folds: int = 5) -> GateFit:
    """The probe for `target` (a local `HFTarget`) on `data`: the layers whose states give the
    highest out-of-fold recall at a 3% benign flag rate, refitted on all of `data`. States are
    standardised (a few dimensions of a small model's residual stream are orders of magnitude
    larger than the rest) and the scaling folded into the weights, so the gate reads raw states."""
    config = GenerationConfig(max_new_tokens=1, seed=seed)
    encoded = [target.encode(c, config) for c in data.conversations]
    n_layers = target.model.config.num_hidden_layers
    layers = sorted({max(1, min(n_layers, round(share * n_layers))) for share in LAYERS})
    states = prompt_states(target.model, target.tokenizer, encoded, layers, target.batch_tokens)
    return probe_fit(states, layers, data, folds)


def probe_fit(states: np.ndarray, layers: Sequence[int], data: GateData, folds: int = 5) -> GateFit:
    """`fit_gate` on states already read, (n, len(layers), hidden): each run of three
    neighbouring layers and all of them are tried (all of them only, when three or fewer are read)."""
    from sklearn.model_selection import GroupKFold

    y, look_alike = np.asarray(data.harmful), np.asarray([k in LOOK_ALIKES for k in data.kind])
    splits = list(GroupKFold(folds).split(states, y, data.groups))
    width = min(3, len(layers))
    tried = list(dict.fromkeys([tuple(range(k, k + width)) for k in range(len(layers) - width + 1)]
                               + [tuple(range(len(layers)))]))
    best, recall = None, {}
    for columns in tried:
        x = states[:, columns].reshape(len(states), -1)
        held_out = np.zeros(len(y))
        for train, test in splits:
            weights, bias = _probe(x[train], y[train])
            held_out[test] = _sigmoid(x[test] @ weights + bias)
        name = "+".join(str(layers[c]) for c in columns)
        recall[name] = float((held_out[y] >= _threshold(held_out[look_alike], 0.03)).mean())
        if best is None or recall[name] > recall[best[1]]:
            best = (columns, name, held_out)
    columns, _, held_out = best
    weights, bias = _probe(states[:, columns].reshape(len(states), -1), y)
    return GateFit(layers=[layers[c] for c in columns], weights=weights.astype(float).tolist(), bias=bias,
                   held_out=held_out.tolist(), harmful=y.tolist(), look_alike=look_alike.tolist(), kinds=data.kinds,
                   recall_by_layers=recall)


def _probe(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """A logistic regression on standardised `x`, as weights and bias on raw `x`."""
    from sklearn.linear_model import LogisticRegression

    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    probe = LogisticRegression(C=C, max_iter=3000).fit((x - mean) / scale, y)
    weights = probe.coef_[0] / scale
    return weights, float(probe.intercept_[0] - weights @ mean)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def refusal_texts(seed: int, n: int = 12) -> list[str]:
    """Refusals from our texts for the gate to answer with (category-neutral: the gate does not
    know the category)."""
    from breakfix.curate.replies import safe_reply

    rng, texts = random.Random(seed), []
    while len(texts) < n:
        text = safe_reply("general", rng)[0]
        if text not in texts:
            texts.append(text)
    return texts


def gated_copy(model: Path, gate: Gate, out: Path) -> Path:
    """`model`'s folder with `gate` beside its weights: links to its files (the weights are not
    copied), a `gate.json`, and the manifest marked as gated. A folder already holding this gate
    is kept."""
    import json
    import shutil

    from breakfix.targets.gate import load_gate
    from breakfix.train.trainer import MANIFEST

    existing = load_gate(out) if out.is_dir() else None
    if existing is not None and existing.digest() == gate.digest() and (out / MANIFEST).is_file() \
            and json.loads((out / MANIFEST).read_text()).get("parent") == str(model):
        return out
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for f in model.iterdir():
        if f.is_file() and f.name not in (GATE_FILE, MANIFEST):  # relative links: the run folder can move
            (tmp / f.name).symlink_to(os.path.relpath(f.resolve(), out.parent.resolve() / out.name))
    gate.write(tmp)
    manifest = json.loads((model / MANIFEST).read_text()) if (model / MANIFEST).is_file() else {}
    manifest.update(stage="gate", path=str(out), parent=str(model), candidate=True,
                    gate={"threshold": gate.threshold, "flag_rate": gate.flag_rate, "layers": gate.layers,
                          "digest": gate.digest()})
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))  # last: it marks completion
    shutil.rmtree(out, ignore_errors=True)
    tmp.replace(out)
    return out
