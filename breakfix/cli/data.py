"""`breakfix data list|show|export|check`: the safety data, its splits and its contamination."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from breakfix.cli.common import err, out
from breakfix.errors import InputError

app = typer.Typer(no_args_is_help=True, help="Safety data: sources, taxonomy, splits, contamination.")

ConfigOpt = Annotated[Path | None, typer.Option("--config", help="YAML whose `data:` section adds files, XSTest, ratios.")]
XSTestOpt = Annotated[Path | None, typer.Option("--xstest", help="XSTest prompts CSV (id,prompt,type,label,focus,note).")]
FileOpt = Annotated[list[Path] | None, typer.Option("--file", help="A JSONL/CSV of your own (repeatable).")]
KindOpt = Annotated[str, typer.Option("--kind", help="What --file items are: harmful, benign, instruction, template, continuation.")]
ColumnsOpt = Annotated[str | None, typer.Option("--columns", help="Column mapping for --file, e.g. text=question,category=topic.")]
Rebuild = Annotated[bool, typer.Option("--rebuild", help="Rebuild the catalog instead of using the cached one.")]


def _catalog(config: Path | None, xstest: Path | None, files: list[Path] | None, kind: str,
             columns: str | None, rebuild: bool = False):
    from breakfix.config import DataConfig, FileSourceConfig, load_yaml
    from breakfix.data import load_catalog
    from breakfix.paths import home

    data = load_yaml(config, DataConfig, "data") if config else DataConfig()
    mapping = dict(pair.split("=", 1) for pair in columns.split(",")) if columns else {}
    if columns and any("=" not in pair for pair in columns.split(",")):
        raise InputError(f"--columns {columns!r}: expected ours=theirs pairs, e.g. text=question")
    extra = [FileSourceConfig(path=p, kind=kind, columns=mapping) for p in files or []]
    data = data.model_copy(update={"files": [*data.files, *extra], "xstest": xstest or data.xstest})
    with err.status("loading the data catalog (the first build embeds every item: minutes)"):
        return load_catalog(home(), data, rebuild=rebuild), home()


@app.command("list")
def list_data(config: ConfigOpt = None, xstest: XSTestOpt = None, file: FileOpt = None, kind: KindOpt = "harmful",
              columns: ColumnsOpt = None, rebuild: Rebuild = False) -> None:
    """Every source with its count and licence, then counts per category and split."""
    catalog, _ = _catalog(config, xstest, file, kind, columns, rebuild)
    splits: Counter = Counter((s.source, s.split) for s in catalog.seeds)
    table = Table("source", "items", "fix", "dev", "eval", "licence", title="sources (breakfix data show SOURCE for items)")
    for info in catalog.sources:
        if info.judge_data:
            counts = Counter((r.split for r in catalog.labelled if r.source == info.name))
        else:
            counts = Counter({sp: splits[(info.name, sp)] for sp in ("fix", "dev", "eval")})
        name = info.name + (" (judge data)" if info.judge_data else "")
        name += f" ({info.unusable} need more than a prompt slot)" if info.unusable else ""
        table.add_row(name, str(info.count), *(str(counts[sp]) for sp in ("fix", "dev", "eval")), info.licence)
    out.print(table)
    out.print(_category_table(catalog))
    methods = ", ".join(f"{k} {v}" for k, v in sorted(catalog.methods.items()))
    out.print(f"categories decided by: {methods}")
    if catalog.unmapped:
        out.print(f"[yellow]unmapped labels:[/] {escape(str(catalog.unmapped))}")
    out.print(f"{len({s.family for s in catalog.seeds})} families; {len(catalog.cross_source)} near-duplicate pairs "
              f"across sources were kept in one split (breakfix data check shows them)")


def _category_table(catalog) -> Table:
    counts = Counter((s.kind, s.category if s.kind in ("harmful", "continuation") else s.resembles, s.split)
                     for s in catalog.seeds if "unusable:slots" not in s.tags)
    table = Table("kind", "category", "fix", "dev", "eval", "total", title="per category and split")
    for kind in ("harmful", "continuation", "benign", "instruction", "template", "capability"):
        cats = sorted({c for k, c, _ in counts if k == kind}, key=lambda c: (c is None, c or ""))
        for cat in cats:
            row = [counts[(kind, cat, sp)] for sp in ("fix", "dev", "eval")]
            label = f"looks like {cat}" if kind == "benign" and cat else cat or "-"
            table.add_row(kind, label, *map(str, row), str(sum(row)))
    return table


def _filtered(catalog, source, category, split, kind):
    from breakfix.data.sources import SOURCES

    known = {i.name for i in catalog.sources}
    if source and source not in known:
        raise InputError(f"unknown source {source!r}; sources: {', '.join(sorted(known))}")
    if source and source in SOURCES and SOURCES[source].labels:
        raise InputError(f"{source} is judge data (human-labelled responses); export it with --labels")
    items = [s for s in catalog.select(source=source, split=split, kind=kind, usable=False)
             if category is None or category in (s.category, s.resembles)]
    if not items:
        base = catalog.select(source=source, usable=False)
        have = Counter(s.category or s.resembles for s in base)
        raise InputError(f"no items match source={source or 'any'} category={category or 'any'} split={split or 'any'} "
                         f"kind={kind or 'any'}; {len(base)} items without filters, categories: "
                         + ", ".join(f"{c} {n}" for c, n in have.most_common()))
    return items


@app.command("show")
def show(source: str = typer.Argument(..., help="Source name, as in `breakfix data list`."),
         category: str | None = typer.Option(None, "--category"), split: str | None = typer.Option(None, "--split"),
         kind: str | None = typer.Option(None, "--kind"), n: int = typer.Option(10, "-n", min=1),
         config: ConfigOpt = None, xstest: XSTestOpt = None, file: FileOpt = None, columns: ColumnsOpt = None) -> None:
    """A few items of one source, with their category, split and family."""
    catalog, _ = _catalog(config, xstest, file, "harmful", columns)
    items = _filtered(catalog, source, category, split, kind)
    from breakfix.data.sources import SOURCES

    about = SOURCES[source].description if source in SOURCES else next(i.description for i in catalog.sources if i.name == source)
    table = Table("id", "kind", "category", "split", "family", "text", title=f"{source} ({about}): {len(items)} items match")
    for s in items[:n]:
        text = s.text if len(s.text) <= 240 else s.text[:240] + "…"
        table.add_row(s.id, s.kind, s.category or (f"≈{s.resembles}" if s.resembles else "-"), s.split or "-",
                      s.family[:28], escape(text))
    out.print(table)


@app.command("export")
def export(out_path: Path = typer.Option(..., "--out", "-o", help="A .jsonl file, or a directory for --format hf."),
           fmt: str = typer.Option("jsonl", "--format", help="jsonl or hf (a datasets.Dataset saved to disk)."),
           source: str | None = typer.Option(None, "--source"), category: str | None = typer.Option(None, "--category"),
           split: str | None = typer.Option(None, "--split"), kind: str | None = typer.Option(None, "--kind"),
           labels: bool = typer.Option(False, "--labels", help="Export the human-labelled judge data instead."),
           config: ConfigOpt = None, xstest: XSTestOpt = None, file: FileOpt = None, columns: ColumnsOpt = None) -> None:
    """Write a filtered slice of the catalog as JSONL or as an HF dataset on disk."""
    from breakfix.files import write_jsonl

    if fmt not in ("jsonl", "hf"):
        raise InputError(f"--format {fmt!r}: use jsonl or hf")
    catalog, _ = _catalog(config, xstest, file, "harmful", columns)
    if labels:
        rows = [r.model_dump(mode="json") for r in catalog.labelled
                if (source is None or r.source == source) and (split is None or r.split == split)]
        if not rows:
            raise InputError(f"no labelled responses match source={source} split={split}")
    else:
        rows = [s.model_dump(mode="json") for s in _filtered(catalog, source, category, split, kind)]
    if fmt == "jsonl":
        write_jsonl(out_path, rows)
    else:
        from datasets import Dataset

        # Nested fields stay structs and lists (Arrow infers them from every row), not str() text.
        columns = list(dict.fromkeys(k for r in rows for k in r))
        Dataset.from_dict({k: [r.get(k) for r in rows] for k in columns}).save_to_disk(str(out_path))
    err.print(f"wrote {len(rows)} items to {out_path}")


@app.command("check")
def check(config: ConfigOpt = None, xstest: XSTestOpt = None, file: FileOpt = None, kind: KindOpt = "harmful",
          columns: ColumnsOpt = None,
          against: Path | None = typer.Option(None, "--against", help="Also check this JSONL (prompt/messages) as fix data."),
          threshold: float | None = typer.Option(None, "--threshold", help="Cosine similarity that counts as a near-duplicate.")) -> None:
    """Fail when an eval item has a near-duplicate in fix data; show what the sources share."""
    from breakfix.data.catalog import check as run_check
    from breakfix.data.catalog import describe_pairs

    catalog, home = _catalog(config, xstest, file, kind, columns)
    pairs = describe_pairs(catalog)
    table = Table("sources", "near-duplicate pairs", title=f"shared between sources (cosine ≥ {catalog.threshold}), kept in one split")
    for (a, b), count in pairs.most_common():
        table.add_row(f"{a} ~ {b}", str(count))
    out.print(table)
    result = run_check(catalog, home, threshold)
    leaks = list(result.leaks)
    if against is not None:
        leaks += _against(catalog, home, against, result.threshold)
    by_id = {s.id: s for s in catalog.seeds}
    for eval_id, fix_id, sim in leaks[:20]:
        fix_text = by_id[fix_id].text if fix_id in by_id else fix_id
        out.print(f"[red]leak[/] {sim:.3f}  eval {eval_id}: {escape(by_id[eval_id].text[:80])!s}\n"
                  f"           fix  {escape(fix_id)}: {escape(fix_text[:80])}")
    for family in catalog.conflicts:
        out.print(f"[red]conflict[/] family {family}: items fixed to different splits are near-duplicates")
    if leaks or catalog.conflicts:
        raise InputError(f"contamination: {len(leaks)} eval item(s) with a near-duplicate in fix data, "
                         f"{len(catalog.conflicts)} split conflict(s)")
    out.print(f"[green]clean:[/] no eval item has a near-duplicate (cosine ≥ {result.threshold}) in fix data")


def _against(catalog, home, path: Path, threshold: float) -> list[tuple[str, str, float]]:
    from breakfix.data.catalog import embedder
    from breakfix.data.splits import contamination
    from breakfix.files import read_prompts

    items = read_prompts(path)
    texts = [" ".join(m.content for m in i.conversation if m.role == "user") for i in items]
    evals = catalog.select(split="eval", usable=False)
    embed = embedder(home)
    found = contamination([s.id for s in evals], embed.encode([s.text for s in evals]),
                          [f"{path.name}:{i.id}" for i in items], embed.encode(texts), threshold)
    return found.leaks
