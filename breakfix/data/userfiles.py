"""Data the user brings: JSONL/CSV files with a column mapping, an XSTest CSV, hub datasets."""

from __future__ import annotations

import csv
import os
from pathlib import Path

from breakfix.config import FileSourceConfig, HubSourceConfig
from breakfix.data.taxonomy import BENIGN
from breakfix.errors import InputError
from breakfix.files import read_jsonl
from breakfix.types import Seed

_FIELDS = {"text", "id", "category", "split", "family"}
XSTEST_HEADER = ["id", "prompt", "type", "label", "focus", "note"]


def _rows(path: Path) -> list[tuple[int, dict]]:
    if path.suffix.lower() == ".csv":
        try:
            with open(path, encoding="utf-8", newline="") as handle:
                return [(n, row) for n, row in enumerate(csv.DictReader(handle), start=2)]
        except OSError as exc:
            raise InputError(f"{path}: {exc.strerror or exc}") from None
    return list(read_jsonl(path))


def file_seeds(config: FileSourceConfig) -> list[Seed]:
    """Seeds from a user file; every problem names file:line."""
    unknown = set(config.columns) - _FIELDS
    if unknown:
        raise InputError(f"{config.path}: unknown column mapping {sorted(unknown)}; map any of {sorted(_FIELDS)}")
    name = config.name or f"file:{config.path.stem}"
    col = {f: config.columns.get(f, f) for f in _FIELDS}
    seeds = []
    for number, row in _rows(config.path):
        if col["text"] not in row:
            raise InputError(f"{config.path}:{number}: no {col['text']!r} column (map yours with columns: text=...)")
        text = str(row[col["text"]] or "").strip()
        if not text:
            raise InputError(f"{config.path}:{number}: empty {col['text']!r}")
        split = row.get(col["split"]) or config.split
        if split not in (None, "fix", "dev", "eval"):
            raise InputError(f"{config.path}:{number}: split {split!r} is not fix, dev or eval")
        source_id = str(row.get(col["id"]) or number)
        label = row.get(col["category"])
        seeds.append(Seed(
            id=f"{name}:{source_id}", kind=config.kind, text=text, source=name, source_id=source_id,
            licence=config.licence, labels=(str(label),) if label else (), split=split,
            family=str(row[col["family"]]) if row.get(col["family"]) else "",
            category=BENIGN if config.kind in ("benign", "instruction") else None,
        ))
    if not seeds:
        raise InputError(f"{config.path}: no items")
    return seeds


def xstest_seeds(path: Path) -> list[Seed]:
    """XSTest's prompts CSV: 250 safe prompts and 200 unsafe contrasts, all for evaluation."""
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, [])
            if [h.strip() for h in header] != XSTEST_HEADER:
                raise InputError(f"{path}:1: expected the XSTest header {','.join(XSTEST_HEADER)}, got {','.join(header) or 'nothing'}")
            rows = list(enumerate(reader, start=2))
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or exc}") from None
    seeds = []
    for number, row in rows:
        if not row:
            continue
        if len(row) != len(XSTEST_HEADER):
            raise InputError(f"{path}:{number}: expected {len(XSTEST_HEADER)} fields, got {len(row)}")
        item = dict(zip(XSTEST_HEADER, row))
        if item["label"] not in ("safe", "unsafe"):
            raise InputError(f"{path}:{number}: label {item['label']!r} is not safe or unsafe")
        safe = item["label"] == "safe"
        base = item["type"].removeprefix("contrast_")
        seeds.append(Seed(
            id=f"xstest:{item['id']}", kind="benign" if safe else "harmful", text=item["prompt"], source="xstest",
            source_id=item["id"], licence="CC-BY-4.0 (XSTest, user-supplied)", labels=(item["type"],),
            category=BENIGN if safe else None, family=f"xstest:{base}:{item['focus'].strip().lower()}",
            split="eval", tags=(f"type:{item['type']}",),
        ))
    if not seeds:
        raise InputError(f"{path}: no prompts")
    return seeds


def hub_seeds(config: HubSourceConfig) -> list[Seed]:
    if os.environ.get("BREAKFIX_ONLINE") != "1":
        raise InputError(f"hub dataset {config.name} needs the network: set BREAKFIX_ONLINE=1 (never in the default run)")
    from datasets import load_dataset

    rows = load_dataset(config.name, config.config, split=config.split)
    text_col = config.columns.get("text", "text")
    name = f"hub:{config.name}"
    return [Seed(id=f"{name}:{i}", kind=config.kind, text=str(r[text_col]), source=name, source_id=str(i),
                 licence=config.licence, category=BENIGN if config.kind in ("benign", "instruction") else None)
            for i, r in enumerate(rows) if str(r.get(text_col) or "").strip()]
