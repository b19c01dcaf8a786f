"""Safety post-training: SFT then DPO, through TRL and PEFT."""

from breakfix.train.trainer import MANIFEST, StageResult, complete, dpo, sft

__all__ = ["MANIFEST", "StageResult", "complete", "dpo", "sft"]
