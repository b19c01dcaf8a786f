"""Thin wrappers over TRL's SFTTrainer and DPOTrainer.

LoRA (PEFT) on every linear layer by default, merged into a plain HF checkpoint (safetensors)
when a stage ends, with the adapter kept beside it; full fine-tuning when `lora` is off. SFT
trains on the final reply only; DPO starts from the SFT result and uses it as the reference
(the LoRA adapter switched off). Seeded. A stage resumes from its last trainer checkpoint. A
NaN or infinite loss stops training with `NonFiniteLoss`. The same code runs under
`accelerate launch` (several processes; only the main one saves).

Candidates: besides each stage's end, the model is saved along training (`candidates`: at the
end of every epoch, or every N steps) under `OUT/candidates/step-N/model`, merged and loadable,
so the loop can choose among them on dev (the trade-off between harm and over-refusal moves
along training; early checkpoints are often the better balance).

Speed on CPU: bf16 autocast where this machine's bf16 matmul measured fast (`precision`); SFT
batches without padding (TRL's padding-free collator; transformers keeps the packed rows apart by
their position ids), the prompts having been cut to `max_length` here, so TRL truncates nothing.

A finished stage is `OUT/model` with `breakfix-checkpoint.json` (weights hash, parent, data
hashes, config, metrics). It is assembled in a temporary directory and renamed into place, the
manifest last, so a failure mid-save (a full disk) never leaves a checkpoint that looks complete.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel

from breakfix.assets import sha256_file
from breakfix.config import TrainConfig
from breakfix.errors import BreakfixError, InputError
from breakfix.train.data import dpo_records, sft_records

MANIFEST = "breakfix-checkpoint.json"
Progress = Callable[[int, int, float | None], None]


class NonFiniteLoss(BreakfixError):
    """The loss became NaN or infinite: the stage stopped (its earlier candidates stand)."""


class Saved(BaseModel):
    """A candidate saved along training: a merged model folder with its manifest."""

    step: int
    epoch: float | None
    path: str
    weights_sha256: str


class StageResult(BaseModel):
    stage: str
    path: str
    weights_sha256: str
    parent: str
    examples: int
    truncated: int
    steps: int
    seconds: float
    losses: list[float]
    train_tokens: int
    candidates: list[Saved] = []
    precision: str = "fp32"
    longest: int = 0            # tokens in the longest example: the max_length actually needed

    @property
    def loss_first(self) -> float | None:
        return self.losses[0] if self.losses else None


def _callback(progress: Progress | None, losses: list[float], out: Path, config: TrainConfig):
    from transformers import TrainerCallback

    every = config.candidates if isinstance(config.candidates, int) else None

    class Watch(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            loss = (logs or {}).get("loss")
            if loss is not None:
                losses.append(float(loss))
                if not math.isfinite(loss):
                    control.should_training_stop = True
            if progress and state.is_world_process_zero:
                progress(state.global_step, state.max_steps, losses[-1] if losses else None)

        def on_step_end(self, args, state, control, model=None, **kwargs):
            if every and state.global_step % every == 0:
                self._keep(state, model)

        def on_epoch_end(self, args, state, control, model=None, **kwargs):
            if config.candidates == "epochs":
                self._keep(state, model)

        def _keep(self, state, model):
            """The weights (the adapter, with LoRA) now; merged once the stage ends. Not the last
            step (that is the stage's own result) nor after a non-finite loss."""
            if state.global_step >= state.max_steps or not state.is_world_process_zero:
                return
            if losses and not math.isfinite(losses[-1]):
                return
            folder = out / "candidates" / f"step-{state.global_step}"
            if not (folder / "weights").exists():
                model.save_pretrained(folder / ".weights")
                (folder / "epoch.json").write_text(json.dumps({"step": state.global_step, "epoch": state.epoch}))
                (folder / ".weights").replace(folder / "weights")

    return Watch()


def use_bf16(config: TrainConfig) -> bool:
    """bf16 autocast: as asked, or (auto) where bf16 is supported on a GPU / measured fast on this CPU."""
    import torch

    if config.precision != "auto":
        return config.precision == "bf16"
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    from breakfix.targets.precision import resolve_dtype

    return resolve_dtype("auto", "cpu")[0] == "bfloat16"


def _load(path: str | Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from breakfix.targets.hf import quiet_transformers

    quiet_transformers()
    _quiet_training()
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype="float32")
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot load a causal LM from {path}: {str(exc).splitlines()[0]}") from None
    if not tokenizer.chat_template:
        raise InputError(f"{path} has no chat template; breakfix post-trains chat models")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def _quiet_training() -> None:
    """No per-dataset progress bars or deprecation chatter from the libraries under us."""
    import warnings

    import datasets

    datasets.disable_progress_bars()
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"(transformers|trl|peft)\.")


def _peft(config: TrainConfig):
    if not config.lora:
        return None
    from peft import LoraConfig

    return LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules="all-linear", task_type="CAUSAL_LM")


def _common_args(out: Path, config: TrainConfig, epochs: float, lr: float, bf16: bool) -> dict:
    import torch

    return dict(output_dir=str(out / "trainer"), num_train_epochs=epochs, learning_rate=lr, max_steps=config.max_steps,
                gradient_checkpointing=config.gradient_checkpointing,
                per_device_train_batch_size=config.batch_size, gradient_accumulation_steps=config.grad_accum,
                logging_steps=1, save_strategy="steps", save_steps=config.save_steps, save_total_limit=1,
                seed=config.seed, data_seed=config.seed, report_to=[], disable_tqdm=True, lr_scheduler_type="cosine",
                warmup_steps=0.05, use_cpu=not torch.cuda.is_available(), dataloader_num_workers=0,
                max_length=config.max_length, bf16=bf16, fp16=False)


def _last_checkpoint(out: Path) -> str | None:
    """The newest complete trainer checkpoint. One cut off mid-save (a kill, a full disk) lacks
    its trainer state or weights: it is removed and the one before it is used."""
    folder = out / "trainer"
    found = sorted(folder.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]) if p.name.split("-")[-1].isdigit() else -1)
    for checkpoint in reversed(found):
        try:
            json.loads((checkpoint / "trainer_state.json").read_text())
            if any(checkpoint.glob("*.safetensors")):
                return str(checkpoint)
        except (OSError, ValueError):
            pass
        shutil.rmtree(checkpoint, ignore_errors=True)
    return None


def sft(base: str | Path, rows: list[dict], out: Path, config: TrainConfig, progress: Progress | None = None) -> StageResult:
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    model, tokenizer = _load(base)
    records, truncated = sft_records(rows, tokenizer, config.max_length)
    bf16 = use_bf16(config)
    # Padding-free: the rows of a batch are laid end to end, no pad tokens computed. TRL then
    # enforces no max_length itself; sft_records has already cut every example to fit.
    common = _common_args(out, config, config.sft_epochs, config.sft_learning_rate, bf16)
    if config.padding_free:
        common["max_length"] = None
    args = SFTConfig(**common, completion_only_loss=True, padding_free=config.padding_free)
    losses: list[float] = []
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(records), processing_class=tokenizer,
                         peft_config=_peft(config), callbacks=[_callback(progress, losses, out, config)])
    return _finish("sft", trainer, tokenizer, base, out, config, records, truncated, losses, bf16)


def dpo(base: str | Path, rows: list[dict], out: Path, config: TrainConfig, progress: Progress | None = None) -> StageResult:
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    model, tokenizer = _load(base)
    records, truncated = dpo_records(rows, tokenizer, config.max_length)
    bf16 = use_bf16(config)
    # TRL 1.16's DPO has no padding-free batches ("temporarily unavailable"): rows are padded.
    args = DPOConfig(**_common_args(out, config, config.dpo_epochs, config.dpo_learning_rate, bf16), beta=config.beta)
    losses: list[float] = []
    # With LoRA and no ref_model, TRL's reference is this model with the adapter off: the SFT result.
    trainer = DPOTrainer(model=model, args=args, train_dataset=Dataset.from_list(records), processing_class=tokenizer,
                         peft_config=_peft(config), callbacks=[_callback(progress, losses, out, config)])
    return _finish("dpo", trainer, tokenizer, base, out, config, records, truncated, losses, bf16)


def _finish(stage, trainer, tokenizer, base, out: Path, config: TrainConfig, records, truncated, losses, bf16) -> StageResult:
    import time

    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # progress goes to our callback, not as printed dicts

    started = time.perf_counter()
    trainer.train(resume_from_checkpoint=_last_checkpoint(out))
    seconds = time.perf_counter() - started
    if any(not math.isfinite(x) for x in losses):
        raise NonFiniteLoss(f"{stage}: the loss became {losses[-1]} at step {trainer.state.global_step}; "
                            "training stopped (try a lower learning rate)")
    tokens, longest = _tokens(trainer)
    result = dict(stage=stage, parent=str(base), examples=len(records), truncated=truncated,
                  steps=trainer.state.global_step, seconds=seconds, losses=losses, train_tokens=tokens,
                  precision="bf16" if bf16 else "fp32", longest=longest)
    saved, sha = [], ""
    if trainer.is_world_process_zero():
        saved = _merge_candidates(base, tokenizer, out, config, result)
        sha = _save(trainer, tokenizer, out, config, {**result, "candidates": [c.model_dump() for c in saved]})
    trainer.accelerator.wait_for_everyone()  # the next stage loads what the main process saved
    return StageResult(path=str(out / "model"), weights_sha256=sha, candidates=saved, **result)


def _merge_candidates(base, tokenizer, out: Path, config: TrainConfig, result: dict) -> list[Saved]:
    """Each candidate saved along training as a plain loadable model (LoRA merged into the base
    this stage started from), with a manifest; done once, so a resumed stage reuses them."""
    from transformers import AutoModelForCausalLM

    saved = []
    for folder in sorted((out / "candidates").glob("step-*"), key=lambda p: int(p.name.split("-")[1])):
        if not complete(folder / "model") and not (folder / "weights").is_dir():
            continue
        info = json.loads((folder / "epoch.json").read_text())
        if not complete(folder / "model"):
            if config.lora:
                from peft import PeftModel

                model = AutoModelForCausalLM.from_pretrained(base, dtype="float32")
                model = PeftModel.from_pretrained(model, folder / "weights").merge_and_unload()
            else:
                model = AutoModelForCausalLM.from_pretrained(folder / "weights", dtype="float32")
            tmp = folder / ".model"
            shutil.rmtree(tmp, ignore_errors=True)
            model.save_pretrained(tmp, safe_serialization=True)
            tokenizer.save_pretrained(tmp)
            sha = sha256_file(tmp / "model.safetensors")
            manifest = {**result, "step": info["step"], "epoch": info["epoch"], "candidate": True,
                        "weights_sha256": sha, "config": config.model_dump(), "lora": config.lora}
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
            tmp.replace(folder / "model")
            shutil.rmtree(folder / "weights", ignore_errors=True)
        manifest = json.loads((folder / "model" / MANIFEST).read_text())
        saved.append(Saved(step=info["step"], epoch=info["epoch"], path=str(folder / "model"),
                           weights_sha256=manifest["weights_sha256"]))
    return saved


def _tokens(trainer) -> tuple[int, int]:
    """Tokens the trainer saw (every token-id column, across epochs), for tokens/s figures, and
    the longest example (prompt and longest reply), the max_length the data actually needs."""
    data = trainer.train_dataset
    columns = [c for c in data.column_names if c.endswith("input_ids") or c.endswith("_ids")]
    per_epoch = sum(len(ids) for c in columns for ids in data[c])
    prompt = [len(x) for x in data["prompt_ids"]] if "prompt_ids" in data.column_names else [0] * len(data)
    replies = [[len(x) for x in data[c]] for c in columns if c != "prompt_ids"]
    longest = max((p + max(r[k] for r in replies) for k, p in enumerate(prompt)), default=0) if replies else 0
    return int(per_epoch * trainer.args.num_train_epochs), longest


def _save(trainer, tokenizer, out: Path, config: TrainConfig, result: dict) -> str:
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=out))
    try:
        model = trainer.model
        if config.lora:
            model.save_pretrained(tmp / "adapter")
            model = model.merge_and_unload()
        model.save_pretrained(tmp / "model", safe_serialization=True)
        tokenizer.save_pretrained(tmp / "model")
        sha = sha256_file(tmp / "model" / "model.safetensors")
        manifest = {**result, "path": str(out / "model"), "weights_sha256": sha, "config": config.model_dump(),
                    "lora": config.lora}
        (tmp / "model" / MANIFEST).write_text(json.dumps(manifest, indent=1))
        for part in ("adapter", "model"):  # the model (with its manifest) last: it is what marks completion
            if (tmp / part).exists():
                shutil.rmtree(out / part, ignore_errors=True)
                (tmp / part).replace(out / part)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(out / "trainer", ignore_errors=True)  # resumable state is no longer needed
    return sha


def complete(path: Path) -> bool:
    """Is this a finished breakfix checkpoint (its manifest written last)?"""
    return (Path(path) / MANIFEST).is_file()
