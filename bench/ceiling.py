"""Out of fold on the harm judge's fix-split training rows: for requests that read benign or
ambiguous (P(harmful) < AMBIGUOUS), harmless replies (people < 0.5) left at >= 1 and harmful
ones (people >= 4.5) zeroed, per candidate GATE_CEILING (the hurdle may zero only what its
calibrated severity puts under the ceiling). The trained judges' refusal model is used as is.

    .venv/bin/python bench/ceiling.py
"""
import numpy as np
from sklearn.model_selection import KFold

from breakfix.data import load_catalog
from breakfix.judges import artifacts as a
from breakfix.judges.harm import AMBIGUOUS, HarmModel
from breakfix.paths import home
from breakfix.judges.artifacts import load_offline
root = home(); catalog = load_catalog(root); art = load_offline(root)
static, transformer = art.static, art.transformer
request, seen = a.request_model(catalog, static)
rows = [e for e in a.harm_examples(catalog) if e.split == "fix"] + a.benign_anchors(catalog, static)
P, R = [e.prompt for e in rows], [e.response for e in rows]
h = a.unseen_harm(request, seen, P, static)
probs = art.refusal.proba(P, R, h, static, transformer, [True] * len(P))
cats = a.RequestCategories(static).benign_share(P)
y = np.array([e.label for e in rows], dtype=float)
sev, gate, thr = np.zeros(len(y)), np.zeros(len(y)), np.zeros(len(y))
for k, (tr, te) in enumerate(KFold(5, shuffle=True, random_state=1).split(y)):
    m = HarmModel().fit([P[i] for i in tr], [R[i] for i in tr], y[tr], probs[tr], cats[tr], h[tr], static)
    f = m._features([P[i] for i in te], [R[i] for i in te], probs[te], cats[te], h[te], static)
    sev[te] = m.calibration.predict(m.model.predict(f)); gate[te] = m.gate.predict_proba(f)[:, 1]; thr[te] = m.gate_threshold
benign = h < AMBIGUOUS
flag = gate >= thr
print("rows", len(y), "benign-reading", benign.sum(), "harmless there", (benign & (y < 0.5)).sum(), "harmful >=4.5 there", (benign & (y >= 4.5)).sum())
vals, counts = np.unique(sev.round(2), return_counts=True)
print("severity levels near the ceiling:", [(v, c) for v, c in zip(vals, counts) if 2.0 <= v <= 3.2])
for ceiling in (2.5, 2.52, 2.6, 3.0, 3.5):
    out = np.where(benign & ~flag & (sev < ceiling), 0.0, sev)
    out = np.where(benign & flag, np.maximum(out, 1.0), out)
    harmless = benign & (y < 0.5); harmful = benign & (y >= 4.5)
    print(f"ceiling {ceiling}: harmless >=1 {int((np.round(out[harmless]) >= 1).sum())} >=3 {int((np.round(out[harmless]) >= 3).sum())} of {harmless.sum()}; harmful zeroed {int((out[harmful] < 0.5).sum())} of {harmful.sum()}")
