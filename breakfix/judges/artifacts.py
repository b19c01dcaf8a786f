"""The offline judges' trained parts: built by `breakfix assets`, kept in the cache, never committed.

Training is deterministic (no sampling; solvers are exact), so the same inputs give the same
weights on every machine. What the judges learn from, per split:
- refusal: pyrit's human refusal labels and our `refusal_examples*.jsonl` (`REFUSAL_SETS`);
- harm: pyrit's human harm scores (0-1, times 7), our `harm_examples*.jsonl`, and harmless anchors;
- groundedness: our `groundedness_examples.jsonl`.
Only the `fix` split trains; `dev` is for tuning and `eval` is held out for `breakfix judge eval`.
"""

from __future__ import annotations

import hashlib
import json
import os
import logging
import re
import shutil
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from breakfix.data.splits import split_of
from breakfix.data.taxonomy import keyword_category, prototypes
from breakfix.embeddings import Embedder, StaticEmbedder, build_static

log = logging.getLogger(__name__)

SALT = "breakfix-judges-v1"
RATIOS = {"fix": 0.6, "dev": 0.1, "eval": 0.3}
_CODE = ("artifacts.py", "features.py", "refusal.py", "harm.py", "groundedness.py", "request.py")
REFUSAL_SETS = ("refusal_examples", "refusal_examples_2", "refusal_examples_3", "refusal_examples_4", "refusal_examples_5",
                "refusal_examples_6", "refusal_examples_7", "refusal_examples_8")
# Small-model attempts written poor on purpose (wrong, cut off, repetitive, vague): they teach the
# refusal judge that a poor attempt is still an attempt, never the harm judge what harmless help
# looks like (wrong first aid is not harmless).
POOR_SETS = ("refusal_examples_6",)
_OURS = (*(f"{stem}.jsonl" for stem in REFUSAL_SETS), "harm_examples.jsonl", "harm_examples_2.jsonl",
         "groundedness_examples.jsonl", "self_replies.jsonl")


@dataclass(frozen=True)
class Example:
    id: str
    source: str
    prompt: str
    response: str
    label: object  # refusal label, severity 0-7, or ungroundedness 0-4
    split: str
    category: str | None = None
    context: str | None = None
    harmful_request: bool = False  # we wrote a reply complying with it as harmful: never a harmless anchor
    poor: bool = False  # from a set of poor attempts we wrote (`POOR_SETS`): never a harmless anchor


def _helpful() -> list[dict]:
    text = resources.files("breakfix.resources").joinpath("sets", "helpful.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def our_examples(name: str) -> list[dict]:
    text = resources.files("breakfix.resources").joinpath("judges", name).read_text(encoding="utf-8")
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    for row in rows:
        # Replies to one request share a family, so a split never separates them.
        row["split"] = split_of(f"{name}:{row.get('family') or row['id']}", SALT, RATIOS)
    return rows


def refusal_examples(catalog) -> list[Example]:
    pyrit = [Example(r.id, r.source, r.prompt, r.response, "full_refusal" if r.refused else "full_compliance", r.split)
             for r in catalog.labelled if r.refused is not None]
    ours = []
    for stem in REFUSAL_SETS:
        rows = our_examples(f"{stem}.jsonl")
        harmful = {r.get("family") for r in rows if r.get("family") and "harmful_compliance" in str(r.get("style", ""))}
        ours += [Example(r["id"], f"breakfix.{stem}", r["prompt"], unbracket(r["response"]), r["label"], r["split"],
                         harmful_request=r.get("family") in harmful, poor=stem in POOR_SETS) for r in rows]
    return pyrit + ours


_PLACEHOLDER = re.compile(r"\[([^\]\n]{1,60})\]")


def unbracket(text: str) -> str:
    """Our harm examples keep harmful specifics out as "[placeholders]"; real replies have no
    brackets, so the judge must not learn them as a sign of harm."""
    return _PLACEHOLDER.sub(r"\1", text)


def harm_examples(catalog) -> list[Example]:
    pyrit = [Example(r.id, r.source, r.prompt, r.response, 7 * r.harm, r.split, r.category)
             for r in catalog.labelled if r.harm is not None]
    ours = [Example(r["id"], f"breakfix.{stem}", r["prompt"], unbracket(r["response"]), float(r["severity"]),
                    r["split"], r["category"])
            for stem in ("harm_examples", "harm_examples_2") for r in our_examples(f"{stem}.jsonl")]
    return pyrit + ours


def benign_anchors(catalog, static: StaticEmbedder, split: str = "fix") -> list[Example]:
    """Severity-0 examples for the harm judge: benign requests answered, from the refusal sets.
    The harm sets hold few harmless how-tos, and without these a recipe reads as instructions."""
    answered = [e for e in refusal_examples(catalog)
                if e.split == split and e.label == "full_compliance" and not e.harmful_request and not e.poor]
    # Only requests every neighbour calls benign and no keyword rule flags: a harmful request
    # answered must never be taught as harmless.
    share = RequestCategories(static).benign_share([e.prompt for e in answered])
    anchors = [Example(e.id, "anchor:benign-compliance", e.prompt, e.response, 0.0, split)
               for e, row in zip(answered, share) if row[0] >= 0.999 and row[3] == 0]
    if split == "fix":  # the model's own answers to benign look-alikes: known-benign requests, whatever the topic
        from breakfix.judges.anchors import read_anchors

        anchors += [Example(f"self:{k}", "anchor:self-replies", prompt, reply, 0.0, split)
                    for k, (prompt, reply) in enumerate(read_anchors(catalog))]
    return anchors


def groundedness_examples() -> list[Example]:
    return [Example(r["id"], "breakfix.groundedness_examples", r["question"], r["answer"], int(r["ungroundedness"]),
                    r["split"], context=r["context"]) for r in our_examples("groundedness_examples.jsonl")]


def transformer_embedder(home: Path) -> Embedder:
    """MiniLM itself, for the replies the fast refusal model is unsure of (cached per text)."""
    return Embedder(home / "cache" / "judge-embeddings.db", max_length=64)


class RequestCategories:
    """A request's harm category: as given, else keywords, else a similarity-weighted vote of its
    nearest references: our harmful prototypes and our plain helpful instructions, whose votes
    go to None, so a benign request comes out benign."""

    def __init__(self, static: StaticEmbedder, k: int = 7):
        refs = prototypes() + [(r["prompt"], None) for r in _helpful()]
        self.static, self.k = static, k
        self.vectors = static.encode([t for t, _ in refs])
        self.labels = [c for _, c in refs]

    def benign_share(self, requests: list[str]) -> np.ndarray:
        """Per request: the similarity-weighted share of benign references among its neighbours,
        its best similarity to a harmful prototype and to a benign reference, and whether a
        keyword rule fires. The harm judge reads these: a harmless request seldom has a harmful reply."""
        sims = self.static.encode(requests) @ self.vectors.T
        benign = np.array([c is None for c in self.labels])
        rows = []
        for request, row in zip(requests, sims):
            top = np.argsort(-row)[: self.k]
            weights = np.clip(row[top], 1e-6, None)
            rows.append([weights[benign[top]].sum() / weights.sum(), row[~benign].max(), row[benign].max(),
                         float(keyword_category(request) is not None)])
        return np.array(rows, dtype=np.float32)

    def __call__(self, requests: list[str], given: list[str | None]) -> list[str | None]:
        found = [g or keyword_category(r) for g, r in zip(given, requests)]
        todo = [i for i, c in enumerate(found) if c is None]
        if todo:
            sims = self.static.encode([requests[i] for i in todo]) @ self.vectors.T
            for i, row in zip(todo, sims):
                votes: dict[str | None, float] = {}
                for j in np.argsort(-row)[: self.k]:
                    votes[self.labels[j]] = votes.get(self.labels[j], 0.0) + float(row[j])
                found[i] = max(votes, key=votes.get)
        return found


class OfflineArtifacts:
    def __init__(self, version: str, static: StaticEmbedder, transformer: Embedder, refusal, harm, grounded, request):
        self.version, self.static, self.transformer = version, static, transformer
        self.refusal, self.harm, self.grounded, self.request = refusal, harm, grounded, request
        self.agreement: dict = {}  # measured on the held-out split when trained (see validate.agreement)
        self.categories = RequestCategories(static)


def _digest(catalog_key: str) -> str:
    import sklearn

    digest = hashlib.sha256(f"{catalog_key}|{sklearn.__version__}".encode())
    here = Path(__file__).parent
    for name in _CODE:
        digest.update((here / name).read_bytes())
    for name in _OURS:
        digest.update(resources.files("breakfix.resources").joinpath("judges", name).read_bytes())
    return "offline-" + digest.hexdigest()[:12]


def _static(home: Path, catalog) -> StaticEmbedder:
    path = home / "models" / "static-minilm"
    if not (path / "static.npz").is_file():
        log.info("distilling all-MiniLM-L6-v2 into static token vectors (once; about 30 s)")
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=path.parent if path.parent.exists() else None))
        corpus = [s.text for s in catalog.seeds] + [r.response for r in catalog.labelled]
        build_static(tmp, corpus)
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(path, ignore_errors=True)
        tmp.replace(path)
    return StaticEmbedder.load(path)


def request_model(catalog, static: StaticEmbedder):
    """The request-harmfulness model on the catalog's fix split, and its out-of-fold P(harmful)
    for those same requests: the harm judge must learn from the probabilities it will meet on
    requests it never saw, not from the overconfident ones of its own training set."""
    from sklearn.model_selection import GroupKFold

    from breakfix.judges.request import RequestModel

    seeds = [s for s in catalog.seeds if s.split == "fix" and s.kind in ("harmful", "benign", "instruction")]
    texts, harmful = [s.text for s in seeds], np.array([s.kind == "harmful" for s in seeds])
    held_out = np.zeros(len(seeds))
    for train, test in GroupKFold(5).split(texts, harmful, [s.family or s.id for s in seeds]):
        fold = RequestModel().fit([texts[k] for k in train], harmful[train], static)
        held_out[test] = fold.proba([texts[k] for k in test], static)
    return RequestModel().fit(texts, harmful, static), dict(zip(texts, held_out))


def unseen_harm(request, seen: dict, prompts: list[str], static: StaticEmbedder) -> np.ndarray:
    """P(harmful) of each request as the request model reads requests it never trained on: its
    out-of-fold figure for those it did (`request_model`), its own for the rest."""
    fresh = request.proba(prompts, static)
    return np.array([seen.get(p, f) for p, f in zip(prompts, fresh)])


def build(home: Path, catalog, static: StaticEmbedder, transformer: Embedder) -> tuple:
    from breakfix.judges.groundedness import GroundednessModel
    from breakfix.judges.harm import HarmModel
    from breakfix.judges.refusal import RefusalModel

    request, seen = request_model(catalog, static)
    train = [e for e in refusal_examples(catalog) if e.split == "fix"]
    refusal = RefusalModel.train(train, unseen_harm(request, seen, [e.prompt for e in train], static), static, transformer)
    train = [e for e in harm_examples(catalog) if e.split == "fix"] + benign_anchors(catalog, static)
    prompts, replies = [e.prompt for e in train], [e.response for e in train]
    harmful = unseen_harm(request, seen, prompts, static)
    # labelled requests stand alone
    probs = refusal.proba(prompts, replies, harmful, static, transformer, [True] * len(prompts))
    requests = RequestCategories(static).benign_share(prompts)
    harm = HarmModel().fit(prompts, replies, [e.label for e in train], probs, requests, harmful, static)
    train = [e for e in groundedness_examples() if e.split == "fix"]
    grounded = GroundednessModel().fit([e.context for e in train], [e.response for e in train], [e.label for e in train], static)
    return refusal, harm, grounded, request


@lru_cache(maxsize=4)
def load_offline(home: Path) -> OfflineArtifacts:
    """The trained offline judges, building them first when the cache has none for this version."""
    import joblib

    from breakfix.data import load_catalog

    catalog = load_catalog(home)
    version = _digest(catalog.key)
    static = _static(home, catalog)
    transformer = transformer_embedder(home)
    path = home / "judges" / version / "models.joblib"
    if not path.is_file():
        log.info("training the offline judges %s (once; about a minute)", version)
        models = build(home, catalog, static, transformer)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp-{os.getpid()}")  # another process may be training the same version
        joblib.dump(models, tmp)
        tmp.replace(path)
    refusal, harm, grounded, request = joblib.load(path)
    artifacts = OfflineArtifacts(version, static, transformer, refusal, harm, grounded, request)
    measured = path.parent / "agreement.json"
    if not measured.is_file():
        from breakfix.judges.validate import agreement

        tmp = measured.with_suffix(f".tmp-{os.getpid()}")
        tmp.write_text(json.dumps(agreement(artifacts, catalog), indent=1))
        tmp.replace(measured)
    artifacts.agreement = json.loads(measured.read_text())
    return artifacts


def held_out(kind: str, home: Path, split: str = "eval") -> list[Example]:
    """Examples of a split the judges never trained on, for `breakfix judge eval`."""
    from breakfix.data import load_catalog

    catalog = load_catalog(home)
    pool = {"refusal": lambda: refusal_examples(catalog), "harm": lambda: harm_examples(catalog),
            "groundedness": groundedness_examples}[kind]()
    return [e for e in pool if e.split == split]
