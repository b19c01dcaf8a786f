"""The quick RAI preset on the embedded model: scored items/s, and where the time goes.

Runs `--preset quick` on a fresh store (nothing cached) and prints scored items per second and
the shares of time spent generating and judging; then, as the baseline in the same run, the same
evaluation again on that store, served from the cache (what a resumed evaluation costs).

    .venv/bin/python bench/eval.py [--preset quick]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def evaluate(store_path: Path, preset: str, target, judges, grounded, catalog):
    from breakfix import bench
    from breakfix.store import Store

    with Store(store_path) as db:
        run_id = db.create_run("eval")
        ctx = bench.EvalContext(target=target, judges=judges, groundedness=grounded, catalog=catalog, store=db,
                                run_id=run_id, preset=preset)
        started = time.perf_counter()
        card = bench.run(ctx, bench.RAI)
        return card, ctx.timing, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", default="quick")
    args = parser.parse_args()

    from breakfix.attacks import load_judges
    from breakfix.data import load_catalog
    from breakfix.judges import load_judge
    from breakfix.paths import home
    from breakfix.targets import load_target

    target, catalog = load_target("smollm2-135m"), load_catalog(home())
    judges, grounded = load_judges(home()), load_judge("groundedness", home())
    with tempfile.TemporaryDirectory() as tmp:
        card, timing, seconds = evaluate(Path(tmp) / "s.db", args.preset, target, judges, grounded, catalog)
        _, warm_timing, warm_seconds = evaluate(Path(tmp) / "s.db", args.preset, target, judges, grounded, catalog)
    items = len({(m.suite, o.item) for m in card.metrics for o in m.outcomes})
    other = seconds - timing.generation_s - timing.judging_s
    print(f"{args.preset} preset, {len(card.metrics)} metrics over {items} scored items, {timing.generated} replies generated")
    print(f"cold: {seconds:.0f} s, {items / seconds:.2f} scored items/s; generation {timing.generation_s:.0f} s "
          f"({100 * timing.generation_s / seconds:.0f}%), judging {timing.judging_s:.0f} s "
          f"({100 * timing.judging_s / seconds:.0f}%), other (log-likelihoods, storing) {other:.0f} s ({100 * other / seconds:.0f}%)")
    print(f"baseline, the same run served from the cache: {warm_seconds:.0f} s ({warm_timing.cached} cached replies); "
          f"ratio cold/cached {seconds / warm_seconds:.1f}x")
    for m in card.metrics:
        print(f"  {m.name:50} {m.estimate}" + (f" ({m.unscoreable} unscoreable)" if m.unscoreable else ""))


if __name__ == "__main__":
    main()
