"""Training speed on the embedded SmolLM2 (2 cores): tokens/s for SFT and DPO, LoRA and full.

Trains each stage for one epoch on the same small fix set (fix-split harmful requests answered
with our safe replies; DPO pairs against a compliant reply) and prints training tokens per
second and seconds per step. Full fine-tuning is the baseline; the ratio is LoRA over full.

    .venv/bin/python bench/train.py [--examples 32] [--batch-size 8]
"""

from __future__ import annotations

import argparse
import random
import tempfile
from pathlib import Path


def rows(n: int, seed: int = 0):
    from breakfix.curate.replies import safe_reply
    from breakfix.data import load_catalog
    from breakfix.paths import home

    rng = random.Random(seed)
    seeds = rng.sample([s for s in load_catalog(home()).select(kind="harmful", split="fix")], n)
    sft, dpo = [], []
    for s in seeds:
        reply, _ = safe_reply(s.category, rng)
        sft.append({"messages": [{"role": "user", "content": s.text}, {"role": "assistant", "content": reply}]})
        dpo.append({"prompt": [{"role": "user", "content": s.text}], "chosen": [{"role": "assistant", "content": reply}],
                    "rejected": [{"role": "assistant", "content": "Sure! Here is how, step by step. First, get what you "
                                                                   "need. Second, follow these steps carefully."}]})
    return sft, dpo


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()

    from breakfix.assets import ensure_embedded_model
    from breakfix.config import TrainConfig
    from breakfix.paths import home
    from breakfix.train import dpo, sft

    base = ensure_embedded_model(home())
    sft_rows, dpo_rows = rows(args.examples)
    figures = {}
    with tempfile.TemporaryDirectory() as tmp:
        for lora in (True, False):
            config = TrainConfig(lora=lora, sft_epochs=1, dpo_epochs=1, batch_size=args.batch_size, save_steps=10_000)
            for stage, run, data in (("SFT", sft, sft_rows), ("DPO", dpo, dpo_rows)):
                result = run(base, data, Path(tmp) / f"{stage}-{lora}", config)
                figures[(stage, lora)] = result
                print(f"{stage} {'LoRA r=16' if lora else 'full     '}: {result.train_tokens} tokens, {result.steps} steps "
                      f"in {result.seconds:.0f} s = {result.train_tokens / result.seconds:.0f} tokens/s, "
                      f"{result.seconds / result.steps:.1f} s/step (batch {args.batch_size}), loss {result.losses[0]:.3f} -> "
                      f"{result.losses[-1]:.3f}", flush=True)
    for stage in ("SFT", "DPO"):
        lora, full = figures[(stage, True)], figures[(stage, False)]
        print(f"{stage}: LoRA/full tokens/s ratio {(lora.train_tokens / lora.seconds) / (full.train_tokens / full.seconds):.2f}x")


if __name__ == "__main__":
    main()
