"""Training speed on the embedded SmolLM2 (2 cores): fp32 against bf16 autocast (steps/s and the
loss curve of each on the same data, which must fall alike), then tokens/s for SFT and DPO, LoRA
and full.

Trains each stage for one epoch on the same small fix set (fix-split harmful requests answered
with our safe replies; DPO pairs against a compliant reply) and prints training tokens per
second and seconds per step. Full fine-tuning is the baseline; the ratio is LoRA over full.

    .venv/bin/python bench/train.py [--examples 32] [--batch-size 8] [--precision-only] [--epochs 2]
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


def precision(base, sft_rows, examples: int, batch: int, epochs: float, tmp: str) -> None:
    """fp32 against bf16 autocast on the same data and seed: steps/s and the loss curve of each."""
    from breakfix.config import TrainConfig
    from breakfix.train import sft
    from breakfix.train.trainer import use_bf16

    print(f"bf16 on this machine by the matmul probe: {use_bf16(TrainConfig())}", flush=True)
    results = {}
    for name, free in (("fp32", True), ("bf16", True), ("bf16 padded", False)):
        config = TrainConfig(precision=name.split()[0], sft_epochs=epochs, batch_size=batch, save_steps=10_000,
                             candidates="final", padding_free=free)
        r = sft(base, sft_rows[:examples], Path(tmp) / f"precision-{name.replace(' ', '-')}", config)
        results[name] = r
        print(f"SFT LoRA {name}: {r.steps} steps in {r.seconds:.1f} s = {r.steps / r.seconds:.3f} steps/s, "
              f"{r.train_tokens / r.seconds:.0f} tokens/s, longest example {r.longest} tokens", flush=True)
        print(f"  loss curve {name}: " + " ".join(f"{x:.3f}" for x in r.losses), flush=True)
    a, b = results["fp32"], results["bf16"]
    drop = lambda r: r.losses[0] - r.losses[-1]  # noqa: E731
    print(f"loss drop fp32 {drop(a):.3f}, bf16 {drop(b):.3f}; largest per-step gap "
          f"{max(abs(x - y) for x, y in zip(a.losses, b.losses)):.3f}")
    padded = results["bf16 padded"]
    print(f"bf16 padding-free/padded steps/s ratio: {(b.steps / b.seconds) / (padded.steps / padded.seconds):.2f}")
    print(f"bf16/fp32 steps/s ratio: {(b.steps / b.seconds) / (a.steps / a.seconds):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--precision-only", action="store_true", help="Only fp32 vs bf16 (SFT, LoRA).")
    parser.add_argument("--epochs", type=float, default=2.0, help="SFT epochs of the precision comparison.")
    args = parser.parse_args()

    from breakfix.assets import ensure_embedded_model
    from breakfix.config import TrainConfig
    from breakfix.paths import home
    from breakfix.train import dpo, sft

    base = ensure_embedded_model(home())
    sft_rows, dpo_rows = rows(args.examples)
    figures = {}
    with tempfile.TemporaryDirectory() as tmp:
        precision(base, sft_rows, args.examples, args.batch_size, args.epochs, tmp)
        if args.precision_only:
            return
        for lora in (True, False):
            config = TrainConfig(lora=lora, sft_epochs=1, dpo_epochs=1, batch_size=args.batch_size, save_steps=10_000,
                                 candidates="final")
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
