import numpy as np

from breakfix.embeddings import Embedder


def test_a_text_is_embedded_once_per_embedder_without_a_disk_cache(monkeypatch):
    embed = Embedder(None, max_length=32, memo=3)
    embedded: list[str] = []
    real = Embedder._embed
    monkeypatch.setattr(Embedder, "_embed", lambda self, texts: embedded.extend(texts) or real(self, texts))

    first = embed.encode(["a reply", "a request"])
    again = embed.encode(["a request", "another reply"])
    assert embedded == ["a reply", "a request", "another reply"]
    assert np.array_equal(again[0], first[1])
    # bounded: past its size the memo starts again rather than growing
    embed.encode(["one", "two"])
    embed.encode(["a reply"])
    assert embedded[-3:] == ["one", "two", "a reply"] and len(embed._memo) <= 3
