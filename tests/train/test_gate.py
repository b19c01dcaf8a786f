"""Fitting a refusal gate: its data come from the fix split only, its threshold and figures are
out of fold, and its folder links the weights rather than copying them."""

import json
import os
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="module")
def catalog():
    from breakfix.data import load_catalog
    from breakfix.paths import home

    return load_catalog(home())


def test_gate_data_mixes_harmful_look_alike_and_plain_requests_from_the_fix_split_only(catalog):
    from breakfix.train.gate import gate_data

    from breakfix.train.gate import WRAPPER_CHARS

    data = gate_data(catalog, 200, seed=0)
    assert data.kinds == {"harmful": 80, "harmful wrapped": 7, "benign": 66, "benign wrapped": 7, "instruction": 40}
    assert all((k.startswith("harmful")) == h for k, h in zip(data.kind, data.harmful))
    assert sum(data.harmful) == 87 and len(data.conversations) == len(data.groups) == 200
    not_fix = {s.text for s in catalog.seeds if s.split != "fix"}
    assert not any(c[-1].content in not_fix for c in data.conversations)
    wrapped = [c[-1].content for c, k in zip(data.conversations, data.kind) if k.endswith("wrapped")]
    assert len(wrapped) == 14 and all(len(t) <= WRAPPER_CHARS + 1000 for t in wrapped)  # short templates only
    assert sum(len(t) > 400 for t in wrapped) >= 7  # inside a jailbreak template
    assert gate_data(catalog, 200, seed=0) == data and gate_data(catalog, 200, seed=1) != data


def test_the_probe_is_fitted_on_standardised_states_and_reads_raw_ones():
    """One dimension a thousand times larger than the rest (as in a small model's residual
    stream) neither swamps the probe nor needs scaling at run time: the weights take it in."""
    from breakfix.train.gate import GateData, probe_fit

    rng = np.random.default_rng(0)
    y = np.r_[np.ones(150, bool), np.zeros(150, bool)]
    x = rng.normal(size=(300, 8))
    x[:, 0] = 1000 + 500 * rng.normal(size=300)   # large, uninformative
    x[:, 3] += np.where(y, 1.5, -1.5)               # small, informative
    data = GateData(conversations=[[]] * 300, harmful=y.tolist(), groups=[str(i) for i in range(300)],
                    kind=["harmful" if h else "benign" for h in y])
    fit = probe_fit(x[:, None, :], [5], data)
    weights = np.asarray(fit.weights)
    assert fit.layers == [5] and np.argmax(np.abs(weights * x.std(axis=0))) == 3
    p = 1 / (1 + np.exp(-(x @ weights + fit.bias)))
    assert ((p >= 0.5) == y).mean() > 0.9
    assert fit.gate(0.05, ["No."]).recall > 0.8


def test_a_fit_sets_its_threshold_out_of_fold_on_the_look_alikes_at_the_flag_rate_asked():
    from breakfix.train.gate import GateFit

    rng = np.random.default_rng(0)
    held_out = np.r_[rng.uniform(0.4, 1.0, 50), rng.uniform(0.0, 0.6, 150), np.full(40, 0.99)]
    harmful = [True] * 50 + [False] * 190
    look_alike = [False] * 50 + [True] * 150 + [False] * 40  # the last 40: instructions the probe happens to flag
    fit = GateFit(layers=[3], weights=[0.1, 0.2], bias=0.0, held_out=held_out.tolist(), harmful=harmful,
                  look_alike=look_alike, kinds={}, recall_by_layers={"3": 0.5})
    benign = held_out[50:200]
    for rate in (0.02, 0.1):
        gate = fit.gate(rate, ["No."])
        flagged = int((benign >= gate.threshold).sum())
        assert flagged <= rate * 150 and (benign >= benign[benign < gate.threshold].max()).sum() > rate * 150
        assert gate.flag_rate == flagged / 150 and gate.recall == (held_out[:50] >= gate.threshold).mean()
    assert fit.gate(0.02, ["No."]).threshold > fit.gate(0.1, ["No."]).threshold


def test_gated_copy_links_the_weights_writes_the_gate_and_replaces_only_a_different_gate(tmp_path):
    from breakfix.targets.gate import Gate, load_gate
    from breakfix.train.gate import gated_copy
    from breakfix.train.trainer import MANIFEST

    model = tmp_path / "model"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"weights")
    (model / MANIFEST).write_text(json.dumps({"weights_sha256": "abc", "stage": "dpo"}))
    gate = Gate(layers=[2], weights=[1.0], bias=0.0, threshold=0.9, flag_rate=0.02, recall=0.7, replies=["No."])
    out = gated_copy(model, gate, tmp_path / "run" / "dpo+gate")
    link = out / "model.safetensors"
    assert link.is_symlink() and not Path(os.readlink(link)).is_absolute() and link.read_bytes() == b"weights"
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["weights_sha256"] == "abc" and manifest["stage"] == "gate" and manifest["parent"] == str(model)
    assert manifest["gate"]["digest"] == gate.digest() and load_gate(out) == gate
    assert load_gate(model) is None  # the ungated model stays ungated
    inode = out.stat().st_ino
    assert gated_copy(model, gate, out) == out and out.stat().st_ino == inode  # kept, not rewritten
    other = gate.model_copy(update={"threshold": 0.5})
    gated_copy(model, other, out)
    assert load_gate(out) == other


@pytest.mark.slow
def test_a_gate_fitted_to_the_real_model_reads_unseen_fix_requests_better_than_chance(smol, catalog):
    """Fitted on 160 fix-split requests, scored on 100 others it never saw: harmful ones read
    higher than look-alikes, and its threshold catches more of the harmful than of the benign."""
    from breakfix.targets.gate import prompt_states
    from breakfix.train.gate import fit_gate, gate_data, refusal_texts
    from breakfix.types import GenerationConfig

    data = gate_data(catalog, 160, seed=0)
    fit = fit_gate(smol, data)
    assert fit.recall_by_layers[fit.name] == max(fit.recall_by_layers.values()) and len(fit.recall_by_layers) == 4
    gate = fit.gate(0.1, refusal_texts(0))
    assert gate.flag_rate <= 0.1 and len(set(gate.replies)) == 12
    seen = {c[-1].content for c in data.conversations}
    other = gate_data(catalog, 400, seed=1)
    fresh = [(c, h) for c, h, k in zip(other.conversations, other.harmful, other.kind)
             if c[-1].content not in seen and k in ("harmful", "benign")]
    unseen = [r for r in fresh if r[1]][:50] + [r for r in fresh if not r[1]][:50]
    encoded = [smol.encode(c, GenerationConfig()) for c, _ in unseen]
    p = gate.probability(prompt_states(smol.model, smol.tokenizer, encoded, gate.layers))
    harmful = np.array([h for _, h in unseen])
    assert harmful.sum() == 50 and len(harmful) == 100
    assert p[harmful].mean() > p[~harmful].mean() + 0.1
    assert (p[harmful] >= gate.threshold).mean() > (p[~harmful] >= gate.threshold).mean() + 0.1


def test_the_probe_tries_each_three_neighbouring_layers_and_all_of_them_and_keeps_the_best():
    from breakfix.train.gate import GateData, probe_fit

    rng = np.random.default_rng(1)
    y = np.r_[np.ones(100, bool), np.zeros(100, bool)]
    states = rng.normal(size=(200, 5, 6))
    states[:, 4, 2] += np.where(y, 2.0, -2.0)  # only the deepest layer read tells them apart
    data = GateData(conversations=[[]] * 200, harmful=y.tolist(), groups=[str(i) for i in range(200)],
                    kind=["harmful" if h else "benign" for h in y])
    fit = probe_fit(states, [12, 15, 18, 21, 24], data)
    assert set(fit.recall_by_layers) == {"12+15+18", "15+18+21", "18+21+24", "12+15+18+21+24"}
    assert 24 in fit.layers and len(fit.weights) == 6 * len(fit.layers)
    assert set(probe_fit(states[:, :2], [12, 15], data).recall_by_layers) == {"12+15"}
