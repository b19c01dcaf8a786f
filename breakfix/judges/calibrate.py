"""How far a judge agrees with human labels.

Refusal: accuracy, Cohen's kappa and the confusion matrix on the three labels, the same on
compliance vs any refusal, and per category. Severity (harm 0-7, ungroundedness 0-4):
Spearman's rho, accuracy of the harmful/not split at a threshold, mean absolute error.
Unscoreable verdicts are counted and left out of the agreement figures, never scored as safe.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from breakfix.errors import InputError
from breakfix.files import read_jsonl
from breakfix.judges.artifacts import Example
from breakfix.judges.refusal import LABELS

XSTEST_LABELS = {"1_full_compliance": "full_compliance", "2_full_refusal": "full_refusal", "3_partial_refusal": "partial_refusal"}
_REFUSAL_ALIASES = {**XSTEST_LABELS, **{label: label for label in LABELS}, "1": "full_refusal", "0": "full_compliance",
                    "true": "full_refusal", "false": "full_compliance"}


def kappa(gold: Sequence, pred: Sequence) -> float:
    from sklearn.metrics import cohen_kappa_score

    return float(cohen_kappa_score(gold, pred)) if len(set(gold) | set(pred)) > 1 else 1.0


def refusal_metrics(gold: Sequence[str], scores: Sequence, categories: Sequence[str | None] | None = None) -> dict:
    keep = [k for k, s in enumerate(scores) if not s.unscoreable]
    g = [gold[k] for k in keep]
    p = [scores[k].label for k in keep]
    binary_g = [x != "full_compliance" for x in g]
    binary_p = [x != "full_compliance" for x in p]
    matrix = {a: {b: sum(1 for x, y in zip(g, p) if x == a and y == b) for b in LABELS} for a in LABELS}
    result = {
        "n": len(gold), "scored": len(keep), "unscoreable": len(gold) - len(keep),
        "accuracy": float(np.mean([x == y for x, y in zip(g, p)])) if keep else None,
        "kappa": kappa(g, p) if keep else None,
        "binary_accuracy": float(np.mean([x == y for x, y in zip(binary_g, binary_p)])) if keep else None,
        "binary_kappa": kappa(binary_g, binary_p) if keep else None,
        "confusion": matrix,
    }
    if categories:
        per: dict[str, list[bool]] = {}
        for k in keep:
            per.setdefault(categories[k] or "none", []).append((gold[k] != "full_compliance") == (scores[k].label != "full_compliance"))
        result["per_category_binary_accuracy"] = {c: float(np.mean(v)) for c, v in sorted(per.items())}
    return result


def severity_metrics(gold: Sequence[float], scores: Sequence, threshold: float) -> dict:
    from scipy.stats import spearmanr

    keep = [k for k, s in enumerate(scores) if not s.unscoreable]
    g = np.array([gold[k] for k in keep], dtype=float)
    p = np.array([scores[k].value for k in keep], dtype=float)
    # A human 0-7 score of 3.5 (pyrit's 0.5) rounds to 4, so "at or above the threshold" uses the rounded value.
    harmful_g, harmful_p = np.floor(g + 0.5) >= threshold, p >= threshold
    return {
        "n": len(gold), "scored": len(keep), "unscoreable": len(gold) - len(keep),
        "spearman": float(spearmanr(g, p).correlation) if len(keep) > 2 else None,
        "threshold": threshold,
        "threshold_accuracy": float(np.mean(harmful_g == harmful_p)) if keep else None,
        "threshold_kappa": kappa(list(harmful_g), list(harmful_p)) if keep else None,
        "mae": float(np.mean(np.abs(g - p))) if keep else None,
    }


def read_labels(path: Path, kind: str, columns: dict[str, str] | None = None) -> list[Example]:
    """Human labels from CSV or JSONL: `prompt`, `response` and `label` (refusal) or `severity`
    (harm, 0-7; a `harm` column on 0-1 is scaled) or `ungroundedness` (with `context`).
    XSTest's completions file (prompt,completion,final_label) and pyrit's scorer CSVs are
    recognised without a mapping."""
    rows = _rows(path)
    if not rows:
        raise InputError(f"{path}: no labelled rows")
    header = set(rows[0][1])
    col = {"prompt": "prompt", "response": "response", "label": "label", "severity": "severity", "context": "context",
           "category": "category"}
    if {"prompt", "completion", "final_label"} <= header:
        col.update(response="completion", label="final_label")
    if {"objective", "assistant_response"} <= header:
        col.update(prompt="objective", response="assistant_response", label="human_score", category="harm_category")
    col.update(columns or {})
    examples = []
    for number, row in rows:
        where = f"{path}:{number}"
        for needed in ("prompt", "response"):
            if col[needed] not in row:
                raise InputError(f"{where}: no {col[needed]!r} column (map yours with --columns {needed}=...)")
        label = _label(kind, row, col, where)
        examples.append(Example(id=f"{path.name}:{number}", source=path.name, prompt=str(row[col["prompt"]]),
                                response=str(row[col["response"]] or ""), label=label, split="eval",
                                category=row.get(col["category"]) or None, context=row.get(col["context"])))
    return examples


def _label(kind: str, row: dict, col: dict, where: str):
    if kind == "refusal":
        raw = str(row.get(col["label"], "")).strip().lower()
        if raw not in _REFUSAL_ALIASES:
            raise InputError(f"{where}: refusal label {raw!r} is not one of {sorted(set(_REFUSAL_ALIASES))}")
        return _REFUSAL_ALIASES[raw]
    raters = [v for k, v in row.items() if k and k.startswith("human_score") and v not in (None, "")]
    if kind == "harm" and raters:  # pyrit's scorer files: one or more raters on a 0-1 scale
        try:
            return 7 * sum(float(v) for v in raters) / len(raters)
        except ValueError:
            raise InputError(f"{where}: non-numeric human score") from None
    key = col["severity"] if kind == "harm" else "ungroundedness"
    if key not in row and col["label"] in row:
        key = col["label"]
    try:
        return float(row[key])
    except (KeyError, TypeError, ValueError):
        raise InputError(f"{where}: no numeric {key!r}") from None


def _rows(path: Path) -> list[tuple[int, dict]]:
    if path.suffix.lower() == ".csv":
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"{path}: {exc.strerror or exc}") from None
        lines = [line for line in text.splitlines(keepends=True) if not line.startswith("#")]
        return [(n, row) for n, row in enumerate(csv.DictReader(lines), start=2)]
    return list(read_jsonl(path))


def label_counts(examples: Sequence[Example]) -> Counter:
    return Counter(str(e.label) for e in examples)
