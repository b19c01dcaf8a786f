"""The loop's training phase under `train.launcher`: each stage in processes of its own
(accelerate, two CPU processes here), with the checkpoints recorded in the loop's store."""

import json
import sys

from breakfix.config import CycleConfig
from breakfix.cycle import Loop
from tests.train.conftest import DPO_ROWS, SFT_ROWS


def test_the_loop_trains_each_stage_through_the_launcher(tiny, tmp_path, store, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    launcher = (f"{sys.executable} -m accelerate.commands.launch --multi_gpu --num_processes 2 --num_machines 1 "
                "--mixed_precision no --dynamo_backend no")
    config = CycleConfig.model_validate({"model": f"hf:{tiny}", "train": {"launcher": launcher, "batch_size": 8,
                                                                          "max_length": 96, "sft_epochs": 1}})
    files = {}
    for kind, rows in (("sft", SFT_ROWS), ("dpo", DPO_ROWS)):
        path = tmp_path / f"{kind}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        files[kind] = {"path": str(path), "n": len(rows), "sha256": "x"}
    run_id = store.create_run("cycle", model=config.model, config=config.model_dump(mode="json"))
    loop = Loop(store=store, run_id=run_id, config=config, folder=tmp_path / run_id, catalog=None, judges=None,
                groundedness=None, home=None, load=None)
    child = store.begin_step(run_id, 1, "train", kind="train", model=config.model).child_run_id
    trained = loop._train(1, child, config.model, {"files": files})
    assert trained["model"] == f"hf:{tmp_path / run_id / 'round-1' / 'dpo' / 'model'}"
    assert set(trained["stages"]) == {"sft", "dpo"} and trained["stages"]["sft"]["steps"] == 1
    sft_entry, dpo_entry = store.checkpoints(child)
    assert dpo_entry["parent_id"] == sft_entry["id"] and dpo_entry["meta"]["base"].endswith("sft/model")
    assert (tmp_path / run_id / "round-1" / "sft" / "train-config.json").is_file()
