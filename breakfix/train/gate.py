"""Fitting a refusal gate (targets/gate.py) to a model, on fix-split requests only.

Harmful requests of every category, asked directly and inside the fix split's jailbreak templates,
against benign look-alikes asked the same two ways (the same shapes, so the wrapper is no cue),
plain instructions and capability questions. The layer is the one whose states separate them
best out of fold (5 folds, grouped by family so a request's variants stay together); the
threshold is set out of fold too, so that the gate flags at most `flag_rate` of the benign
look-alikes (the requests VPRR counts; plain instructions are easier and would dilute it).
Dev and eval are never read: the loop chooses between flag rates on dev.
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

LAYERS = (0.4, 0.5, 0.6, 0.7, 0.8)  # the depths tried, as shares of the model's layers
C = 0.1                              # the probe's inverse regularisation
LOOK_ALIKES = ("benign", "benign wrapped")  # the kinds the flag rate is set on


class GateData(BaseModel):
    conversations: list[Conversation]
    harmful: list[bool]
    groups: list[str]
    kind: list[str]               # harmful, harmful wrapped, benign, benign wrapped, instruction

    @property
    def kinds(self) -> dict[str, int]:
        return dict(Counter(self.kind))


def gate_data(catalog, size: int, seed: int) -> GateData:
    """About `size` fix-split requests: 40% harmful (a quarter of them wrapped), 40% benign
    look-alikes (a quarter wrapped alike), 20% instructions and capability questions."""
    from breakfix.curate.fix import _attack_prompt, _benign_prompt, _offline_env

    rng, env = random.Random(seed), _offline_env(catalog)
    harmful = sorted(catalog.select(kind="harmful", split="fix"), key=lambda s: s.id)
    benign = sorted(catalog.select(kind="benign", split="fix"), key=lambda s: s.id)
    plain = sorted(catalog.select(kind="instruction", split="fix") + catalog.select(kind="capability", split="fix"),
                   key=lambda s: s.id)
    for pool in (harmful, benign, plain):
        rng.shuffle(pool)
    side, wrapped = round(0.4 * size), round(0.1 * size)
    rows: list[tuple[Conversation, bool, str, str]] = []
    for k, s in enumerate(harmful[:side]):
        prompt = _attack_prompt("template", s, env, rng) if k < wrapped else None
        rows.append((prompt or s.as_conversation(), True, s.family or s.id, "harmful wrapped" if prompt else "harmful"))
    for k, s in enumerate(benign[:side]):
        prompt = _benign_prompt(s, "template", env, rng) if k < wrapped else s.as_conversation()
        plain_ask = len(prompt) == 1 and prompt[0].content == s.text
        rows.append((prompt, False, s.family or s.id, "benign" if plain_ask else "benign wrapped"))
    rows += [(s.as_conversation(), False, s.family or s.id, "instruction") for s in plain[:size - 2 * side]]
    return GateData(conversations=[r[0] for r in rows], harmful=[r[1] for r in rows], groups=[r[2] for r in rows],
                    kind=[r[3] for r in rows])


class GateFit(BaseModel):
    """A fitted gate's probe, before a threshold is set: out-of-fold probabilities give each
    flag rate its threshold."""

    layer: int
    weights: list[float]
    bias: float
    held_out: list[float]
    harmful: list[bool]
    look_alike: list[bool]        # the rows the flag rate is set on
    kinds: dict[str, int]
    recall_by_layer: dict[int, float]
    key: dict = {}                # what it was fitted to (the loop reads a fit back only for the same key)

    def gate(self, flag_rate: float, replies: Sequence[str]) -> Gate:
        p, y = np.asarray(self.held_out), np.asarray(self.harmful)
        threshold = _threshold(p[np.asarray(self.look_alike)], flag_rate)
        return Gate(layer=self.layer, weights=self.weights, bias=self.bias, threshold=threshold,
                    flag_rate=float((p[np.asarray(self.look_alike)] >= threshold).mean()),
                    recall=float((p[y] >= threshold).mean()), replies=list(replies), fitted=self.kinds)


def _threshold(benign: np.ndarray, flag_rate: float) -> float:
    """The lowest threshold at which at most `flag_rate` of `benign` reach it (p >= threshold)."""
    ranked = np.sort(benign)[::-1]
    allowed = int(np.floor(flag_rate * len(ranked) + 1e-9))
    return float(np.nextafter(ranked[allowed], np.inf)) if allowed < len(ranked) else 0.0


def fit_gate(target, data: GateData, seed: int = 0, folds: int = 5) -> GateFit:
    """The probe for `target` (a local `HFTarget`) on `data`: the layer whose out-of-fold recall
    at a 3% benign flag rate is highest, refitted on all of `data`."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold

    config = GenerationConfig(max_new_tokens=1, seed=seed)
    encoded = [target.encode(c, config) for c in data.conversations]
    n_layers = target.model.config.num_hidden_layers
    layers = sorted({max(1, min(n_layers, round(share * n_layers))) for share in LAYERS})
    states = prompt_states(target.model, target.tokenizer, encoded, layers, target.batch_tokens)
    y, look_alike = np.asarray(data.harmful), np.asarray([k in LOOK_ALIKES for k in data.kind])
    splits = list(GroupKFold(folds).split(states, y, data.groups))
    best, recall = None, {}
    for j, layer in enumerate(layers):
        held_out = np.zeros(len(y))
        for train, test in splits:
            held_out[test] = LogisticRegression(C=C, max_iter=3000).fit(states[train, j], y[train]).predict_proba(
                states[test, j])[:, 1]
        recall[layer] = float((held_out[y] >= _threshold(held_out[look_alike], 0.03)).mean())
        if best is None or recall[layer] > recall[best[1]]:
            best = (j, layer, held_out)
    j, layer, held_out = best
    probe = LogisticRegression(C=C, max_iter=3000).fit(states[:, j], y)
    return GateFit(layer=layer, weights=probe.coef_[0].astype(float).tolist(), bias=float(probe.intercept_[0]),
                   held_out=held_out.tolist(), harmful=y.tolist(), look_alike=look_alike.tolist(), kinds=data.kinds,
                   recall_by_layer=recall)


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
                    gate={"threshold": gate.threshold, "flag_rate": gate.flag_rate, "layer": gate.layer,
                          "digest": gate.digest()})
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))  # last: it marks completion
    shutil.rmtree(out, ignore_errors=True)
    tmp.replace(out)
    return out
