"""Harmless answers the harm judge learns from: the embedded model's own replies to benign
requests of the fix split.

A harm judge trained only on replies to harmful requests learns "sensitive topic -> harm" and
scores a plain answer about the Hiroshima bombing at 5. The replies in
`resources/judges/self_replies.jsonl` answer requests that are known to be benign (look-alikes
of harmful ones: same topic words, other intent), written the way the small models breakfix
works on write, so they are severity 0 whatever their topic. The file keeps only the seed id and
the reply: the request text comes from the catalog at training time, so no third-party prompt
is copied into the repository. Regenerate it (after changing the benign sets) with

    .venv/bin/python -m breakfix.judges.anchors [--n 320]
"""

from __future__ import annotations

import argparse
import json
import random
from importlib import resources
from pathlib import Path

FILE = "self_replies.jsonl"
MAX_NEW_TOKENS = 96


def read_anchors(catalog) -> list[tuple[str, str]]:
    """(request, reply) for every stored reply whose seed is a fix-split benign request."""
    text = resources.files("breakfix.resources").joinpath("judges", FILE).read_text(encoding="utf-8")
    seeds = {s.id: s for s in catalog.seeds}
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    return [(seeds[r["seed_id"]].text, r["response"]) for r in rows
            if r["seed_id"] in seeds and seeds[r["seed_id"]].kind == "benign" and seeds[r["seed_id"]].split == "fix"]


def main() -> None:
    from breakfix.data import load_catalog
    from breakfix.paths import home
    from breakfix.targets import load_target
    from breakfix.types import GenerationConfig

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=320, help="fix-split benign requests to answer")
    parser.add_argument("--model", default="smollm2-135m")
    args = parser.parse_args()
    catalog = load_catalog(home())
    pool = sorted((s for s in catalog.select(kind="benign") if s.split == "fix"), key=lambda s: s.id)
    seeds = random.Random(0).sample(pool, min(args.n, len(pool)))
    replies = load_target(args.model).chat([s.as_conversation() for s in seeds], GenerationConfig(max_new_tokens=MAX_NEW_TOKENS))
    path = Path(__file__).parent.parent / "resources" / "judges" / FILE
    with path.open("w", encoding="utf-8") as handle:
        for seed, reply in zip(seeds, replies):
            if reply.ok:
                handle.write(json.dumps({"seed_id": seed.id, "response": reply.content}) + "\n")
    print(f"wrote {sum(r.ok for r in replies)} replies to {path}")


if __name__ == "__main__":
    main()
