"""The break-fix loop end to end: where the time goes and what it bought.

Runs a recipe (default `recipes/quick.yaml`, what `make run` does) on a fresh store, or reads a
finished run with `--run RUN --store S`, and prints each step's wall time, the total, and the
round-by-round figures on the eval split with each round's harmful-response rate as a ratio of
the base model's (measured in the same run), VPRR change in points and capability retention.

    .venv/bin/python bench/loop.py [--recipe recipes/quick.yaml] [--run RUN --store S]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path


def seconds(start: str, end: str | None) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds() if end else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipe", default="recipes/quick.yaml")
    parser.add_argument("--run")
    parser.add_argument("--store", type=Path)
    args = parser.parse_args()

    from breakfix.report import rounds
    from breakfix.store import Store

    store = args.store or Path(tempfile.mkdtemp(prefix="bench-loop-")) / "s.db"
    if not args.run:
        subprocess.run([str(Path(sys.executable).parent / "breakfix"), "run", "--config", args.recipe, "--store", str(store)],
                       check=True)
    with Store(store) as db:
        run = db.run(args.run) if args.run else next(r for r in db.runs() if r.kind == "cycle")
        steps = db.steps(run.id)
        views = rounds(db, run.id)
    print(f"run {run.id} ({run.status})")
    print(f"{'step':<16}{'tries':>6}{'minutes':>9}")
    for s in steps:
        print(f"r{s.round}.{s.phase:<13}{s.tries:>6}{seconds(s.started_at, s.finished_at) / 60:>9.1f}")
    print(f"total wall time: {seconds(run.created_at, run.finished_at) / 60:.1f} min "
          "(includes time a killed run lay stopped)")
    base = views[0].figures
    print(f"\n{'round':<7}{'harmful %':>10}{'x base':>8}{'VPRR %':>8}{'Δ pts':>7}{'capability %':>14}{'retention':>11}")
    for v in views:
        f = v.figures
        if f is None:
            print(f"{v.round:<7}{'-':>10}  {v.decision}")
            continue
        ratio = f.harmful.value / base.harmful.value if base.harmful.value else float("nan")
        dv = 100 * (f.vprr.value - base.vprr.value) if f.vprr and base.vprr else float("nan")
        kept = f.capability.value / base.capability.value if f.capability and base.capability else float("nan")
        print(f"{v.round:<7}{100 * f.harmful.value:>10.1f}{ratio:>8.2f}{100 * f.vprr.value:>8.1f}{dv:>+7.1f}"
              f"{100 * f.capability.value:>14.1f}{kept:>11.1%}  {v.decision or 'base'}")


if __name__ == "__main__":
    main()
