"""Red-team campaign speed on the embedded model: attempts/s and judged turns/s.

Runs a campaign (default: 200 attempts, intermediate persona, about one batch of 32 in flight)
and, as the baseline in the same run, the same campaign's first attempts with one attempt in
flight at a time; prints both and their ratio. `--compare-uniform` also runs the campaign with
the uniform scheduler and prints both success counts (costs a second campaign's time).

    .venv/bin/python bench/redteam.py [--budget 200] [--persona intermediate] [--compare-uniform]
"""

from __future__ import annotations

import argparse


def campaign(target, judges, catalog, persona_name: str, **config):
    from breakfix.attacks.campaign import Campaign, harmful_seeds, persona_templates, run
    from breakfix.attacks.personas import load_persona
    from breakfix.config import RedteamConfig

    cfg = RedteamConfig(persona=persona_name, **config)
    persona = load_persona(persona_name)
    c = Campaign("bench", target, judges, persona, cfg, harmful_seeds(catalog, cfg), persona_templates(catalog, persona, cfg))
    return run(c)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget", type=int, default=200)
    parser.add_argument("--persona", default="intermediate")
    parser.add_argument("--baseline-budget", type=int, default=12)
    parser.add_argument("--compare-uniform", action="store_true")
    args = parser.parse_args()

    from breakfix.attacks import load_judges
    from breakfix.data import load_catalog
    from breakfix.paths import home
    from breakfix.targets import load_target

    target, judges, catalog = load_target("smollm2-135m"), load_judges(home()), load_catalog(home())
    main_run = campaign(target, judges, catalog, args.persona, budget=args.budget, batch=32)
    base = campaign(target, judges, catalog, args.persona, budget=args.baseline_budget, batch=1)
    rate = main_run.attempts / main_run.seconds
    base_rate = base.attempts / base.seconds
    print(f"campaign ({args.persona}, {main_run.attempts} attempts, 32 in flight): {main_run.seconds:.0f} s, "
          f"{rate:.3f} attempts/s, {main_run.judged_turns / main_run.seconds:.2f} judged turns/s, "
          f"{main_run.successes} successes, {main_run.findings} findings")
    print(f"baseline (first {base.attempts} attempts, one in flight): {base_rate:.3f} attempts/s, "
          f"{base.judged_turns / base.seconds:.2f} judged turns/s")
    print(f"ratio: {rate / base_rate:.1f}x attempts/s")
    for title, cells, name in (("by technique", main_run.by_technique, lambda c: c.technique),
                               ("by category", main_run.by_category, lambda c: c.category)):
        print(f"ASR {title}:")
        for cell in sorted(cells, key=lambda c: -(c.asr.value or 0)):
            print(f"  {name(cell):32} {cell.successes:3}/{cell.attempts:<3} {cell.asr}")
    if args.compare_uniform:
        uniform = campaign(target, judges, catalog, args.persona, budget=args.budget, batch=32, scheduler="uniform")
        print(f"successes in {args.budget} attempts: adaptive {main_run.successes}, uniform {uniform.successes}")


if __name__ == "__main__":
    main()
