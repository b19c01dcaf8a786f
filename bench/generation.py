"""Local generation against what this CPU can do: the fast path vs today's batched fp32 path.

One run prints, on the embedded SmolLM2-135M, greedy, `--max-new-tokens` new tokens per prompt:
- the machine's matmul GFLOP/s in fp32 and bf16 (all threads; decode-shaped and square), and the
  dtype probe the `hf` target decides by (one thread, cached per machine);
- generated tokens/s of the fast path (the `hf` target as it now loads: probed dtype, default
  batches), of the old batched path (fp32, batch 32, 4096-token batches) on the same prompts, and
  of one prompt at a time through plain `model.generate` (fp32, on the first `--single` prompts);
- the fraction of the arithmetic limit each reaches (square-matmul GFLOP/s of its dtype, see
  `limit_gflops`, over 2 x parameters FLOPs per token), peak RSS per phase, and the share of wall time the process
  had a CPU (a figure far under the thread count means neighbours were sharing the cores);
- how many greedy replies are identical between the fast path and fp32.
The prompts are the first `--n` of the helpful set (breakfix/resources/sets/helpful.jsonl, every
second item, so every domain is in). `--rounds 2` runs both batched paths twice, alternating, and
keeps each one's best. The last line is `fast/batched-fp32 ratio: X` (target >= 3 where bf16 is fast).

    .venv/bin/python bench/generation.py [--n 120] [--max-new-tokens 64] [--single 12] [--rounds 1]
"""

from __future__ import annotations

import argparse
import json
import resource
import threading
import time
from contextlib import contextmanager
from importlib import resources


def prompts(n: int) -> list[str]:
    text = resources.files("breakfix.resources").joinpath("sets/helpful.jsonl").read_text()
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    return [r["prompt"] for r in rows[::2] + rows[1::2]][:n]


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


@contextmanager
def measured():
    """Wall seconds, process CPU seconds and peak RSS (sampled every 20 ms) of the block."""
    result = {"peak_mb": rss_mb()}
    done = threading.Event()

    def watch():
        while not done.wait(0.02):
            result["peak_mb"] = max(result["peak_mb"], rss_mb())

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    cpu, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    try:
        yield result
    finally:
        result["wall_s"] = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_SELF)
        result["cpu_s"] = after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime
        done.set()
        thread.join()


def machine_gflops() -> dict[str, dict[str, float]]:
    """Square (2048^3) and decode-shaped matmul GFLOP/s per dtype, on all threads and on one."""
    import torch

    from breakfix.targets.precision import SHAPES, matmul_gflops

    shapes, threads = {"decode": SHAPES["decode"], "square": (2048, 2048, 2048)}, torch.get_num_threads()
    result = {}
    for n in (threads, 1):
        torch.set_num_threads(n)
        for dt in ("float32", "bfloat16"):
            result[f"{dt}@{n}"] = {label: matmul_gflops(dt, shape, seconds=0.5) for label, shape in shapes.items()}
    torch.set_num_threads(threads)
    return result


def limit_gflops(gflops: dict[str, dict[str, float]], dtype: str) -> float:
    """The arithmetic limit: square-matmul GFLOP/s on all threads, or one thread's times the thread
    count when neighbours on a shared machine held the all-thread figure down."""
    import torch

    threads = torch.get_num_threads()
    return max(gflops[f"{dtype}@{threads}"]["square"], threads * gflops[f"{dtype}@1"]["square"])


def run_target(target, texts, config):
    from breakfix.types import user

    with measured() as m:
        replies = target.chat([user(t) for t in texts], config)
    return replies, sum(r.completion_tokens for r in replies), m


def one_at_a_time(target, texts, max_new_tokens):
    """Plain `model.generate`, one prompt per call, as a newcomer would write it."""
    import torch

    model, tok, eos = target.model, target.tokenizer, set(target._eos)
    tokens = 0
    with measured() as m:
        for text in texts:
            ids = tok.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True,
                                          return_tensors="pt", return_dict=True)
            with torch.inference_mode():
                out = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False,
                                     pad_token_id=tok.pad_token_id)
            new = out[0, ids["input_ids"].shape[1]:].tolist()
            tokens += next((k + 1 for k, t in enumerate(new) if t in eos), len(new))
    return tokens, m


def line(label, tokens, m, gflops, flops_per_token):
    tps = tokens / m["wall_s"]
    limit = gflops * 1e9 / flops_per_token
    print(f"{label:44} {tokens:6d} tokens in {m['wall_s']:6.1f} s = {tps:6.1f} tokens/s, "
          f"{100 * tps / limit:4.1f}% of the {limit:,.0f} tokens/s limit, peak RSS {m['peak_mb']:.0f} MB, "
          f"CPU {m['cpu_s'] / m['wall_s']:.2f} of wall")
    return tps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=120)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--single", type=int, default=12, help="prompts for the one-at-a-time baseline")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()

    import torch

    from breakfix.targets import load_target
    from breakfix.targets.precision import default_cache, probe
    from breakfix.types import GenerationConfig

    gflops = machine_gflops()
    found = probe(default_cache())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; matmul GFLOP/s (dtype@threads) " + "; ".join(
        f"{dt}: " + ", ".join(f"{s} {g:.0f}" for s, g in v.items()) for dt, v in gflops.items()))
    print(f"probe (1 thread, cached per machine): fp32 {found.fp32_gflops}, bf16 {found.bf16_gflops} -> {found.dtype}")

    fast = load_target("smollm2-135m")
    old = load_target("smollm2-135m", dtype="float32", batch_size=32, batch_tokens=4096)
    flops = 2 * sum(p.numel() for p in old.model.parameters())
    texts, config = prompts(args.n), GenerationConfig(max_new_tokens=args.max_new_tokens)
    print(f"{len(texts)} prompts, greedy, max_new_tokens={args.max_new_tokens}, {flops / 1e6:.0f} MFLOP/token; "
          f"fast path: {fast.dtype} ({fast.dtype_reason}), batch {fast.batch_size}, {fast.batch_tokens} tokens; "
          f"RSS after load {rss_mb():.0f} MB")

    best = {}
    for _ in range(args.rounds):
        for label, target in (("fast", fast), ("fp32", old)):
            result = run_target(target, texts, config)
            if label not in best or result[1] / result[2]["wall_s"] > best[label][1] / best[label][2]["wall_s"]:
                best[label] = result
    single_tokens, single_m = one_at_a_time(old, texts[: args.single], args.max_new_tokens)

    fast_tps = line(f"fast path ({fast.dtype}, batch {fast.batch_size})", best["fast"][1], best["fast"][2],
                    limit_gflops(gflops, fast.dtype), flops)
    old_tps = line("batched fp32 (batch 32, the old default)", best["fp32"][1], best["fp32"][2],
                   limit_gflops(gflops, "float32"), flops)
    line(f"one at a time, model.generate ({len(texts[: args.single])} prompts)", single_tokens, single_m,
         limit_gflops(gflops, "float32"), flops)
    same = sum(a.content == b.content for a, b in zip(best["fast"][0], best["fp32"][0]))
    print(f"greedy replies identical between {fast.dtype} and float32: {same} of {len(texts)}")
    print(f"fast/batched-fp32 ratio: {fast_tps / old_tps:.2f}")


if __name__ == "__main__":
    main()
