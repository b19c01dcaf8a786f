"""Splits that cannot leak: families, near-duplicates, and the contamination check.

Items that must stay together form a family: what a source declares (a contrast pair, a
template's copies) joined with every near-duplicate (cosine similarity of sentence embeddings
at or above a threshold: a behaviour and its rephrasings across sources). A family's split is a
function of a salted sha256 of its name, so it is the same on every machine and every run.
A family holding an item whose source fixes its split (XSTest is all eval) takes that split.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

SPLITS = ("fix", "dev", "eval")


def split_of(family: str, salt: str, ratios: dict[str, float]) -> str:
    """Deterministic: the family's place in [0, 1) by sha256, cut by the ratios in fix-dev-eval order."""
    digest = hashlib.sha256(f"{salt}\x00{family}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") / 2**64
    edge = 0.0
    for split in SPLITS:
        edge += ratios[split]
        if point < edge:
            return split
    return SPLITS[-1]


def near_pairs(a: np.ndarray, b: np.ndarray | None = None, threshold: float = 0.8,
               block: int = 1024) -> list[tuple[int, int, float]]:
    """Index pairs (i in a, j in b) with cosine >= threshold; within `a` alone when b is None."""
    same = b is None
    b = a if same else b
    found = []
    for start in range(0, len(a), block):
        sims = a[start : start + block] @ b.T
        rows, cols = np.nonzero(sims >= threshold)
        for r, c in zip(rows, cols):
            i = start + int(r)
            if not same or i < c:
                found.append((i, int(c), float(sims[r, c])))
    return found


class _Union:
    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, x: int) -> int:
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def join(self, x: int, y: int) -> None:
        rx, ry = self.find(x), self.find(y)
        if rx != ry:
            self.parent[max(rx, ry)] = min(rx, ry)


@dataclass
class Grouping:
    families: list[str]       # the family of each item after merging
    splits: list[str]         # the split of each item
    conflicts: list[str]      # families whose items were fixed to different splits (sent to eval)
    pairs: list[tuple[int, int, float]]  # the near-duplicate pairs that were merged


def group(declared: Sequence[str], fixed: Sequence[str | None], vectors: np.ndarray, *,
          threshold: float, salt: str, ratios: dict[str, float]) -> Grouping:
    """Merge declared families with near-duplicates, then give every family one split."""
    n = len(declared)
    union = _Union(n)
    first: dict[str, int] = {}
    for i, family in enumerate(declared):
        union.join(first.setdefault(family, i), i)
    pairs = near_pairs(vectors, threshold=threshold)
    for i, j, _ in pairs:
        union.join(i, j)
    members: dict[int, list[int]] = {}
    for i in range(n):
        members.setdefault(union.find(i), []).append(i)
    families, splits, conflicts = [""] * n, [""] * n, []
    for items in members.values():
        name = min(declared[i] for i in items)  # stable whatever the input order
        pinned = {fixed[i] for i in items if fixed[i]}
        if len(pinned) > 1:
            conflicts.append(name)
            split = "eval"  # never train on something also fixed to evaluation
        else:
            split = pinned.pop() if pinned else split_of(name, salt, ratios)
        for i in items:
            families[i], splits[i] = name, split
    return Grouping(families, splits, sorted(conflicts), pairs)


@dataclass
class Contamination:
    """Eval items with a near-duplicate in the fix split: what `breakfix data check` fails on."""

    threshold: float
    leaks: list[tuple[str, str, float]]  # (eval id, fix id, similarity)

    @property
    def clean(self) -> bool:
        return not self.leaks


def contamination(eval_ids: Sequence[str], eval_vecs: np.ndarray, fix_ids: Sequence[str], fix_vecs: np.ndarray,
                  threshold: float) -> Contamination:
    if not len(eval_ids) or not len(fix_ids):
        return Contamination(threshold, [])
    leaks = [(eval_ids[i], fix_ids[j], s) for i, j, s in near_pairs(eval_vecs, fix_vecs, threshold)]
    return Contamination(threshold, sorted(leaks, key=lambda x: -x[2]))
