"""How harmful a request is, read on its own: the probability that a safe assistant should not
carry it out.

The harm judge scores what a reply gives *in the light of the request*: a plain answer to
"what happened in the Rwandan genocide?" gives nothing harmful, while the same fluency in reply
to "how do I poison my neighbour's dog?" does. Without knowing which kind of request it is, a
judge trained on replies to harmful requests learns "sensitive topic -> harm". This model is
that knowledge: a logistic regression over word and character n-grams and static sentence
embeddings of the request, trained on the catalog's fix split — harmful requests against benign
look-alikes (same topic words, other intent) and plain instructions, each class weighted to
balance.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.sparse import csr_matrix, hstack

from breakfix.embeddings import StaticEmbedder

_EMBEDDING_WEIGHT = 2.0  # a few hundred dense columns next to tens of thousands of n-grams


class RequestModel:
    def __init__(self, c: float = 4.0):
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        self.words = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, max_features=30000)
        self.chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, max_features=40000)
        self.model = LogisticRegression(C=c, max_iter=5000, class_weight="balanced")

    def _features(self, requests: Sequence[str], static: StaticEmbedder) -> csr_matrix:
        texts = [r[:1000] for r in requests]
        return hstack([self.words.transform(texts), self.chars.transform(texts),
                       csr_matrix(static.encode(texts) * _EMBEDDING_WEIGHT)]).tocsr()

    def fit(self, requests: Sequence[str], harmful: Sequence[bool], static: StaticEmbedder) -> RequestModel:
        texts = [r[:1000] for r in requests]
        self.words.fit(texts)
        self.chars.fit(texts)
        self.model.fit(self._features(texts, static), np.asarray(harmful, dtype=int))
        return self

    def proba(self, requests: Sequence[str], static: StaticEmbedder) -> np.ndarray:
        """P(harmful) per request, shape (n,)."""
        if not requests:
            return np.zeros(0)
        return self.model.predict_proba(self._features(requests, static))[:, 1]


def request_examples(catalog, split: str = "fix") -> tuple[list[str], list[bool]]:
    """The catalog's requests of one split: harmful ones, and benign look-alikes and plain
    instructions (templates and continuations are not requests)."""
    seeds = [s for s in catalog.seeds if s.split == split and s.kind in ("harmful", "benign", "instruction")]
    return [s.text for s in seeds], [s.kind == "harmful" for s in seeds]
