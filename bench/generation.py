"""Batched `hf` target vs one prompt at a time through plain `model.generate`.

Same model object, same 64 prompts, greedy, same max_new_tokens, in one process. Prints
generated tokens/s for each, their ratio (target: >= 5x on 2 cores) and peak RSS per phase.

    .venv/bin/python bench/generation.py [--n 64] [--max-new-tokens 64] [--batch-size 32]
"""

from __future__ import annotations

import argparse
import threading
import time
from contextlib import contextmanager

TOPICS = ["the moon", "volcanoes", "honey bees", "the Roman empire", "photosynthesis", "jazz music",
          "black holes", "the printing press", "coral reefs", "electric cars", "the human heart", "chess",
          "rainbows", "the internet", "penguins", "bread baking"]
FORMS = ["Tell me two facts about {}.", "Explain {} to a ten-year-old.", "Write a short poem about {}.",
         "What is the history of {}?"]


def prompts(n: int) -> list[str]:
    return [form.format(topic) for form in FORMS for topic in TOPICS][:n]


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


@contextmanager
def peak_rss():
    """Sample RSS every 20 ms while the block runs; yields a dict that gets 'peak_mb'."""
    result = {"peak_mb": rss_mb()}
    done = threading.Event()

    def watch():
        while not done.wait(0.02):
            result["peak_mb"] = max(result["peak_mb"], rss_mb())

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield result
    finally:
        done.set()
        thread.join()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    import torch

    from breakfix.targets import load_target
    from breakfix.types import GenerationConfig, user

    target = load_target("smollm2-135m", batch_size=args.batch_size)
    texts = prompts(args.n)
    config = GenerationConfig(max_new_tokens=args.max_new_tokens)
    print(f"{len(texts)} prompts, greedy, max_new_tokens={args.max_new_tokens}, "
          f"torch threads={torch.get_num_threads()}, RSS after load {rss_mb():.0f} MB")

    with peak_rss() as batched_rss:
        started = time.perf_counter()
        replies = target.chat([user(t) for t in texts], config)
        batched_s = time.perf_counter() - started
    batched_tokens = sum(r.completion_tokens for r in replies)

    model, tok = target.model, target.tokenizer
    eos = set(target._eos)
    with peak_rss() as single_rss:
        started = time.perf_counter()
        single_tokens = 0
        for text in texts:
            ids = tok.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True,
                                          return_tensors="pt", return_dict=True)
            with torch.inference_mode():
                out = model.generate(**ids, max_new_tokens=args.max_new_tokens, do_sample=False,
                                     pad_token_id=tok.pad_token_id)
            new = out[0, ids["input_ids"].shape[1]:].tolist()
            single_tokens += next((k + 1 for k, t in enumerate(new) if t in eos), len(new))
        single_s = time.perf_counter() - started

    batched_tps, single_tps = batched_tokens / batched_s, single_tokens / single_s
    print(f"batched hf target (batch {args.batch_size}): {batched_tokens} tokens in {batched_s:.1f} s = "
          f"{batched_tps:.1f} tokens/s, peak RSS {batched_rss['peak_mb']:.0f} MB")
    print(f"one at a time, model.generate:  {single_tokens} tokens in {single_s:.1f} s = "
          f"{single_tps:.1f} tokens/s, peak RSS {single_rss['peak_mb']:.0f} MB")
    print(f"ratio: {batched_tps / single_tps:.1f}x (target >= 5x)")


if __name__ == "__main__":
    main()
