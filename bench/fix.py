"""The recipe's fix-data balance, measured: the same safety examples trained with benign
look-alikes at several benign:harmful ratios, with and without the contrastive DPO pairs, each
scored on the dev selection set (never eval) next to the base model. The catalog is split by the
recipe's `data.ratios`, as the loop splits it.

Safety examples: the loop's floor (`curate._attacked` with no red-team targets): fix-split
harmful requests of every category, asked in each of the recipe's floor techniques, answered with
our refusal texts (SFT). Then `curate`'s contrast step adds look-alikes at each ratio and the
safety DPO pairs (our refusal preferred to the model's own reply where it complied); the
model's answers are generated once and reused across settings. Prints per setting: examples, training seconds, pooled harmful
DR-1 on dev (direct + jailbreak + multi-turn), VPRR on dev look-alikes, helpfulness, capability.

    .venv/bin/python bench/fix.py [--ratios 0.5,1,2] [--per-category N] [--ablate] [--lr 5e-4,5e-4] [--every N]
                                [--blends 0.25,0.5,0.75] [--scales 0.35,0.5] [--recipe recipes/quick.yaml]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path


class Memo:
    """The base model's replies, kept across settings: each prompt is answered once."""

    def __init__(self, target):
        self.target, self.seen = target, {}
        self.name, self.fingerprint = target.name, target.fingerprint

    def chat(self, prompts, config):
        keys = [(str([m.model_dump() for m in p]), config.model_dump_json()) for p in prompts]
        todo = [k for k, key in enumerate(keys) if key not in self.seen]
        for k, reply in zip(todo, self.target.chat([prompts[k] for k in todo], config) if todo else []):
            self.seen[keys[k]] = reply
        return [self.seen[key] for key in keys]


def safety(catalog, config, per_category: int, rng: random.Random):
    """The loop's safety floor without a red-team run: `per_category` fix-split requests of every
    harm category for each of the recipe's floor techniques, answered with our refusal texts.
    `curate`'s contrast step then answers them with the model (safety DPO pairs)."""
    from breakfix.curate.fix import FixData, _attacked
    from breakfix.curate.vulnerabilities import Ranking

    fix = FixData(ranking=Ranking(threshold=0.0, min_attempts=1, vulnerabilities=[]))
    _attacked(fix, fix.ranking, catalog, rng, config.model_copy(update={"floor": per_category}))
    return fix


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ratios", default="0.5,1,2", help="benign look-alikes per safety example")
    parser.add_argument("--per-category", type=int,
                        help="harmful fix-split requests per harm category and floor technique (default: the recipe's floor)")
    parser.add_argument("--ablate", action="store_true", help="also the last ratio without contrastive DPO")
    parser.add_argument("--retention", type=float, help="retention examples per safety example (default: the recipe's)")
    parser.add_argument("--sft-epochs", type=float, help="SFT epochs (default: the recipe's)")
    parser.add_argument("--every", type=int, help="also a candidate every N training steps (default: the recipe's)")
    parser.add_argument("--lr", help="SFT,DPO learning rates, e.g. 5e-4,5e-4 (default: the recipe's)")
    parser.add_argument("--blends", help="also SFT-DPO blends at these weights, e.g. 0.25,0.5,0.75 (default: the recipe's)")
    parser.add_argument("--scales", help="also the update scaled from the start, e.g. 0.35,0.5 (default: the recipe's)")
    parser.add_argument("--probes", help="also with on-policy DPO pairs from this many probes per safety example, "
                        "e.g. 0,1 (default: the recipe's probe_ratio)")
    parser.add_argument("--recipe", default="recipes/quick.yaml")
    args = parser.parse_args()

    from breakfix.config import CycleConfig, TrainConfig, load_yaml
    from breakfix.curate.fix import _contrast, _instructions, _probes
    from breakfix.curate.on_policy import refresher
    from breakfix.data import load_catalog
    from breakfix.judges.joint import load_judges
    from breakfix.paths import home
    from breakfix.selection import score
    from breakfix.targets import load_target
    from breakfix.targets.base import local_path
    from breakfix.train import post_train
    from breakfix.types import GenerationConfig

    recipe = load_yaml(Path(args.recipe), CycleConfig)
    root, catalog = home(), load_catalog(home(), recipe.data)
    judges = load_judges(root)
    base = Memo(load_target(recipe.model))
    print(f"base {recipe.model}: scoring on the dev selection set", flush=True)
    rows = [("base", 0, 0, 0.0, score(base.target, judges, catalog, recipe.select, recipe.seed, "bench-fix"))]
    core = safety(catalog, recipe.curate, args.per_category or recipe.curate.floor, random.Random(recipe.seed))
    probing = [float(p) for p in args.probes.split(",")] if args.probes else [recipe.curate.probe_ratio]
    settings = [(float(r), True, p) for r in args.ratios.split(",") for p in probing]
    if args.ablate:
        settings.append((settings[-1][0], False, settings[-1][2]))
    train = recipe.train.model_copy(update={"sft_epochs": args.sft_epochs or recipe.train.sft_epochs})
    if args.every:
        train = train.model_copy(update={"candidates": args.every})
    for option in ("blends", "scales"):
        if getattr(args, option):
            try:
                weights = [float(w) for w in getattr(args, option).split(",")]
                train = TrainConfig.model_validate({**train.model_dump(), option: weights})
            except ValueError as exc:  # pydantic's ValidationError is one
                parser.error(f"--{option}: {exc}")
    if args.lr:
        sft_lr, dpo_lr = (float(x) for x in args.lr.split(","))
        train = train.model_copy(update={"sft_learning_rate": sft_lr, "dpo_learning_rate": dpo_lr})
    retention = recipe.curate.retention_ratio if args.retention is None else args.retention
    for ratio, contrastive, probes in settings:
        name = f"benign {ratio:g}:1" + ("" if contrastive else ", no contrastive DPO") + (f", probes {probes:g}" if probes else "")
        fix = core.model_copy(deep=True)
        config = recipe.curate.model_copy(update={"benign_ratio": ratio, "contrastive_dpo": contrastive, "probe_ratio": probes})
        rng = random.Random(recipe.seed)
        _contrast(fix, catalog, base, judges, rng, config, _instructions(fix, catalog, rng, round(retention * len(core.sft))))
        _probes(fix, catalog, base, judges, config)
        print(f"{name}: {len(fix.sft)} SFT, {len(fix.dpo)} DPO, {len(fix.probes)} probes; training", flush=True)
        with tempfile.TemporaryDirectory(prefix="bench-fix-") as folder:
            refresh = refresher(fix.probes, lambda path: load_target(f"hf:{path}"), judges,
                                GenerationConfig(max_new_tokens=config.max_new_tokens, seed=recipe.seed), Path(folder),
                                lambda text: print(f"  {text}", flush=True))
            started = time.perf_counter()
            result = post_train(local_path(recipe.model), [e.model_dump(mode="json") for e in fix.sft],
                                [e.model_dump(mode="json") for e in fix.dpo], Path(folder), train,
                                refresh=refresh)
            seconds = time.perf_counter() - started
            for stage in result.stages.values():  # a loss that never leaves its start learnt nothing
                k = max(1, len(stage.losses) // 4)
                print(f"  {stage.stage}: {stage.steps} steps, loss {sum(stage.losses[:k]) / k:.3f} (first quarter) -> "
                      f"{sum(stage.losses[-k:]) / k:.3f} (last quarter)", flush=True)
            for c in result.candidates:  # every point the loop would choose from
                trained = load_target(f"hf:{c.path}")
                rows.append((f"{name} [{c.name}]", len(fix.sft), len(fix.dpo), seconds,
                             score(trained, judges, catalog, recipe.select, recipe.seed, "bench-fix")))
    print(f"\n{'setting':44} {'SFT':>4} {'DPO':>4} {'train s':>7} {'harmful':>8} {'VPRR':>6} {'helpful':>8} {'capab.':>7}")
    for name, n_sft, n_dpo, seconds, card in rows:
        def pct(key):
            m = card.metric(key)
            return "-" if m is None or m.estimate.value is None else f"{100 * m.estimate.value:.1f}"
        pooled = [o.value >= 0.5 for k in ("harm_single_turn.dr1", "jailbreak.dr1", "harm_multi_turn.dr1")
                  if card.metric(k) for o in card.metric(k).outcomes]
        harmful = f"{100 * sum(pooled) / len(pooled):.1f}" if pooled else "-"
        print(f"{name:44} {n_sft:4} {n_dpo:4} {seconds:7.0f} {harmful:>8} {pct('over_refusal.vprr'):>6} "
              f"{pct('capability.helpfulness'):>8} {pct('capability.accuracy'):>7}")


if __name__ == "__main__":
    main()
