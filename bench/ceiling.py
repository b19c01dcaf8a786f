"""The harm judge's ceiling (`GATE_CEILING`), out of fold on the fix split.

The hurdle may zero a reply to a request that reads benign or ambiguous only when the calibrated
regression puts it under the ceiling, and a refusal that lists no steps is zeroed only under it
(`harm.settle`). For each candidate ceiling this prints, over the harm judge's fix-split training
rows (pyrit's human scores, our harm sets, harmless anchors), each scored by a harm model fitted
on the other four of five folds (grouped by request):
- harmless replies (people < 0.5) scored >= 1 and >= 3, among replies to requests that read
  benign or ambiguous and among all;
- replies people rate >= 4.5 scored 0, the same two ways.
The baseline is the ceiling in use, printed first. The refusal probabilities are the trained
judge's own, in-sample for the refusal sets' replies, as in `breakfix assets`. About 3 minutes on 2 cores.

    .venv/bin/python bench/ceiling.py [--ceilings 2.5,2.6,3.0,3.5]
"""

from __future__ import annotations

import argparse


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ceilings", default="2.5,2.6,3.0,3.5", help="candidate ceilings, comma-separated")
    args = parser.parse_args()

    import numpy as np
    from sklearn.model_selection import GroupKFold

    from breakfix.data import load_catalog
    from breakfix.judges import artifacts as a
    from breakfix.judges.features import lists_steps
    from breakfix.judges.harm import AMBIGUOUS, GATE_CEILING, HarmModel, settle
    from breakfix.paths import home

    root = home()
    catalog, judges = load_catalog(root), a.load_offline(root)
    static, transformer = judges.static, judges.transformer
    request, seen = a.request_model(catalog, static)
    rows = [e for e in a.harm_examples(catalog) if e.split == "fix"] + a.benign_anchors(catalog, static)
    prompts, replies = [e.prompt for e in rows], [e.response for e in rows]
    harmful = a.unseen_harm(request, seen, prompts, static)
    refusal = judges.refusal.proba(prompts, replies, harmful, static, transformer, [True] * len(rows))
    categories = a.RequestCategories(static).benign_share(prompts)
    people = np.array([e.label for e in rows], dtype=float)
    severity, flagged = np.zeros(len(rows)), np.zeros(len(rows), dtype=bool)
    for train, test in GroupKFold(5).split(rows, groups=prompts):
        model = HarmModel().fit([prompts[k] for k in train], [replies[k] for k in train], people[train],
                                refusal[train], categories[train], harmful[train], static)
        features = model._features([prompts[k] for k in test], [replies[k] for k in test], refusal[test],
                                   categories[test], harmful[test], static)
        severity[test] = model.calibration.predict(model.model.predict(features))
        flagged[test] = model.gate.predict_proba(features)[:, 1] >= model.gate_threshold
    steps = [lists_steps(r) for r in replies]
    benign = harmful < AMBIGUOUS
    harmless, serious = people < 0.5, people >= 4.5
    print(f"{len(rows)} fix-split rows; {benign.sum()} to requests that read benign or ambiguous "
          f"({(benign & harmless).sum()} harmless, {(benign & serious).sum()} rated >= 4.5 by people); "
          f"all: {harmless.sum()} harmless, {serious.sum()} rated >= 4.5")
    ceilings = [GATE_CEILING] + [c for c in (float(x) for x in args.ceilings.split(",")) if c != GATE_CEILING]
    for ceiling in ceilings:
        score = np.round(settle(severity, flagged, harmful, refusal[:, 2], steps, ceiling))
        cells = []
        for name, rows_in in (("benign-reading", benign), ("all", np.ones(len(rows), dtype=bool))):
            cells.append(f"{name}: harmless >= 1 {(score[rows_in & harmless] >= 1).sum()}, >= 3 "
                         f"{(score[rows_in & harmless] >= 3).sum()}; rated >= 4.5 scored 0 {(score[rows_in & serious] == 0).sum()}")
        print(f"ceiling {ceiling:.2f}{' (in use)' if ceiling == GATE_CEILING else ''}: " + " | ".join(cells))


if __name__ == "__main__":
    main()
