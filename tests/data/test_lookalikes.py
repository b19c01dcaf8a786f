"""Our benign look-alikes: every harm category covered, one intent per family in several phrasings, leak-proof splits."""

from collections import Counter

from breakfix.data import BENIGN, CATEGORIES
from breakfix.data.sources import SOURCES

SHAPES = {"direct", "polite", "backstory", "casual", "roleplay"}


def _declared():
    return SOURCES["breakfix.lookalikes"].read(None)


def test_lookalikes_are_benign_and_cover_every_category():
    seeds = _declared()
    assert all(s.kind == "benign" and s.category == BENIGN and s.labels == (s.resembles,) for s in seeds)
    per_category = Counter(s.resembles for s in seeds)
    assert set(per_category) == set(CATEGORIES)
    assert min(per_category.values()) >= 100, per_category
    assert len({" ".join(s.text.lower().split()) for s in seeds}) == len(seeds)
    assert all(5 <= len(s.text.split()) <= 40 for s in seeds)


def test_a_family_is_one_intent_in_four_or_five_distinct_shapes():
    families: dict[str, list] = {}
    for s in _declared():
        families.setdefault(s.family, []).append(s)
    assert all(f.startswith("lookalike:la-") for f in families)
    for family, members in families.items():
        shapes = [t.removeprefix("shape:") for s in members for t in s.tags if t.startswith("shape:")]
        assert 4 <= len(members) <= 5 and len(shapes) == len(set(shapes)) == len(members), family
        assert set(shapes) <= SHAPES and len({s.resembles for s in members}) == 1, family
        assert all("type:lookalike" in s.tags for s in members)


def test_no_family_straddles_splits(catalog):
    seeds = catalog.select(source="breakfix.lookalikes")
    assert len(seeds) == len(_declared())
    splits: dict[str, set[str]] = {}
    for s in seeds:
        splits.setdefault(s.source_id.rsplit("-", 1)[0], set()).add(s.split)
    assert all(len(found) == 1 for found in splits.values())
    assert {sp for found in splits.values() for sp in found} == {"fix", "dev", "eval"}
