"""Thin wrappers over TRL's SFTTrainer and DPOTrainer.

LoRA (PEFT) on every linear layer by default, merged into a plain HF checkpoint (safetensors)
when a stage ends, with the adapter kept beside it; full fine-tuning when `lora` is off. SFT
trains on the final reply only; DPO starts from the SFT result and uses it as the reference
(the LoRA adapter switched off). Seeded. A stage resumes from its last trainer checkpoint. A
NaN or infinite loss stops training with an error. The same code runs under
`accelerate launch` (several processes; only the main one saves).

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

    @property
    def loss_first(self) -> float | None:
        return self.losses[0] if self.losses else None


def _callback(progress: Progress | None, losses: list[float]):
    from transformers import TrainerCallback

    class Watch(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            loss = (logs or {}).get("loss")
            if loss is not None:
                losses.append(float(loss))
                if not math.isfinite(loss):
                    control.should_training_stop = True
            if progress and state.is_world_process_zero:
                progress(state.global_step, state.max_steps, losses[-1] if losses else None)

    return Watch()


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


def _common_args(out: Path, config: TrainConfig, epochs: float, lr: float) -> dict:
    import torch

    return dict(output_dir=str(out / "trainer"), num_train_epochs=epochs, learning_rate=lr, max_steps=config.max_steps,
                gradient_checkpointing=config.gradient_checkpointing,
                per_device_train_batch_size=config.batch_size, gradient_accumulation_steps=config.grad_accum,
                logging_steps=1, save_strategy="steps", save_steps=config.save_steps, save_total_limit=1,
                seed=config.seed, data_seed=config.seed, report_to=[], disable_tqdm=True, lr_scheduler_type="cosine",
                warmup_steps=0.05, use_cpu=not torch.cuda.is_available(), dataloader_num_workers=0,
                max_length=config.max_length, bf16=False, fp16=False)


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
    args = SFTConfig(**_common_args(out, config, config.sft_epochs, config.sft_learning_rate), completion_only_loss=True)
    losses: list[float] = []
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(records), processing_class=tokenizer,
                         peft_config=_peft(config), callbacks=[_callback(progress, losses)])
    return _finish("sft", trainer, tokenizer, base, out, config, records, truncated, losses)


def dpo(base: str | Path, rows: list[dict], out: Path, config: TrainConfig, progress: Progress | None = None) -> StageResult:
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    model, tokenizer = _load(base)
    records, truncated = dpo_records(rows, tokenizer, config.max_length)
    args = DPOConfig(**_common_args(out, config, config.dpo_epochs, config.dpo_learning_rate), beta=config.beta)
    losses: list[float] = []
    # With LoRA and no ref_model, TRL's reference is this model with the adapter off: the SFT result.
    trainer = DPOTrainer(model=model, args=args, train_dataset=Dataset.from_list(records), processing_class=tokenizer,
                         peft_config=_peft(config), callbacks=[_callback(progress, losses)])
    return _finish("dpo", trainer, tokenizer, base, out, config, records, truncated, losses)


def _finish(stage, trainer, tokenizer, base, out: Path, config: TrainConfig, records, truncated, losses) -> StageResult:
    import time

    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # progress goes to our callback, not as printed dicts

    started = time.perf_counter()
    trainer.train(resume_from_checkpoint=_last_checkpoint(out))
    seconds = time.perf_counter() - started
    if any(not math.isfinite(x) for x in losses):
        raise BreakfixError(f"{stage}: the loss became {losses[-1]} at step {trainer.state.global_step}; "
                            "training stopped (try a lower learning rate)")
    tokens = _tokens(trainer)
    result = dict(stage=stage, parent=str(base), examples=len(records), truncated=truncated,
                  steps=trainer.state.global_step, seconds=seconds, losses=losses, train_tokens=tokens)
    sha = _save(trainer, tokenizer, out, config, result) if trainer.is_world_process_zero() else ""
    trainer.accelerator.wait_for_everyone()  # the next stage loads what the main process saved
    return StageResult(path=str(out / "model"), weights_sha256=sha, **result)


def _tokens(trainer) -> int:
    """Tokens the trainer saw (every token-id column, across epochs), for tokens/s figures."""
    data = trainer.train_dataset
    columns = [c for c in data.column_names if c.endswith("input_ids") or c.endswith("_ids")]
    per_epoch = sum(len(ids) for c in columns for ids in data[c])
    return int(per_epoch * trainer.args.num_train_epochs)


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
        manifest = {**result, "weights_sha256": sha, "config": config.model_dump(), "lora": config.lora}
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
