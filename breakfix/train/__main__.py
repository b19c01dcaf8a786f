"""`python -m breakfix.train STAGE BASE DATA OUT CONFIG`: one training stage (sft or dpo) in
processes of its own, for the loop's `train.launcher` (say `accelerate launch --num_processes 4`
on a GPU machine). The result is the checkpoint at OUT/model with its manifest."""

from __future__ import annotations

import sys
from pathlib import Path

from breakfix.config import TrainConfig
from breakfix.train.data import read_rows
from breakfix.train.trainer import dpo, sft


def main(argv: list[str]) -> None:
    stage, base, data, out, config = argv
    settings = TrainConfig.model_validate_json(Path(config).read_text(encoding="utf-8"))

    def progress(step: int, total: int, loss: float | None) -> None:
        print(f"{stage} step {step}/{total}" + ("" if loss is None else f" loss {loss:.4f}"), file=sys.stderr, flush=True)

    (sft if stage == "sft" else dpo)(base, read_rows(Path(data), stage), Path(out), settings, progress)


if __name__ == "__main__":
    main(sys.argv[1:])
