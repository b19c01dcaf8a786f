"""Which floating-point type a local model runs in on this machine, decided by measurement.

CPUs differ from machine to machine: one with AMX or AVX-512 BF16 multiplies bf16 matrices
several times faster than fp32, one without emulates bf16 and is slower. So the choice is not a
constant: a short matmul probe (a fraction of a second) times fp32 against bf16 on a
decode-shaped product (a batch of rows times a weight matrix, what generation does at every
step) and on a square one (what a prompt's prefill does), and bf16 is chosen only when it is
clearly faster on both. The result is cached once per machine under the breakfix home, keyed by
the CPU (model name and feature flags) and the torch version.

`BREAKFIX_DTYPE` (auto | float32 | bfloat16) or a target's `dtype` argument overrides the probe.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from breakfix.errors import TargetError

Dtype = Literal["float32", "bfloat16"]
CHOICES = ("auto", "float32", "bfloat16")
SPEEDUP_NEEDED = 1.5  # bf16 must be at least this much faster on every probed shape
# (rows, inner, out): SmolLM2-135M's MLP up-projection at a decode batch of 32, and a square product.
SHAPES = {"decode": (32, 576, 1536), "square": (512, 512, 512)}


class Probe(BaseModel):
    """What the matmul probe measured on one machine, and what it chose."""

    machine: str
    fp32_gflops: dict[str, float]
    bf16_gflops: dict[str, float]
    dtype: Dtype

    @property
    def speedup(self) -> dict[str, float]:
        return {s: self.bf16_gflops[s] / max(self.fp32_gflops[s], 1e-9) for s in self.fp32_gflops}


def decide(fp32_gflops: dict[str, float], bf16_gflops: dict[str, float], needed: float = SPEEDUP_NEEDED) -> Dtype:
    """bf16 only when it is at least `needed` times faster than fp32 on every shape: a small or
    mixed gain is not worth replies that differ from fp32's."""
    if not fp32_gflops or set(fp32_gflops) != set(bf16_gflops):
        return "float32"
    fast = all(bf16_gflops[s] >= needed * fp32_gflops[s] for s in fp32_gflops)
    return "bfloat16" if fast else "float32"


def matmul_gflops(dtype: Dtype, shape: tuple[int, int, int], seconds: float = 0.1) -> float:
    """GFLOP/s of the fastest of repeated (m x k) @ (k x n) products in `dtype` over about
    `seconds`: the fastest, because on a shared machine a slow call measures the neighbours."""
    import torch

    m, k, n = shape
    a, b = torch.randn(m, k, dtype=getattr(torch, dtype)), torch.randn(k, n, dtype=getattr(torch, dtype))
    for _ in range(2):
        a @ b  # warm-up: the first call picks the kernel
    fastest, started = float("inf"), time.perf_counter()
    while time.perf_counter() - started < seconds:
        begin = time.perf_counter()
        a @ b
        fastest = min(fastest, time.perf_counter() - begin)
    return 2 * m * k * n / fastest / 1e9


def machine_key() -> str:
    """The CPU and torch this probe holds for: model name, a hash of the feature flags (VMs often
    mask the model name; the flags say whether AMX / AVX-512 BF16 are there), torch version.
    Not the thread count: the probe runs on one thread."""
    import torch

    name, flags = "", ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            field, _, value = line.partition(":")
            if field.strip() == "model name" and not name:
                name = value.strip()
            elif field.strip() in ("flags", "Features") and not flags:
                flags = value.strip()
    except OSError:
        pass
    name = name or platform.processor() or platform.machine()
    digest = hashlib.sha256(" ".join(sorted(flags.split())).encode()).hexdigest()[:12]
    return f"{name}|flags:{digest}|torch:{torch.__version__}"


def measure(threads: int = 1) -> Probe:
    """Run the probe now (about half a second), on one thread: the bf16/fp32 ratio is the
    core's, and one thread is not stalled waiting for a sibling that a neighbour's process has
    pre-empted, which on a shared 2-core machine turns a 1 ms product into 8 ms."""
    import torch

    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        fp32 = {label: matmul_gflops("float32", shape) for label, shape in SHAPES.items()}
        bf16 = {label: matmul_gflops("bfloat16", shape) for label, shape in SHAPES.items()}
    finally:
        torch.set_num_threads(saved)
    return Probe(machine=machine_key(), fp32_gflops=fp32, bf16_gflops=bf16, dtype=decide(fp32, bf16))


def probe(cache: Path | None) -> Probe:
    """This machine's probe: from `cache` (a JSON file of probes by machine key) when it holds
    one for this machine, else measured now and written there."""
    key = machine_key()
    known: dict = {}
    if cache is not None and cache.is_file():
        try:
            known = json.loads(cache.read_text())
        except (OSError, ValueError):
            known = {}
    if key in known:
        try:
            return Probe.model_validate(known[key])
        except ValueError:
            pass
    result = measure()
    if cache is not None:
        known[key] = result.model_dump()
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(known, indent=1, sort_keys=True))
            tmp.replace(cache)
        except OSError:
            pass  # a read-only home only costs a probe per process
    return result


def default_cache() -> Path:
    from breakfix.paths import home

    return home() / "dtype-probe.json"


def resolve_dtype(requested: str | None = None, device: str = "cpu", cache: Path | None = None) -> tuple[Dtype, str]:
    """The dtype to run in and why. `requested` (else `BREAKFIX_DTYPE`, else "auto"): float32 or
    bfloat16 as asked; auto is bf16 on a GPU, and on a CPU what the probe chose."""
    choice = (requested or os.environ.get("BREAKFIX_DTYPE") or "auto").strip().lower()
    aliases = {"fp32": "float32", "bf16": "bfloat16"}
    choice = aliases.get(choice, choice)
    if choice not in CHOICES:
        raise TargetError(f"dtype {choice!r}: use one of {', '.join(CHOICES)} (or BREAKFIX_DTYPE)")
    if choice != "auto":
        return choice, "asked for"  # type: ignore[return-value]
    if device != "cpu":
        return "bfloat16", f"auto: {device}"
    found = probe(cache if cache is not None else default_cache())
    speed = ", ".join(f"{s} {x:.1f}x" for s, x in found.speedup.items())
    return found.dtype, f"auto: bf16/fp32 matmul {speed}"
