"""Safety post-training: SFT then DPO, through TRL and PEFT; `post_train` is the one entry point."""

from breakfix.train.post import Candidate, PostTrainResult, post_train
from breakfix.train.trainer import MANIFEST, NonFiniteLoss, Saved, StageResult, complete, dpo, sft, use_bf16

__all__ = ["MANIFEST", "Candidate", "NonFiniteLoss", "PostTrainResult", "Saved", "StageResult", "complete", "dpo",
           "post_train", "sft", "use_bf16"]
