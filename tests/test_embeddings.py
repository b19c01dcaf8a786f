import numpy as np
import pytest

from breakfix.embeddings import DIM, Embedder


@pytest.fixture
def embedded(monkeypatch):
    """What reaches the model, in order; each text gets a vector of its own (no MiniLM needed)."""
    texts: list[str] = []

    def embed(self, batch):
        texts.extend(batch)
        return np.stack([np.full(DIM, hash(t) % 997, dtype=np.float32) for t in batch])

    monkeypatch.setattr(Embedder, "_embed", embed)
    return texts


def test_a_text_is_embedded_once_per_embedder_without_a_disk_cache(embedded):
    embed = Embedder(None, memo=4)
    first = embed.encode(["a reply", "a request", "a reply"])
    again = embed.encode(["a request", "another reply"])
    assert embedded == ["a reply", "a request", "another reply"]
    assert np.array_equal(again[0], first[1]) and np.array_equal(first[0], first[2])
    embed.encode(["a reply", "a request", "another reply"])  # all known: nothing embedded, nothing forgotten
    assert len(embedded) == 3


def test_the_memo_stays_within_its_size(embedded):
    embed = Embedder(None, memo=3)
    embed.encode([f"text {i}" for i in range(10)])  # a call larger than the memo keeps only its last texts
    assert len(embed._memo) == 3
    embed.encode(["text 9", "new"])
    assert embedded[-1] == "new" and len(embed._memo) <= 3


def test_a_memo_of_size_zero_keeps_nothing(embedded):
    embed = Embedder(None, memo=0)
    embed.encode(["a", "b"])
    embed.encode(["a"])
    assert embedded == ["a", "b", "a"] and not embed._memo
