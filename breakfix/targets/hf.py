"""A local Hugging Face causal LM behind the `Target` interface.

Prompts are rendered with the model's chat template, sorted by length and generated in
left-padded batches cut to a token budget (up to 128 rows): on 2 CPU cores batching produces
about ten times the tokens per second of one prompt at a time. The weights run in bf16 where a
short matmul probe finds the CPU does bf16 clearly faster than fp32 (AMX, AVX-512 BF16), else in
fp32; `dtype=` or `BREAKFIX_DTYPE` overrides it (targets/precision.py). bench/generation.py
prints the figures.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from breakfix.errors import TargetError
from breakfix.targets.base import check_conversation, cut_at_stop, recorded_manifest, register_target, with_system
from breakfix.targets.gate import load_gate, prompt_states
from breakfix.targets.precision import resolve_dtype
from breakfix.types import Conversation, GenerationConfig, Reply


def quiet_transformers() -> None:
    """Silence transformers' per-load progress bars and advisory warnings in our output."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


class HFTarget:
    def __init__(
        self,
        path: str | Path,
        *,
        name: str | None = None,
        batch_size: int = 128,
        batch_tokens: int = 16384,
        device: str | None = None,
        dtype: str | None = None,
    ):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        quiet_transformers()
        self.path = str(path)
        self.name = name or f"hf:{path}"
        self.batch_size = batch_size
        self.batch_tokens = batch_tokens
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.dtype, self.dtype_reason = resolve_dtype(dtype, self.device.split(":")[0])
        self.backend = f"torch:{self.device}:{self.dtype}"  # keys the reply cache beside the weights
        local = Path(path).expanduser().is_dir()
        if not local and os.environ.get("BREAKFIX_ONLINE") != "1":
            raise TargetError(
                f"model directory {path} does not exist (to load a hub model by name, set BREAKFIX_ONLINE=1)"
            )
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=local)
            self.model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, self.dtype),
                                                              local_files_only=local)
        except (OSError, ValueError) as exc:
            raise TargetError(f"cannot load a causal LM from {path}: {str(exc).splitlines()[0]}") from exc
        if not self.tokenizer.chat_template:
            raise TargetError(f"{path} has no chat template; breakfix needs a chat model")
        self.model.to(self.device).eval()
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self._eos = self._eos_ids()
        self.context = getattr(self.model.config, "max_position_embeddings", None) or 2048
        self.gate = load_gate(path) if local else None  # a refusal gate saved beside the weights (targets/gate.py)

    @cached_property
    def fingerprint(self) -> str:
        """What identifies these weights (and the refusal gate beside them, if any): cached
        replies of the ungated model are not the gated model's."""
        weights = self.weights_fingerprint
        return f"{weights}+gate:{self.gate.digest()}" if self.gate else weights

    @cached_property
    def weights_fingerprint(self) -> str:
        """The weights alone (no gate): the recorded hash of a breakfix-made checkpoint, else a
        hash of the safetensors files."""
        path = Path(self.path)
        recorded = (recorded_manifest(path) or {}).get("weights_sha256") if path.is_dir() else None
        if recorded:
            return f"sha256:{recorded}"
        digest = hashlib.sha256()
        for weights in sorted(path.glob("*.safetensors")) if path.is_dir() else []:
            with open(weights, "rb") as f:
                for block in iter(lambda: f.read(1 << 22), b""):
                    digest.update(block)
        return f"sha256:{digest.hexdigest()}" if path.is_dir() else f"hub:{self.path}"

    def loglikelihood(self, texts: Sequence[str], batch_size: int = 32) -> list[float]:
        """Mean log-probability per token of each text, as plain text (no chat template): the
        judge-free capability measure, in the dtype the target generates in. Right-padded, so
        positions are as in the unpadded text; log-softmax in fp32 whatever the weights' dtype."""
        import torch

        means: list[float] = []
        for start in range(0, len(texts), batch_size):
            enc = self.tokenizer(list(texts[start : start + batch_size]), return_tensors="pt", padding=True,
                                 padding_side="right").to(self.device)
            with torch.inference_mode():
                logits = self.model(**enc).logits[:, :-1].float()
            target, mask = enc["input_ids"][:, 1:], enc["attention_mask"][:, 1:].float()
            token = torch.log_softmax(logits, -1).gather(-1, target[..., None]).squeeze(-1) * mask
            means += (token.sum(1) / mask.sum(1).clamp(min=1)).tolist()
        return means

    def _eos_ids(self) -> list[int]:
        eos = self.model.generation_config.eos_token_id
        ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if self.tokenizer.eos_token_id is not None:
            ids.add(self.tokenizer.eos_token_id)
        return sorted(ids)

    def encode(self, conversation: Conversation, config: GenerationConfig) -> list[int]:
        """Token ids of the chat-templated conversation, ready for the assistant's turn."""
        check_conversation(conversation)
        messages = [m.model_dump() for m in with_system(conversation, config)]
        text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def chat(self, conversations: Sequence[Conversation], config: GenerationConfig, *, gated: bool = True) -> list[Reply]:
        """Replies in order. `gated=False` answers every request with the weights, as the
        ungated model would (the reply cache reuses those for a gated model's unflagged requests)."""
        encoded, replies = self._fitted(conversations, config)
        if self.gate is not None and gated:
            self._refuse_gated(encoded, replies)
        order = sorted((i for i, r in enumerate(replies) if r is None), key=lambda i: -len(encoded[i]))
        for salt, batch in enumerate(self._batches(order, encoded, config.max_new_tokens)):
            for i, reply in zip(batch, self._generate([encoded[i] for i in batch], config, salt)):
                replies[i] = reply
        return replies  # type: ignore[return-value]

    def gate_replies(self, conversations: Sequence[Conversation], config: GenerationConfig) -> list[Reply | None]:
        """The gate's refusal for each request it flags; None for the rest, which the weights
        answer (a prompt too long for the context included: `chat` reports it)."""
        encoded, replies = self._fitted(conversations, config)
        fits = [r is None for r in replies]
        if self.gate is not None:
            self._refuse_gated(encoded, replies)
        return [r if fit else None for fit, r in zip(fits, replies)]

    def _fitted(self, conversations: Sequence[Conversation], config: GenerationConfig) -> tuple[list[list[int]], list[Reply | None]]:
        """The encoded prompts, and an error reply for each that leaves no room for the reply."""
        encoded = [self.encode(c, config) for c in conversations]
        replies: list[Reply | None] = [None] * len(encoded)
        room = self.context - config.max_new_tokens
        for i, ids in enumerate(encoded):
            if len(ids) > room:
                replies[i] = Reply(finish_reason="error", prompt_tokens=len(ids),
                                   error=f"prompt of {len(ids)} tokens does not fit the context of {self.context}")
        return encoded, replies

    def gate_probability(self, encoded: Sequence[Sequence[int]]) -> list[float]:
        """The gate's probability that each (encoded) request is one to refuse."""
        if self.gate is None or not encoded:
            return [0.0] * len(encoded)
        states = prompt_states(self.model, self.tokenizer, encoded, self.gate.layers, self.batch_tokens)
        return self.gate.probability(states).tolist()

    def _refuse_gated(self, encoded: list[list[int]], replies: list[Reply | None]) -> None:
        """Our refusal for every request the gate reads at or above its threshold."""
        live = [i for i, r in enumerate(replies) if r is None]
        started = time.perf_counter()
        for i, p in zip(live, self.gate_probability([encoded[i] for i in live])):
            if p >= self.gate.threshold:
                replies[i] = Reply(content=self.gate.reply(encoded[i]), finish_reason="stop", prompt_tokens=len(encoded[i]),
                                   completion_tokens=0, latency_s=time.perf_counter() - started)

    def _batches(self, order: list[int], encoded: list[list[int]], new_tokens: int) -> list[list[int]]:
        """Longest first, cut so that rows x (longest prompt + new tokens) stays within
        `batch_tokens`: one long jailbreak template must not pad thirty short prompts to its length."""
        batches: list[list[int]] = []
        for i in order:
            if batches and len(batches[-1]) < self.batch_size and \
                    (len(batches[-1]) + 1) * (len(encoded[batches[-1][0]]) + new_tokens) <= self.batch_tokens:
                batches[-1].append(i)
            else:
                batches.append([i])
        return batches

    def _generate(self, batch: list[list[int]], config: GenerationConfig, salt: int) -> list[Reply]:
        import torch

        started = time.perf_counter()
        enc = self.tokenizer.pad({"input_ids": batch}, return_tensors="pt").to(self.device)
        kwargs: dict[str, Any] = dict(
            max_new_tokens=config.max_new_tokens,
            eos_token_id=self._eos,
            pad_token_id=self.tokenizer.pad_token_id,
            do_sample=not config.greedy,
        )
        if not config.greedy:
            kwargs.update(temperature=config.temperature, top_p=config.top_p, top_k=0)
            torch.manual_seed(config.seed + salt)
        else:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        if config.stop:
            kwargs.update(stop_strings=list(config.stop), tokenizer=self.tokenizer)
        with torch.inference_mode():
            out = self.model.generate(**enc, **kwargs)
        latency = time.perf_counter() - started
        new = out[:, enc["input_ids"].shape[1] :].tolist()
        return [self._reply(ids, len(prompt), config, latency) for ids, prompt in zip(new, batch)]

    def _reply(self, ids: list[int], n_prompt: int, config: GenerationConfig, latency: float) -> Reply:
        end = next((k for k, t in enumerate(ids) if t in self._eos), None)
        kept = ids if end is None else ids[:end]
        text = self.tokenizer.decode(kept, skip_special_tokens=True)
        text, stopped = cut_at_stop(text, config.stop)
        finish = "stop" if end is not None or stopped else "length"
        used = len(kept) + (end is not None)
        return Reply(content=text.strip(), finish_reason=finish, prompt_tokens=n_prompt,
                     completion_tokens=used, latency_s=latency)


@register_target("hf")
def _factory(rest: str, **options: Any) -> HFTarget:
    if not rest:
        raise TargetError("hf: needs a path, e.g. hf:./checkpoints/round-1")
    return HFTarget(rest, **options)
